"""Phantom generator: deterministic DRRs, bone density effect, DICOM round trip, broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radscreen.manifests.build import ClinicalJoin, build_manifest
from radscreen.manifests.scan import ScanOptions
from radscreen.phantoms.cxr import BROKEN_REASONS, make_cohort
from radscreen.phantoms.drr import BODY_MIN_HU, line_integral, project_tissues, render
from radscreen.phantoms.fetch import FILES, fetch_ct
from radscreen.phantoms.subjects import sample_subjects
from radscreen.preprocess.masks import body_mask

from conftest import SALT

NEUTRAL = {"thickness": 1.0, "bone_factor": 1.0, "lung_density": 1.0, "aortic_calcification": 0.0,
           "cartilage_calcification": 0.0, "rotation_deg": 0.0, "body_scale": 1.0, "height_loss": 0.0,
           "shift_x": 0.0, "shift_y": 0.0, "exposure": 1.0}


def toy_ct() -> tuple[np.ndarray, np.ndarray]:
    """A water cylinder (z, y, x) with a bone rod (label 1), a lung region (label 2) and a table slab."""
    z, y, x = np.mgrid[0:24, 0:48, 0:48]
    hu = np.full(z.shape, -1000.0, np.float32)
    body = (y - 22) ** 2 + (x - 24) ** 2 < 18**2
    hu[body] = 40.0
    labels = np.zeros(z.shape, np.uint8)
    rod = ((y - 30) ** 2 + (x - 24) ** 2 < 3**2)
    hu[rod] = 700.0
    labels[rod] = 1
    lung = ((y - 18) ** 2 + (x - 14) ** 2 < 5**2)
    hu[lung] = -800.0
    labels[lung] = 2
    hu[:, 44:46, :] = 300.0  # the table: separate from the body, must be dropped
    return hu, labels


@pytest.fixture(scope="module")
def toy_projections():
    hu, labels = toy_ct()
    return project_tissues(hu, labels, (2.0, 1.0, 1.0), bone_ids=[1], lung_ids=[2], aorta_ids=[], cartilage_ids=[],
                           size=48)


def test_body_mask_drops_the_table():
    hu, _ = toy_ct()
    mask = body_mask(hu, "threshold", threshold=BODY_MIN_HU)
    assert mask[:, 22, 24].all() and not mask[:, 45, :].any()


def test_drr_of_unaltered_ct_is_deterministic_beer_lambert(toy_projections):
    first, second = render(toy_projections, NEUTRAL, None), render(toy_projections, NEUTRAL, None)
    assert np.array_equal(first, second)
    expected = np.clip(np.round(line_integral(toy_projections, NEUTRAL) / 8.0 * 4095), 0, 4095)
    assert np.abs(first.astype(float) - expected).max() <= 1  # log(exp(-L)) = -L, up to rounding


def test_lower_bone_density_lowers_bone_region_intensity(toy_projections):
    bone = toy_projections.bone_mask
    strong = render(toy_projections, {**NEUTRAL, "bone_factor": 1.0}, None)
    weak = render(toy_projections, {**NEUTRAL, "bone_factor": 0.6}, None)
    assert bone.any() and weak[bone].mean() < strong[bone].mean()
    assert np.array_equal(weak[~bone & (toy_projections.bone == 0)], strong[~bone & (toy_projections.bone == 0)])


def test_cohort_model_is_seeded_and_t_scores_fall_with_age_faster_in_women():
    a, b = sample_subjects(3000, seed=4), sample_subjects(3000, seed=4)
    pd.testing.assert_frame_equal(a, b)
    old, young = a[a.age_years > 65], a[a.age_years < 40]
    for sex in "FM":
        assert old[old.sex == sex].t_score_min.mean() < young[young.sex == sex].t_score_min.mean() - 1
    drop = {s: young[young.sex == s].t_score_min.mean() - old[old.sex == s].t_score_min.mean() for s in "FM"}
    assert drop["F"] > drop["M"]
    assert set(a.bmd_class) == {"normal", "osteopenia", "osteoporosis"}


@pytest.mark.realdata
def test_fetch_is_verified_and_cached(real_ct_dir):
    folder = fetch_ct()  # cached: verified by hash, nothing downloaded
    assert folder == real_ct_dir
    assert {Path(n).name for n in FILES} <= {p.name for p in folder.iterdir()}
    assert fetch_ct() == folder  # second call: no download


@pytest.fixture(scope="module")
def small_cohort(tmp_path_factory, toy_projections):
    out = tmp_path_factory.mktemp("phantoms")
    subjects = make_cohort(out, n=12, seed=3, n_broken_each=1, projections=toy_projections, show_progress=False)
    return out, subjects


def test_phantom_dicoms_round_trip_through_the_manifest_builder(small_cohort, tmp_path):
    out, subjects = small_cohort
    manifest, summary = build_manifest(
        ScanOptions(root=str(out / "dicom"), salt=SALT), tmp_path / "m.csv", workers=1, show_progress=False,
        clinical=ClinicalJoin(path=str(out / "dxa.csv"), window_days=365))
    truth = subjects[subjects.broken.isna()].assign(path=lambda f: f.file.str.removeprefix("dicom/"))
    joined = manifest.merge(truth, on="path", suffixes=("", "_truth"))
    assert len(joined) == 12
    assert np.allclose(joined.age_years, joined.age_years_truth, atol=1e-3)
    assert (joined.sex == joined.sex_truth).all()
    assert (joined.bmd_class == joined.bmd_class_truth).all()
    assert set(manifest.photometric) <= {"MONOCHROME1", "MONOCHROME2"}
    written = (tmp_path / "m.csv").read_text()
    assert "RS03" not in written and "PHANTOM" not in written  # raw IDs and names never reach the manifest


def test_broken_phantoms_are_rejected_with_the_right_reasons(small_cohort, tmp_path):
    out, subjects = small_cohort
    build_manifest(ScanOptions(root=str(out / "dicom"), salt=SALT), tmp_path / "m.csv", workers=1,
                   show_progress=False)
    rejects = pd.read_csv(tmp_path / "m.rejects.csv").set_index("path")["reason"]
    broken = subjects[subjects.broken.notna()]
    for _, row in broken.iterrows():
        assert rejects[row.file.removeprefix("dicom/")] == BROKEN_REASONS[row.broken]
    assert len(rejects) == len(broken)
