"""The CXR preprocessing pipeline: decoded pixels → ROI → percentile clip → [0, 1] → resized float image.

8- and 16-bit images take the same steps as one lookup table over their codes (the Modality LUT, the
MONOCHROME1 inversion, the clip and the min-max folded together), applied once before the resize.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from radscreen.preprocess.geometry import RoiBox, crop_roi, resize
from radscreen.preprocess.intensity import (
    clip_minmax_table,
    clip_percentiles,
    code_histogram,
    has_codes,
    lookup,
    minmax,
)

PIPELINE_VERSION = 1  # bump when the code of this pipeline changes what it stores


@dataclass(frozen=True)
class CXRPreprocess:
    """Parameters of the cached preprocessing (everything that changes the stored array)."""

    image_size: int = 512
    lower_percentile: float = 0.5
    upper_percentile: float = 99.5
    interpolation: str = "cubic"
    apply_voi_lut: bool = False
    roi: RoiBox | None = None

    def __post_init__(self) -> None:
        if self.image_size <= 0:
            raise ValueError(f"image_size must be positive, got {self.image_size}")
        if not 0 <= self.lower_percentile < self.upper_percentile <= 100:
            raise ValueError("need 0 <= lower_percentile < upper_percentile <= 100")
        if isinstance(self.roi, dict):  # plain config mapping
            object.__setattr__(self, "roi", RoiBox(**self.roi))

    def key(self) -> str:
        """Short hash of the parameters and pipeline version: the cache folder's name."""
        payload = json.dumps(self.describe(), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def describe(self) -> dict:
        return {"kind": "cxr", "version": PIPELINE_VERSION, **asdict(self)}

    def from_file(self, path: str) -> np.ndarray:
        """Read a radiograph (DICOM or raster) and apply the pipeline."""
        from radscreen.io.images import read_stored_image

        return self.from_stored(*read_stored_image(path, apply_voi_lut=self.apply_voi_lut))

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """Apply the pipeline to decoded pixels (2-D, bright = dense); float32 in [0, 1], square."""
        image = crop_roi(pixels, self.roi) if self.roi is not None else pixels
        image = minmax(clip_percentiles(image, self.lower_percentile, self.upper_percentile))
        return resize(image, self.image_size, self.interpolation)

    def from_stored(self, stored: np.ndarray, to_presentation: Callable[..., np.ndarray]) -> np.ndarray:
        """self(to_presentation(stored)), where to_presentation maps stored values to bright-is-dense values
        element by element (called with a table of values and `present=`, the mask of those the image holds).

        For 8- and 16-bit images the whole chain is computed once per code and looked up per pixel: the same
        numbers as the per-pixel chain, without its full-size intermediate images.
        """
        if not has_codes(stored):
            return self(to_presentation(stored))
        values, counts = code_histogram(stored)
        image = crop_roi(stored, self.roi) if self.roi is not None else stored
        image_counts = code_histogram(image)[1] if self.roi is not None else counts
        held = np.flatnonzero(counts)
        span = slice(held[0], held[-1] + 1)  # the stored range: its inversion and rescale stay monotone
        presented = to_presentation(values[span], present=counts[span] > 0)
        table = np.zeros(len(values), dtype=np.float32)
        table[span] = clip_minmax_table(presented, image_counts[span], self.lower_percentile, self.upper_percentile)
        used = table[image_counts > 0]
        return resize(lookup(table, image), self.image_size, self.interpolation,
                      value_range=(float(used.min()), float(used.max())))
