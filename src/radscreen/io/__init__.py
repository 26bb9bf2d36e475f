"""Readers: one file in, pixels or header fields out."""
