"""Intensity transforms: exact percentiles, percentile clipping, min-max and z-score."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_MAX_HISTOGRAM_BINS = 1 << 24  # integer ranges wider than this fall back to np.percentile


def _order_statistics(counts_cumsum: np.ndarray, offset: int, ranks: np.ndarray) -> np.ndarray:
    """Values of the sorted image at 0-based `ranks`, read from the cumulative histogram."""
    return np.searchsorted(counts_cumsum, ranks, side="right").astype(np.float64) + offset


def percentiles(image: np.ndarray, q: Sequence[float]) -> np.ndarray:
    """Percentiles of all pixels, equal to np.percentile(image, q) (method 'linear').

    Integer images use a histogram (np.bincount): linear time, no sort. q in [0, 100].
    """
    q = np.asarray(q, dtype=np.float64)
    if np.any((q < 0) | (q > 100)):
        raise ValueError(f"percentiles must lie in [0, 100], got {q.tolist()}")
    if image.size == 0:
        raise ValueError("percentiles of an empty image")
    if not np.issubdtype(image.dtype, np.integer):
        return np.percentile(image, q)
    low, high = int(image.min()), int(image.max())
    if high - low + 1 > _MAX_HISTOGRAM_BINS:
        return np.percentile(image, q)
    cumsum = np.cumsum(np.bincount((image.ravel().astype(np.int64) - low), minlength=high - low + 1))
    # numpy's 'linear' method, written with numpy's own arithmetic so the result is bit-identical:
    # virtual index (n - 1) * q, then numpy's two-sided lerp.
    position = (image.size - 1) * (q / 100.0)
    below = np.clip(np.floor(position), 0, image.size - 1)
    gamma = position - below
    lower = _order_statistics(cumsum, low, below)
    upper = _order_statistics(cumsum, low, np.minimum(below + 1, image.size - 1))
    diff = upper - lower
    return np.where(gamma >= 0.5, upper - diff * (1 - gamma), lower + diff * gamma)


def clip_percentiles(image: np.ndarray, lower: float = 0.5, upper: float = 99.5) -> np.ndarray:
    """Clip to the [lower, upper] percentiles of the image; float32 out."""
    if not 0 <= lower < upper <= 100:
        raise ValueError(f"need 0 <= lower < upper <= 100, got lower={lower}, upper={upper}")
    lo, hi = percentiles(image, (lower, upper))
    return np.clip(image.astype(np.float32), lo, hi)


def minmax(image: np.ndarray) -> np.ndarray:
    """Scale linearly to [0, 1] (float32); a constant image becomes all zeros."""
    image = image.astype(np.float32)
    low, high = float(image.min()), float(image.max())
    if high <= low:
        return np.zeros_like(image)
    return (image - low) / (high - low)


def zscore(image: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Zero mean, unit standard deviation per image (float32); a constant image becomes all zeros."""
    image = image.astype(np.float32)
    return (image - image.mean()) / max(float(image.std()), eps)
