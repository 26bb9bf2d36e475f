"""The error every reader raises for a file it cannot use (DICOM, raster image or CT volume)."""

from __future__ import annotations


class ImageReadError(ValueError):
    """An image file (or series folder) that cannot be used; str(error) is a one-line reason without header
    values. DicomReadError and VolumeReadError are its kinds."""
