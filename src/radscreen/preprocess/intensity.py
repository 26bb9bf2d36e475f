"""Intensity transforms: exact percentiles, percentile clipping, min-max, z-score, and lookup tables over
the codes of 8- and 16-bit images (histograms and per-code maps that equal the per-pixel computation)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

_MAX_HISTOGRAM_BINS = 1 << 24  # integer ranges wider than this fall back to np.percentile
_EXACT_FLOAT_COUNTS = 1 << 24  # OpenCV's histogram counts in float32: exact below this many pixels
_CODE_DTYPES = {np.dtype(np.uint8), np.dtype(np.int8), np.dtype(np.uint16), np.dtype(np.int16)}


def has_codes(image: np.ndarray) -> bool:
    """Whether code_histogram and lookup apply: an 8- or 16-bit integer image."""
    return image.dtype in _CODE_DTYPES


def _codes(image: np.ndarray) -> tuple[np.ndarray, int]:
    """The image as unsigned codes (a view, no copy) and the code of the smallest value (0, or half for signed)."""
    unsigned = image.view(np.uint8 if image.dtype.itemsize == 1 else np.uint16)
    signed_shift = 1 << (8 * image.dtype.itemsize - 1) if image.dtype.kind == "i" else 0
    return unsigned, signed_shift


def code_histogram(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(every value of the dtype in ascending order, how many pixels hold it) of an 8- or 16-bit image.

    Counts the image's own codes (OpenCV's calcHist on an unsigned view): no widening copy of the pixels.
    """
    if not has_codes(image):
        raise ValueError(f"code_histogram needs an 8- or 16-bit integer image, got {image.dtype}")
    unsigned, shift = _codes(image)
    n_codes = 1 << (8 * image.dtype.itemsize)
    if image.size < _EXACT_FLOAT_COUNTS:
        counts = cv2.calcHist([unsigned], [0], None, [n_codes], [0, n_codes]).ravel().astype(np.int64)
    else:
        counts = np.bincount(unsigned.ravel(), minlength=n_codes)
    values = np.arange(n_codes, dtype=unsigned.dtype).view(image.dtype)  # code order
    return np.roll(values, -shift), np.roll(counts, -shift)  # value order


def _opencv_looks_up_16_bit() -> bool:
    """Whether this OpenCV's LUT takes 16-bit images (newer releases; older ones take 8-bit only)."""
    try:
        cv2.LUT(np.zeros((1, 1), np.uint16), np.zeros(1 << 16, np.float32))
    except cv2.error:
        return False
    return True


_OPENCV_LUT_16_BIT = _opencv_looks_up_16_bit()


def lookup(table: np.ndarray, image: np.ndarray) -> np.ndarray:
    """table[value index] for each pixel of an 8- or 16-bit image, with table (float32) in code_histogram's
    value order; OpenCV's LUT where it takes the image, else np.take."""
    unsigned, shift = _codes(image)
    table = np.roll(table, shift)
    if unsigned.dtype == np.uint8 or _OPENCV_LUT_16_BIT:
        return cv2.LUT(unsigned, table)
    return np.take(table, unsigned)


def _checked_percentiles(q: Sequence[float]) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    if np.any((q < 0) | (q > 100)):
        raise ValueError(f"percentiles must lie in [0, 100], got {q.tolist()}")
    return q


def _sorted_by_value(values: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """values and counts in ascending order of value (without a sort when already monotone)."""
    if np.all(values[1:] >= values[:-1]):
        return values, counts
    if np.all(values[1:] <= values[:-1]):
        return values[::-1], counts[::-1]
    order = np.argsort(values, kind="stable")
    return values[order], counts[order]


def histogram_percentiles(values: np.ndarray, counts: np.ndarray, q: Sequence[float]) -> np.ndarray:
    """Percentiles of the image in which values[i] occurs counts[i] times, equal to np.percentile (method
    'linear') on that image; values may come in any order, with repeats."""
    q = _checked_percentiles(q)
    values, counts = _sorted_by_value(values, counts)
    size = int(counts.sum())
    if size == 0:
        raise ValueError("percentiles of an empty image")
    cumsum = np.cumsum(counts)
    # numpy's 'linear' method, written with numpy's own arithmetic so the result is bit-identical:
    # virtual index (n - 1) * q, then numpy's two-sided lerp.
    position = (size - 1) * (q / 100.0)
    below = np.clip(np.floor(position), 0, size - 1)
    gamma = position - below
    lower = values[np.searchsorted(cumsum, below, side="right")].astype(np.float64)
    upper = values[np.searchsorted(cumsum, np.minimum(below + 1, size - 1), side="right")].astype(np.float64)
    diff = upper - lower
    return np.where(gamma >= 0.5, upper - diff * (1 - gamma), lower + diff * gamma)


def percentiles(image: np.ndarray, q: Sequence[float]) -> np.ndarray:
    """Percentiles of all pixels, equal to np.percentile(image, q) (method 'linear').

    Integer images use a histogram: linear time, no sort. q in [0, 100].
    """
    q = _checked_percentiles(q)
    if image.size == 0:
        raise ValueError("percentiles of an empty image")
    if has_codes(image):
        return histogram_percentiles(*code_histogram(image), q)
    if not np.issubdtype(image.dtype, np.integer):
        return np.percentile(image, q)
    low, high = int(image.min()), int(image.max())
    if high - low + 1 > _MAX_HISTOGRAM_BINS:
        return np.percentile(image, q)
    counts = np.bincount((image.ravel().astype(np.int64) - low), minlength=high - low + 1)
    return histogram_percentiles(np.arange(low, high + 1, dtype=np.int64), counts, q)


def _check_bounds(lower: float, upper: float) -> None:
    if not 0 <= lower < upper <= 100:
        raise ValueError(f"need 0 <= lower < upper <= 100, got lower={lower}, upper={upper}")


def clip_percentiles(image: np.ndarray, lower: float = 0.5, upper: float = 99.5) -> np.ndarray:
    """Clip to the [lower, upper] percentiles of the image; float32 out."""
    _check_bounds(lower, upper)
    lo, hi = percentiles(image, (lower, upper))
    return np.clip(image.astype(np.float32), lo, hi)


def scale_to_unit(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """(image - low) / (high - low) in float32; all zeros when high <= low."""
    image = image.astype(np.float32, copy=False)
    if high <= low:
        return np.zeros_like(image)
    return (image - low) / (high - low)


def minmax(image: np.ndarray) -> np.ndarray:
    """Scale linearly to [0, 1] (float32); a constant image becomes all zeros."""
    image = image.astype(np.float32)
    return scale_to_unit(image, float(image.min()), float(image.max()))


def clip_minmax_table(values: np.ndarray, counts: np.ndarray, lower: float = 0.5,
                      upper: float = 99.5) -> np.ndarray:
    """minmax(clip_percentiles(image, lower, upper)) as a table: one float32 entry per entry of `values`, for
    the image in which values[i] occurs counts[i] times (entries whose count is 0 take no part)."""
    _check_bounds(lower, upper)
    lo, hi = histogram_percentiles(values, counts, (lower, upper))
    clipped = np.clip(values.astype(np.float32), lo, hi).astype(np.float32)
    present = clipped[counts > 0]
    return scale_to_unit(clipped, float(present.min()), float(present.max()))


def zscore(image: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Zero mean, unit standard deviation per image (float32); a constant image becomes all zeros."""
    image = image.astype(np.float32)
    return (image - image.mean()) / max(float(image.std()), eps)
