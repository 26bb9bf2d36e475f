"""Cached preprocessed images, datasets and Lightning data modules."""
