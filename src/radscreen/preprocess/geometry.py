"""Geometric transforms: named ROI crops in fractional coordinates and resizing."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

INTERPOLATIONS = {"cubic": cv2.INTER_CUBIC, "area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR,
                  "nearest": cv2.INTER_NEAREST}


@dataclass(frozen=True)
class RoiBox:
    """A crop box in fractions of the image height/width: rows [top, bottom), columns [left, right)."""

    name: str
    top: float
    left: float
    bottom: float
    right: float

    def __post_init__(self) -> None:
        if not (0 <= self.top < self.bottom <= 1 and 0 <= self.left < self.right <= 1):
            raise ValueError(f"ROI '{self.name}': need 0 <= top < bottom <= 1 and 0 <= left < right <= 1")


def crop_roi(image: np.ndarray, box: RoiBox) -> np.ndarray:
    """Crop a 2-D image (H, W) to the box; the crop keeps at least one pixel per axis."""
    height, width = image.shape[:2]
    top, bottom = int(round(box.top * height)), max(int(round(box.bottom * height)), int(round(box.top * height)) + 1)
    left, right = int(round(box.left * width)), max(int(round(box.right * width)), int(round(box.left * width)) + 1)
    return image[top:bottom, left:right]


def resize(image: np.ndarray, size: int | tuple[int, int], interpolation: str = "cubic",
           value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Resize a 2-D float image to (size, size) or (height, width); bicubic overshoot is clipped to the input
    range (`value_range`, when the caller knows the image's (min, max), saves reading the image for it)."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {sorted(INTERPOLATIONS)}, got '{interpolation}'")
    height, width = (size, size) if isinstance(size, int) else size
    if height <= 0 or width <= 0:
        raise ValueError(f"size must be positive, got {size}")
    if image.shape == (height, width):
        return image.astype(np.float32)
    image = image.astype(np.float32, copy=False)
    out = cv2.resize(image, (width, height), interpolation=INTERPOLATIONS[interpolation])
    low, high = value_range if value_range is not None else (image.min(), image.max())
    return np.clip(out, low, high)
