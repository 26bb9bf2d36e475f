"""CT volumes: a DICOM series folder (checked and ordered by slice position) or a NIfTI / MHA / NRRD file → HU."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from radscreen.io.errors import ImageReadError

VOLUME_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd")
GAP_FACTOR = 1.5  # a step this many times the usual spacing means slices are missing
SPACING_TOLERANCE = 0.05  # relative deviation of a step from the usual spacing


class VolumeReadError(ImageReadError):
    """A volume that cannot be used; the message is a fixed, non-identifying reason."""


def is_volume_file(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(VOLUME_SUFFIXES)


def series_files(folder: str | os.PathLike) -> list[str]:
    """The files of the single DICOM series in `folder`, ordered by position along the slice normal.

    Raises VolumeReadError: no series, several series, non-axial orientation, missing slices, uneven spacing.
    """
    folder = str(folder)
    ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(folder)
    if not ids:
        raise VolumeReadError("no DICOM series")
    if len(ids) > 1:
        raise VolumeReadError(f"{len(ids)} series in one folder (one study = one series)")
    files = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, ids[0]))
    if len(files) < 3:
        raise VolumeReadError("fewer than 3 slices")
    headers = [pydicom.dcmread(f, stop_before_pixels=True,
                               specific_tags=["ImagePositionPatient", "ImageOrientationPatient"]) for f in files]
    try:
        orientation = np.array([[float(v) for v in h.ImageOrientationPatient] for h in headers])
        positions = np.array([[float(v) for v in h.ImagePositionPatient] for h in headers])
    except AttributeError as exc:
        raise VolumeReadError("slices without position or orientation") from exc
    if np.abs(orientation - orientation[0]).max() > 1e-3:
        raise VolumeReadError("slices with different orientations")
    normal = np.cross(orientation[0, :3], orientation[0, 3:])
    if abs(abs(normal[2]) - 1) > 0.05:
        raise VolumeReadError("non-axial orientation")
    location = positions @ normal
    order = np.argsort(location)
    steps = np.diff(location[order])
    usual = float(np.median(steps))
    if usual <= 0:
        raise VolumeReadError("duplicate slice positions")
    if (steps > GAP_FACTOR * usual).any():
        raise VolumeReadError("missing slice(s)")
    if (np.abs(steps - usual) > SPACING_TOLERANCE * usual).any():
        raise VolumeReadError("inconsistent slice spacing")
    return [files[i] for i in order]


def read_volume(path: str | os.PathLike) -> sitk.Image:
    """HU volume (float32) from a series folder or a volume file; VolumeReadError with a reason otherwise."""
    path = Path(path)
    try:
        if path.is_dir():
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(series_files(path))
            image = reader.Execute()  # applies rescale slope/intercept: HU
        elif is_volume_file(path):
            image = sitk.ReadImage(str(path))
        else:
            raise VolumeReadError("not a series folder or volume file")
    except VolumeReadError:
        raise
    except RuntimeError as exc:
        raise VolumeReadError("volume could not be read") from exc
    return sitk.Cast(image, sitk.sitkFloat32)
