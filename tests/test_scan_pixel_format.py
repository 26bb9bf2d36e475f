"""The header scan rejects what cannot be a radiograph (colour samples, several frames) with its reason."""

from __future__ import annotations

import warnings
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
from pydicom.data import get_testdata_files

from radscreen.io.dicom import read_header
from radscreen.io.dicom_write import write_radiograph
from radscreen.manifests.scan import COLOUR_REASON, MULTIFRAME_REASON, ScanOptions, scan_file, scan_folder

from conftest import SALT, gradient_image


def write_reshaped(path: Path, *, samples: int = 1, frames: int = 1, photometric: str = "MONOCHROME2") -> None:
    """A chest film whose header and pixel data say `samples` samples per pixel and `frames` frames."""
    stored = gradient_image(rows=24, cols=20, bits=8)
    write_radiograph(path, stored, patient_id="P1", birth_date=date(1960, 5, 1), study_date=date(2020, 5, 1))
    ds = pydicom.dcmread(path)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = samples, photometric
    if samples > 1:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = np.repeat(stored[..., None], samples, axis=2).tobytes() * frames
    ds.save_as(path)


def test_colour_and_multiframe_files_are_rejected_at_the_scan(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    write_reshaped(root / "good.dcm")
    write_reshaped(root / "rgb.dcm", samples=3, photometric="RGB")
    write_reshaped(root / "ybr.dcm", samples=3, photometric="YBR_FULL")
    write_reshaped(root / "cine.dcm", frames=2)
    summary = scan_folder(ScanOptions(root=str(root), salt=SALT), tmp_path / "rows.csv", tmp_path / "rejects.csv",
                          workers=1, show_progress=False)
    rejects = pd.read_csv(tmp_path / "rejects.csv")
    assert dict(zip(rejects["path"], rejects["reason"])) == {
        "rgb.dcm": COLOUR_REASON, "ybr.dcm": COLOUR_REASON, "cine.dcm": MULTIFRAME_REASON}
    assert list(pd.read_csv(tmp_path / "rows.csv")["path"]) == ["good.dcm"] and summary.taken == 1


def test_pydicoms_colour_and_multiframe_test_files_never_pass_the_scan():
    """pydicom's own test files (installed with it): with every filter off, each file with SamplesPerPixel > 1 or
    NumberOfFrames > 1 whose header radscreen can read is rejected with the pixel-format reason."""
    options = ScanOptions(root="/", salt=SALT, modalities=(), views=(), body_parts=())
    rejected = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in get_testdata_files():
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True)
                samples, frames = int(ds.get("SamplesPerPixel") or 1), int(ds.get("NumberOfFrames") or 1)
                read_header(path)
            except Exception:  # noqa: BLE001 - unreadable files are rejected by the scan for that reason
                continue
            if samples == frames == 1:
                continue
            assert scan_file(path, options) == (None, COLOUR_REASON if samples > 1 else MULTIFRAME_REASON), path
            rejected += 1
    assert rejected > 0
