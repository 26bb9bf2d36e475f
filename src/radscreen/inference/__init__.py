"""Applying a trained model to new images: predict.py (inputs → predictions, rejects, CAM overlays)."""
