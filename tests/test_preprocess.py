"""Decoding and preprocessing against plain NumPy references."""

from __future__ import annotations

from datetime import date

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut
from pydicom.uid import JPEG2000Lossless, RLELossless

from radscreen.data.cache import encode
from radscreen.io.dicom import read_pixels
from radscreen.io.dicom_write import write_radiograph
from radscreen.preprocess.cxr import CXRPreprocess
from radscreen.preprocess.geometry import RoiBox, crop_roi, resize
from radscreen.preprocess.intensity import (
    clip_percentiles,
    code_histogram,
    histogram_percentiles,
    lookup,
    minmax,
    percentiles,
    zscore,
)

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


def reference_cxr(path, config: CXRPreprocess) -> np.ndarray:
    """The CXR chain written out per pixel with pydicom, NumPy and OpenCV: the computation before the lookup table."""
    ds = pydicom.dcmread(path)
    pixels = apply_modality_lut(ds.pixel_array, ds)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        wide = pixels.astype(np.float64 if pixels.dtype.kind == "f" else np.int64)
        pixels = wide.max() + wide.min() - wide
    if config.roi is not None:
        pixels = crop_roi(pixels, config.roi)
    lo, hi = np.percentile(pixels, (config.lower_percentile, config.upper_percentile))
    clipped = np.clip(pixels.astype(np.float32), lo, hi).astype(np.float32)
    low, high = clipped.min(), clipped.max()
    scaled = (clipped - low) / (high - low) if high > low else np.zeros_like(clipped)
    size = config.image_size
    return np.clip(cv2.resize(scaled, (size, size), interpolation=cv2.INTER_CUBIC), scaled.min(), scaled.max())


TOP_ROI = {"name": "top", "top": 0.0, "left": 0.1, "bottom": 0.6, "right": 1.0}


@pytest.mark.parametrize("dtype,low,high,bits,photometric,rescale,roi", [
    (np.uint8, 0, 255, 8, "MONOCHROME2", None, None),
    (np.uint8, 10, 200, 8, "MONOCHROME1", (2.0, -100.0), None),
    (np.uint16, 0, 4095, 12, "MONOCHROME1", None, None),
    (np.uint16, 0, 4095, 12, "MONOCHROME1", (1.0, 0.0), None),
    (np.uint16, 0, 4095, 12, "MONOCHROME2", (-1.5, 4000.0), None),
    (np.uint16, 300, 1200, 12, "MONOCHROME1", None, TOP_ROI),
    (np.uint16, 0, 65535, 16, "MONOCHROME2", (0.5, -1000.0), None),
    (np.uint16, 100, 60000, 16, "MONOCHROME1", None, TOP_ROI),
    (np.int16, -2000, 3000, 16, "MONOCHROME2", None, None),
    (np.int16, -32768, 32767, 16, "MONOCHROME1", (1.0, -1024.0), TOP_ROI),
])
def test_lookup_table_path_equals_per_pixel_chain(tmp_path, dtype, low, high, bits, photometric, rescale, roi):
    rng = np.random.default_rng(high - low)
    ramp = np.linspace(low, high, 83 * 71).reshape(83, 71)
    stored = np.clip(ramp + rng.normal(0, (high - low) * 0.05, size=ramp.shape), low, high).astype(dtype)
    write_radiograph(tmp_path / "x.dcm", stored, patient_id="x", photometric=photometric, bits_stored=bits,
                     rescale=rescale)
    config = CXRPreprocess(image_size=32, roi=roi)
    new = config.from_file(tmp_path / "x.dcm")
    reference = reference_cxr(tmp_path / "x.dcm", config)
    assert new.dtype == np.float32 and new.shape == (32, 32)
    assert np.abs(new - reference).max() <= 1e-6
    assert np.array_equal(encode(new), encode(reference))  # the cached bytes are those of the per-pixel chain
    assert np.array_equal(new, config(read_pixels(tmp_path / "x.dcm")))


@pytest.mark.parametrize("dtype,bits,photometric,rescale,roi", [
    (np.uint16, 12, "MONOCHROME1", None, None),
    (np.uint16, 12, "MONOCHROME2", (-1.5, 4000.0), TOP_ROI),
    (np.uint16, 10, "MONOCHROME1", (1.0, 0.0), None),
    (np.int16, 12, "MONOCHROME2", None, None),
    (np.int16, 13, "MONOCHROME1", (1.0, -1024.0), TOP_ROI),
    (np.uint8, 6, "MONOCHROME1", None, None),
])
def test_bits_above_bits_stored_are_ignored_as_pydicom_ignores_them(tmp_path, dtype, bits, photometric, rescale,
                                                                    roi):
    # DICOM leaves the bits above BitsStored undefined, and some writers leave overlays or noise there: the cache
    # reads the file's codes without pydicom's corrected copy and must drop those bits in its lookup table
    rng = np.random.default_rng(bits)
    width = 8 * np.dtype(dtype).itemsize
    values = rng.integers(0, 1 << bits, (83, 71)).astype(np.int64)  # the stored values' bit patterns
    junk = rng.integers(0, 1 << (width - bits), (83, 71)).astype(np.int64) << bits
    codes = (values | junk).astype(np.dtype(dtype).newbyteorder("=").str.replace("i", "u")).view(dtype)
    write_radiograph(tmp_path / "x.dcm", codes, patient_id="x", photometric=photometric, bits_stored=bits,
                     rescale=rescale)
    assert pydicom.dcmread(tmp_path / "x.dcm").pixel_array.tobytes() != codes.tobytes()  # pydicom drops the junk
    config = CXRPreprocess(image_size=32, roi=roi)
    new = config.from_file(tmp_path / "x.dcm")
    reference = reference_cxr(tmp_path / "x.dcm", config)
    assert np.abs(new - reference).max() <= 1e-6
    assert np.array_equal(encode(new), encode(reference))


def test_jpeg2000_precision_above_bits_stored_is_read_as_pydicom_reads_it(tmp_path):
    # pydicom corrects JPEG 2000 by the codestream's precision, not by BitsStored: a 16-bit codestream in a file
    # that says 12 bits keeps its 16-bit values, and the cache must take them as they are, not trimmed to 12 bits
    codes = np.random.default_rng(7).integers(0, 1 << 16, (60, 50)).astype(np.uint16)
    write_radiograph(tmp_path / "x.dcm", codes, patient_id="x", bits_stored=16, transfer_syntax=JPEG2000Lossless,
                     photometric="MONOCHROME1")
    ds = pydicom.dcmread(tmp_path / "x.dcm")
    ds.BitsStored, ds.HighBit = 12, 11
    ds.save_as(tmp_path / "x.dcm")
    assert pydicom.dcmread(tmp_path / "x.dcm").pixel_array.max() >= 1 << 12
    config = CXRPreprocess(image_size=32)
    assert np.array_equal(encode(config.from_file(tmp_path / "x.dcm")), encode(reference_cxr(tmp_path / "x.dcm",
                                                                                             config)))


def test_lookup_table_path_on_constant_and_two_valued_images(tmp_path):
    config = CXRPreprocess(image_size=16)
    out = {}
    for name, stored in (("flat", np.full((40, 30), 700, np.uint16)),
                         ("two", np.where(np.arange(1200).reshape(40, 30) % 7 == 0, 50, 3000).astype(np.uint16))):
        write_radiograph(tmp_path / f"{name}.dcm", stored, patient_id="x", photometric="MONOCHROME1", bits_stored=12)
        out[name] = config.from_file(tmp_path / f"{name}.dcm")
        assert np.array_equal(out[name], reference_cxr(tmp_path / f"{name}.dcm", config))
    assert not out["flat"].any() and out["two"].min() == 0 and out["two"].max() > 0.5


def test_float_and_raster_images_keep_the_per_pixel_path(tmp_path):
    rng = np.random.default_rng(5)
    config = CXRPreprocess(image_size=24)
    floats = rng.normal(100.0, 30.0, size=(50, 60)).astype(np.float32)
    cv2.imwrite(str(tmp_path / "f.tiff"), floats)
    lo, hi = np.percentile(floats, (0.5, 99.5))
    scaled = minmax(np.clip(floats, lo, hi))
    expected = np.clip(cv2.resize(scaled, (24, 24), interpolation=cv2.INTER_CUBIC), 0, 1)
    assert np.array_equal(config.from_file(tmp_path / "f.tiff"), expected)
    grey = gradient_image(rows=50, cols=60, bits=8)
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    assert np.array_equal(config.from_file(tmp_path / "g.png"), config(grey))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16])
@pytest.mark.parametrize("opencv_lut", [True, False])
def test_code_histogram_and_lookup_equal_numpy(monkeypatch, dtype, opencv_lut):
    import radscreen.preprocess.intensity as intensity

    monkeypatch.setattr(intensity, "_OPENCV_LUT_16_BIT", opencv_lut and intensity._OPENCV_LUT_16_BIT)
    info = np.iinfo(dtype)
    image = np.random.default_rng(3).integers(info.min, info.max, size=(61, 47), endpoint=True).astype(dtype)
    crop = image[5:50, 3:40]  # not contiguous
    values, counts = code_histogram(crop)
    assert np.array_equal(values, np.arange(info.min, info.max + 1))
    assert np.array_equal(counts, np.bincount(crop.ravel().astype(np.int64) - info.min, minlength=len(values)))
    table = np.random.default_rng(4).random(len(values)).astype(np.float32)
    assert np.array_equal(lookup(table, crop), table[crop.astype(np.int64) - info.min])


def test_histogram_percentiles_of_unordered_repeated_values():
    rng = np.random.default_rng(11)
    for _ in range(200):
        values = rng.normal(0, 100, size=int(rng.integers(1, 40)))
        values = np.concatenate([values, values[: len(values) // 3]])  # repeats
        counts = rng.integers(0, 6, size=len(values))
        counts[int(rng.integers(len(values)))] += 1
        q = np.concatenate([rng.uniform(0, 100, size=3), [0, 0.5, 99.5, 100]])
        assert np.array_equal(histogram_percentiles(values, counts, q), np.percentile(np.repeat(values, counts), q))
