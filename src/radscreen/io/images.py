"""Read any supported radiograph file (DICOM, PNG, JPEG, TIFF) to a 2-D array, bright = dense."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from radscreen.io.dicom import read_pixels, read_stored, to_presentation
from radscreen.io.errors import ImageReadError

RASTER_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}


def read_image(path: str | os.PathLike, apply_voi_lut: bool = False) -> np.ndarray:
    """Pixels of a radiograph: DICOM through pydicom (LUTs, MONOCHROME1), rasters through OpenCV (grey).

    Raises ImageReadError (DicomReadError for DICOM files) with a one-line reason."""
    path = Path(path)
    if path.suffix.lower() not in RASTER_SUFFIXES:
        return read_pixels(path, apply_voi=apply_voi_lut)
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageReadError("image file could not be decoded")
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    return image


def _as_stored(values: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    return values


def read_stored_image(
    path: str | os.PathLike, apply_voi_lut: bool = False,
) -> tuple[np.ndarray, Callable[..., np.ndarray]]:
    """(stored codes, the element-wise map to read_image's values): a DICOM's pixel codes (a read-only view of
    uncompressed pixel data, bits above BitsStored not yet dropped; compressed data decoded as pydicom does) with
    radscreen.io.dicom.to_presentation bound to its header; a raster's pixels with the identity. The map takes a
    table of codes as well as the image."""
    path = Path(path)
    if path.suffix.lower() in RASTER_SUFFIXES:
        return read_image(path), _as_stored
    codes, ds = read_stored(path, raw_bits=True)
    return codes, functools.partial(to_presentation, ds=ds, apply_voi=apply_voi_lut, raw_bits=True)
