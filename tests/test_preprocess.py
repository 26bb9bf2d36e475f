"""Decoding and preprocessing against plain NumPy references."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from pydicom.uid import JPEG2000Lossless, RLELossless

from radscreen.io.dicom import read_pixels
from radscreen.io.dicom_write import write_radiograph
from radscreen.preprocess.cxr import CXRPreprocess
from radscreen.preprocess.geometry import RoiBox, crop_roi, resize
from radscreen.preprocess.intensity import clip_percentiles, minmax, percentiles, zscore

from conftest import gradient_image


@pytest.mark.parametrize("dtype,high", [(np.uint8, 255), (np.uint16, 4095), (np.uint16, 65535), (np.int16, 3000)])
@pytest.mark.parametrize("q", [(0.5, 99.5), (0, 100), (1, 50, 99), (33.3,)])
def test_histogram_percentiles_equal_numpy(dtype, high, q):
    rng = np.random.default_rng(7)
    low = -1000 if dtype == np.int16 else 0
    image = rng.integers(low, high + 1, size=(97, 61)).astype(dtype)
    assert np.array_equal(percentiles(image, q), np.percentile(image, q))


def test_float_percentiles_and_bad_q():
    image = np.random.default_rng(0).normal(size=(50, 50))
    assert np.allclose(percentiles(image, (0.5, 99.5)), np.percentile(image, (0.5, 99.5)))
    with pytest.raises(ValueError, match="percentiles must lie"):
        percentiles(image, (101,))


def test_clip_minmax_zscore():
    image = np.arange(1000, dtype=np.uint16).reshape(25, 40)
    clipped = clip_percentiles(image, 0.5, 99.5)
    lo, hi = np.percentile(image, (0.5, 99.5))
    assert clipped.min() == pytest.approx(lo) and clipped.max() == pytest.approx(hi)
    scaled = minmax(clipped)
    assert scaled.min() == 0.0 and scaled.max() == 1.0 and scaled.dtype == np.float32
    z = zscore(scaled)
    assert z.mean() == pytest.approx(0, abs=1e-6) and z.std() == pytest.approx(1, abs=1e-5)
    assert not zscore(np.ones((4, 4))).any() and not minmax(np.ones((4, 4))).any()
    with pytest.raises(ValueError):
        clip_percentiles(image, 60, 40)


def test_resize_and_roi():
    image = np.linspace(0, 1, 64 * 80, dtype=np.float32).reshape(64, 80)
    out = resize(image, 32)
    assert out.shape == (32, 32) and out.min() >= 0 and out.max() <= 1
    box = RoiBox("upper_left", 0.0, 0.0, 0.5, 0.25)
    assert np.array_equal(crop_roi(image, box), image[:32, :20])
    with pytest.raises(ValueError, match="ROI"):
        RoiBox("bad", 0.5, 0, 0.4, 1)


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_monochrome1_is_inverted_within_its_range(tmp_path, bits):
    stored = gradient_image(bits=bits)
    write_radiograph(tmp_path / "m1.dcm", stored, patient_id="x", photometric="MONOCHROME1", bits_stored=bits)
    pixels = read_pixels(tmp_path / "m1.dcm")
    expected = int(stored.max()) + int(stored.min()) - stored.astype(np.int64)
    assert np.array_equal(pixels.astype(np.int64), expected)


def test_modality_and_voi_luts(tmp_path):
    stored = gradient_image(bits=12)
    write_radiograph(tmp_path / "r.dcm", stored, patient_id="x", bits_stored=12, rescale=(2.0, -1024.0),
                     window=(1000.0, 2000.0))
    assert np.allclose(read_pixels(tmp_path / "r.dcm"), stored * 2.0 - 1024.0)
    windowed = read_pixels(tmp_path / "r.dcm", apply_voi=True)
    rescaled = stored * 2.0 - 1024.0
    inside = (rescaled > 100) & (rescaled < 1900)
    # the linear window maps [0, 2000] onto the output range: order kept, ends saturated
    assert np.all(np.diff(windowed[inside][np.argsort(rescaled[inside])]) >= 0)
    assert windowed[rescaled <= 0].max() == windowed.min()


@pytest.mark.parametrize("syntax", [JPEG2000Lossless, RLELossless])
def test_compressed_pixels_are_lossless(tmp_path, syntax):
    stored = gradient_image(bits=12, seed=3)
    write_radiograph(tmp_path / "c.dcm", stored, patient_id="x", bits_stored=12, transfer_syntax=syntax,
                     birth_date=date(1970, 1, 1))
    assert np.array_equal(read_pixels(tmp_path / "c.dcm"), stored)


def test_pipeline_output_and_key():
    stored = gradient_image(rows=120, cols=100, bits=12)
    config = CXRPreprocess(image_size=32)
    out = config(stored)
    assert out.shape == (32, 32) and out.dtype == np.float32 and out.min() == 0 and out.max() == 1
    assert CXRPreprocess(image_size=32).key() == config.key() != CXRPreprocess(image_size=64).key()
    roi = CXRPreprocess(image_size=32, roi={"name": "top", "top": 0, "left": 0, "bottom": 0.5, "right": 1})
    assert roi.key() != config.key()
    assert np.allclose(roi(stored), config(stored[:60]))


def test_histogram_percentiles_equal_numpy_on_random_shapes():
    rng = np.random.default_rng(1)
    for _ in range(500):
        high = int(rng.integers(1, 70000))
        image = rng.integers(-high // 3, high, size=int(rng.integers(1, 500))).astype(np.int32)
        q = np.concatenate([rng.uniform(0, 100, size=3), [0, 0.5, 99.5, 100]])
        assert np.array_equal(percentiles(image, q), np.percentile(image, q))
