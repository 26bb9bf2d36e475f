"""CT volumes: series reading and checks, body mask, MIP, the CT preprocessing on the real chest CT."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from radscreen.io.volume import VolumeReadError, read_volume, series_files
from radscreen.io.volume_write import write_series
from radscreen.preprocess.ct import AIR_HU, CTPreprocess, mip, resample
from radscreen.preprocess.masks import body_mask


def cylinder_with_table(shape=(20, 64, 64)) -> np.ndarray:
    """Water cylinder (with an air 'lung' inside and a bone rod) above a separate table slab, in air."""
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    hu = np.full(shape, AIR_HU, np.float32)
    hu[(y - 28) ** 2 + (x - 32) ** 2 < 20**2] = 40.0
    hu[(y - 24) ** 2 + (x - 24) ** 2 < 5**2] = -850.0  # lung: a hole to fill
    hu[(y - 38) ** 2 + (x - 32) ** 2 < 3**2] = 700.0  # spine
    hu[:, 54:58, 4:60] = 200.0  # table
    return hu


def test_body_mask_keeps_the_cylinder_and_drops_the_table():
    hu = cylinder_with_table()
    mask = body_mask(hu)
    z, y, x = np.mgrid[: hu.shape[0], : hu.shape[1], : hu.shape[2]]
    cylinder = (y - 28) ** 2 + (x - 32) ** 2 < 19**2
    assert mask[cylinder].mean() > 0.99  # lungs filled, body kept
    assert not mask[:, 54:58, :].any()  # table gone
    assert not mask[(y - 28) ** 2 + (x - 32) ** 2 > 22**2].any()


def test_mip_equals_numpy_max_of_the_masked_volume():
    hu = cylinder_with_table()
    mask = body_mask(hu)
    expected = np.where(mask, hu, AIR_HU).max(axis=1)[::-1]
    assert np.array_equal(mip(hu, mask, "coronal"), expected)
    slab = np.where(mask, hu, AIR_HU)[:, :, 27:37].max(axis=2)[::-1]
    assert np.array_equal(mip(hu, mask, "sagittal", slab=10), slab)
    assert np.array_equal(mip(hu, None, "axial"), hu.max(axis=0))


def test_series_in_shuffled_file_order_reads_back_in_position_order(tmp_path):
    hu = np.stack([np.full((16, 16), 10.0 * k - 500) for k in range(12)]).astype(np.float32)
    names = [f"f{n:02d}.dcm" for n in np.random.default_rng(0).permutation(12)]
    write_series(tmp_path / "s", hu, (2.0, 1.0, 1.0), patient_id="X", birth_date=date(1970, 1, 1),
                 study_date=date(2020, 1, 1), sex="F", file_names=names)
    volume = sitk.GetArrayFromImage(read_volume(tmp_path / "s"))
    assert np.allclose(volume[:, 0, 0], hu[:, 0, 0])
    assert read_volume(tmp_path / "s").GetSpacing() == pytest.approx((1.0, 1.0, 2.0))


def test_series_with_a_missing_slice_is_rejected(tmp_path):
    hu = np.zeros((10, 8, 8), np.float32)
    write_series(tmp_path / "s", hu, (2.5, 1.0, 1.0), patient_id="X", birth_date=None, study_date=date(2020, 1, 1),
                 sex="M")
    (tmp_path / "s" / "slice0004.dcm").unlink()
    with pytest.raises(VolumeReadError, match="missing slice"):
        series_files(tmp_path / "s")


def test_resample_to_the_study_grid():
    image = sitk.GetImageFromArray(cylinder_with_table())
    image.SetSpacing((1.0, 1.0, 2.0))
    out = resample(image, shape_zyx=(40, 32, 32))
    assert sitk.GetArrayFromImage(out).shape == (40, 32, 32)
    assert out.GetSpacing() == pytest.approx((2.0, 2.0, 1.0))


@pytest.fixture(scope="module")
def real_ct(real_ct_dir):
    return sitk.ReadImage(str(real_ct_dir / "cxr.nii.gz"))


def test_synthetic_chest_ct_preprocessing(synthetic_ct_dir):
    ct = sitk.ReadImage(str(synthetic_ct_dir / "cxr.nii.gz"))
    config = CTPreprocess(image_size=64, shape_zyx=(32, 64, 64))
    hu = sitk.GetArrayFromImage(resample(ct, config.shape_zyx))
    mask = body_mask(hu)
    assert mask.reshape(len(mask), -1).mean(axis=1).min() > 0.15  # the trunk in every slice
    table = (hu > 200).mean(axis=2) > 0.6  # (z, y) rows dense across most of the width: the table slab
    assert table.any() and not mask[table].any() and hu[~mask].mean() < -700
    image = config(ct)
    assert image.shape == (64, 64) and image.min() >= 0 and image.max() == pytest.approx(1.0)


@pytest.mark.realdata
def test_real_chest_ct_body_mask_and_mip(real_ct):
    config = CTPreprocess(image_size=112, shape_zyx=(64, 128, 128))
    hu = sitk.GetArrayFromImage(resample(real_ct, config.shape_zyx))
    mask = body_mask(hu)
    # the whole trunk: every axial slice has a body cross-section; outside it is air or table
    areas = mask.reshape(len(mask), -1).mean(axis=1)
    assert areas.min() > 0.15
    assert hu[~mask].mean() < -700
    # the table: the largest dense structure outside the mask is a thin slab across most of the width
    from scipy import ndimage

    outside, _ = ndimage.label((hu > -500) & ~mask)
    table = outside == np.argmax(np.bincount(outside.ravel())[1:]) + 1
    _, ys, xs = np.nonzero(table)
    assert ys.max() - ys.min() <= 12 and xs.max() - xs.min() >= 0.6 * hu.shape[2]
    projection = mip(hu, mask, "coronal")
    spine = projection[10:-10, 60:68]  # the midline column
    assert np.median(spine.max(axis=1)) > 250  # vertebrae in every row
    image = config(real_ct)
    assert image.shape == (112, 112) and image.min() >= 0 and image.max() == pytest.approx(1.0)


def test_ct_manifest_from_series_folders_with_rejects(tmp_path):
    from radscreen.manifests.ct_scan import CTScanOptions, scan_ct_folder
    from radscreen.manifests.pseudonym import pseudonymise

    root = tmp_path / "ct"
    hu = cylinder_with_table((8, 16, 16))
    common = {"study_date": date(2020, 6, 1), "sex": "F"}
    write_series(root / "a", hu, (2.0, 1.0, 1.0), patient_id="CT001", birth_date=date(1960, 6, 1), **common)
    write_series(root / "b", hu, (2.0, 1.0, 1.0), patient_id="CT002", birth_date=date(1980, 6, 2), **common,
                 file_names=[f"x{n}.dcm" for n in np.random.default_rng(1).permutation(8)])
    write_series(root / "gap", hu, (2.0, 1.0, 1.0), patient_id="CT003", birth_date=date(1970, 1, 1), **common)
    (root / "gap" / "slice0003.dcm").unlink()
    write_series(root / "nobirth", hu, (2.0, 1.0, 1.0), patient_id="CT004", birth_date=None, **common)
    import pydicom

    write_series(root / "coronal", hu, (2.0, 1.0, 1.0), patient_id="CT005", birth_date=date(1970, 1, 1), **common)
    for f in (root / "coronal").iterdir():
        ds = pydicom.dcmread(f)
        ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
        ds.save_as(f)
    manifest, rejects = scan_ct_folder(CTScanOptions(str(root), "s"), workers=1, show_progress=False)
    assert manifest["path"].tolist() == ["a", "b"]
    assert manifest["age_years"].round(3).tolist() == [round(21915 / 365.2425, 3), round(14609 / 365.2425, 3)]
    assert manifest["patient_id"].tolist() == [pseudonymise("CT001", "s"), pseudonymise("CT002", "s")]
    assert dict(zip(rejects.path, rejects.reason)) == {"gap": "missing slice(s)", "nobirth": "missing birth date",
                                                       "coronal": "non-axial orientation"}
    assert (manifest["n_slices"] == 8).all()


def test_volumes_csv_rows_are_rejected_with_the_first_reason_that_applies(tmp_path):
    from radscreen.manifests.ct_scan import import_nifti

    for name in ("a", "b", "c", "d", "e", "f"):
        sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 8, 8), np.float32)), str(tmp_path / f"{name}.nii.gz"))
    (tmp_path / "g.nii.gz").write_bytes(b"not a volume")
    table = pd.DataFrame({"path": ["a.nii.gz", "b.nii.gz", "c.nii.gz", "d.nii.gz", "e.nii.gz", "f.nii.gz",
                                   "g.nii.gz", "a.nii.gz", "missing.nii.gz"],
                          "patient_id": [f"P{n}" for n in range(9)],
                          "age_years": [61, None, 0, 130, 70, 30, 50, 61, 50],
                          "sex": ["F", "M", "F", "M", "O", "F", "M", "F", "M"]})
    manifest, rejects = import_nifti(table, tmp_path, salt="s")
    assert manifest["path"].tolist() == ["a.nii.gz", "f.nii.gz"]
    assert dict(zip(rejects.path, rejects.reason)) == {
        "b.nii.gz": "missing age", "c.nii.gz": "impossible age", "d.nii.gz": "impossible age",
        "e.nii.gz": "unknown sex", "g.nii.gz": "volume could not be read", "missing.nii.gz": "volume file not found",
        "a.nii.gz": "duplicate volume (same file as an earlier row)"}
    manifest, rejects = import_nifti(table, tmp_path, salt="s", age_min=40, age_max=65)
    assert manifest["path"].tolist() == ["a.nii.gz"]
    assert dict(zip(rejects.path, rejects.reason))["f.nii.gz"] == "age out of range"


def test_gaussian_nll_predicted_sd_grows_with_injected_noise(tmp_path, cache_root):
    from radscreen.jobs import train

    from hydra_helpers import compose_train, tiny_overrides
    from synthetic import make_noise_cohort

    # one true age for all: the marked half's labels carry 12 y of noise, the others 1 y; the SDs are what is learned
    manifest = make_noise_cohort(tmp_path / "noise", n=300, size=32, ages=(50.0, 50.0))
    cfg = compose_train([*tiny_overrides(manifest, tmp_path, cache_root), "task=[age_gnll]", "trainer.max_epochs=15",
                         "augment=none", "model.scheduler=null", "trainer.deterministic=true"], tmp_path)
    metrics = train(cfg)
    predictions = pd.read_csv(tmp_path / "predictions_test.csv").merge(
        pd.read_csv(manifest)[["image_id", "noisy"]], on="image_id")
    sd = np.sqrt(predictions["age_var"])
    noisy, clean = sd[predictions["noisy"] == 1].mean(), sd[predictions["noisy"] == 0].mean()
    # seeds 0-4 gave noisy 10.1-13.3 y and noisy / clean 4.7-7.6: the bounds leave wide margins
    assert noisy > 2.5 * clean, (noisy, clean)
    assert 7 < noisy < 18, noisy  # the injected label noise: SD 12 years
    assert metrics["test/age_mean_sd"] == pytest.approx(sd.mean(), rel=1e-6)
    assert np.isfinite(metrics["test/age_sd_error_corr"])
