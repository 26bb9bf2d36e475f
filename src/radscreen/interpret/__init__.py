"""Class-activation maps: per-image, per-layer and aligned averages, and comparisons between models."""
