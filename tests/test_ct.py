"""CT volumes: series reading and checks, body mask, MIP, the CT preprocessing on the real chest CT."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
import SimpleITK as sitk

from radscreen.io.volume import VolumeReadError, read_volume, series_files
from radscreen.io.volume_write import write_series
from radscreen.phantoms.fetch import fetch_ct
from radscreen.preprocess.ct import AIR_HU, CTPreprocess, body_mask, mip, resample


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
def real_ct():
    return sitk.ReadImage(str(fetch_ct() / "cxr.nii.gz"))


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
