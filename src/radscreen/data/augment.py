"""Augmentations that albumentations does not have (used from conf/augment/ like any albumentations transform)."""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np


class RandomPatchPaste(A.ImageOnlyTransform):
    """The CT age study's augmentation: a random patch of `scale` × the image edge, optionally zoomed by a factor in
    `zoom`, pasted at a random place on a blank canvas of the input size (blank = the image minimum)."""

    def __init__(self, scale: float = 0.5, zoom: tuple[float, float] = (1.0, 1.5), p: float = 0.5) -> None:
        super().__init__(p=p)
        if not 0 < scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {scale}")
        if not 1 <= zoom[0] <= zoom[1]:
            raise ValueError(f"zoom must be an increasing range starting at >= 1, got {zoom}")
        self.scale, self.zoom = scale, tuple(zoom)

    def apply(self, img: np.ndarray, **params) -> np.ndarray:
        height, width = img.shape[:2]
        rng = self.random_generator
        patch_h, patch_w = max(1, int(round(height * self.scale))), max(1, int(round(width * self.scale)))
        top, left = rng.integers(0, height - patch_h + 1), rng.integers(0, width - patch_w + 1)
        patch = img[top:top + patch_h, left:left + patch_w]
        factor = rng.uniform(*self.zoom)
        out_h, out_w = min(height, int(round(patch_h * factor))), min(width, int(round(patch_w * factor)))
        patch = cv2.resize(patch, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        canvas = np.full_like(img, img.min())
        y, x = rng.integers(0, height - out_h + 1), rng.integers(0, width - out_w + 1)
        canvas[y:y + out_h, x:x + out_w] = patch
        return canvas

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("scale", "zoom")
