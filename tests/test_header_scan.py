"""The header scan: header values equal to pydicom's own, and what cannot be a radiograph (colour samples,
several frames) rejected with its reason."""

from __future__ import annotations

import warnings
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
from pydicom.data import get_testdata_files

from radscreen.io.dicom import _HEADER_TAGS, HEADER_KEYWORDS, _header_values, read_header
from radscreen.io.dicom_write import write_radiograph
from radscreen.manifests.scan import COLOUR_REASON, MULTIFRAME_REASON, ScanOptions, scan_file, scan_folder
from radscreen.utils.parallel import auto_chunksize

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


def test_header_values_equal_pydicoms_own_conversion(tmp_path):
    """The scan's direct value conversion gives what Dataset access gives, on pydicom's test files and on
    implicit-VR and UTF-8 files made here."""
    write_radiograph(tmp_path / "utf8.dcm", gradient_image(bits=8), patient_id="P1", patient_name="x",
                     birth_date=date(1960, 5, 1))
    ds = pydicom.dcmread(tmp_path / "utf8.dcm")
    ds.SpecificCharacterSet, ds.PatientID, ds.BodyPartExamined = "ISO_IR 192", "Müller-7", "THORAX"
    ds.save_as(tmp_path / "utf8.dcm")
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    ds.save_as(tmp_path / "implicit.dcm")
    paths = [*get_testdata_files(), str(tmp_path / "utf8.dcm"), str(tmp_path / "implicit.dcm")]
    compared = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in paths:
            try:
                fast = _header_values(pydicom.dcmread(path, defer_size=1024, specific_tags=list(_HEADER_TAGS.values())))
                reference = pydicom.dcmread(path, stop_before_pixels=True)
                expected = {k: reference[k].value for k in HEADER_KEYWORDS if k != "PixelData" and k in reference}
            except Exception:  # noqa: BLE001 - files pydicom cannot read are the scan's rejects
                continue
            assert fast == expected, path
            compared += 1
    assert compared > 50 and read_header(tmp_path / "utf8.dcm").patient_id == "Müller-7"
    assert read_header(tmp_path / "implicit.dcm").patient_id == "Müller-7"


def test_auto_chunksize_keeps_eight_tasks_per_worker():
    assert auto_chunksize(20_000, 2) == 256  # capped
    assert auto_chunksize(1_000, 2) == 62
    assert auto_chunksize(5, 2) == auto_chunksize(None, 4) == 1


def test_cache_chunks_are_small_and_leave_every_worker_many_tasks(monkeypatch, tmp_path):
    """The chunks build_cache hands its pool: 2,000 images on 2 workers go 8 at a time, 100 (JPEG 2000 files, say)
    one at a time, and a 64-core node gets 8 per task once it has 16,384 images."""
    from radscreen.data import cache
    from radscreen.preprocess.cxr import CXRPreprocess

    chunks = {}

    def record(fn, items, *, total, workers, chunksize, **_):
        chunks[(total, workers)] = chunksize
        return iter(())

    monkeypatch.setattr(cache, "map_with_progress", record)
    for n, workers in ((2_000, 2), (100, 2), (16_384, 64), (16_383, 64)):
        manifest = pd.DataFrame({"image_id": [f"i{k}" for k in range(n)], "path": [f"{k}.dcm" for k in range(n)]})
        cache.build_cache(manifest, tmp_path, CXRPreprocess(image_size=32), tmp_path / "cache", workers=workers,
                          show_progress=False)
    assert chunks == {(2_000, 2): 8, (100, 2): 1, (16_384, 64): 8, (16_383, 64): 7}
