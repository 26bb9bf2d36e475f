"""Chest-radiograph-like DICOM files for the benchmarks: a real CR's and a real DX's size, bit depth and encoding.

The pixels are a smooth body outline with two darker lung fields and quantum-like noise, so histograms,
percentiles and compression behave as on real films (not a uniform random image).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from pydicom.uid import ExplicitVRLittleEndian

from radscreen.io.dicom_write import write_radiograph

# (rows, columns, bits stored, modality, photometric, rescale slope/intercept): a MONOCHROME1 CR with a
# rescale in its header (as CR readers write it) and a MONOCHROME2 12-bit DX without one.
KINDS = {
    "CR 1955x1841 MONOCHROME1": (1955, 1841, 12, "CR", "MONOCHROME1", (1.0, 0.0)),
    "DX 2048x2048 12-bit": (2048, 2048, 12, "DX", "MONOCHROME2", None),
}


def chest_pixels(rows: int, cols: int, bits: int, seed: int) -> np.ndarray:
    """Bright-is-dense chest-like image, unsigned, within `bits` bits."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:64, 0:64] / 64.0
    body = np.exp(-(((x - 0.5) / 0.42) ** 6 + ((y - 0.55) / 0.5) ** 6))
    lungs = sum(np.exp(-(((x - cx) / 0.15) ** 2 + ((y - 0.5) / 0.28) ** 2)) for cx in (0.3, 0.7))
    coarse = 0.15 + 0.6 * body - 0.35 * lungs + 0.05 * rng.normal(size=(64, 64))
    image = cv2.resize(coarse.astype(np.float32), (cols, rows), interpolation=cv2.INTER_CUBIC)
    image += 0.02 * rng.standard_normal((rows, cols), dtype=np.float32)
    top = (1 << bits) - 1
    return np.clip(image * top, 0, top).astype(np.uint8 if bits <= 8 else np.uint16)


def write_kind(path: Path, kind: str, seed: int = 0, *, patient_id: str = "BENCH",
               transfer_syntax: str = ExplicitVRLittleEndian, size: tuple[int, int] | None = None) -> Path:
    """One file of `kind` (a key of KINDS); `size` overrides (rows, columns)."""
    rows, cols, bits, modality, photometric, rescale = KINDS[kind]
    rows, cols = size or (rows, cols)
    pixels = chest_pixels(rows, cols, bits, seed)
    if photometric == "MONOCHROME1":  # stored inverted: bright means less dense
        pixels = ((1 << bits) - 1 - pixels).astype(pixels.dtype)
    write_radiograph(path, pixels, patient_id=patient_id, modality=modality, photometric=photometric,
                     bits_stored=bits, rescale=rescale, transfer_syntax=transfer_syntax,
                     birth_date="19600101", study_date="20200101")
    return path
