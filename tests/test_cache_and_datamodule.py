"""Preprocessing cache round trip and the Hydra-instantiated CXR data module."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from radscreen.data import cache
from radscreen.errors import UserError
from radscreen.io.dicom import DicomReadError
from radscreen.io.errors import ImageReadError
from radscreen.io.images import read_image
from radscreen.manifests.build import build_manifest
from radscreen.manifests.scan import ScanOptions
from radscreen.preprocess.cxr import CXRPreprocess

from conftest import SALT

CONF = str(Path(__file__).resolve().parents[1] / "conf")


@pytest.fixture
def manifest(dicom_folder, tmp_path) -> tuple[Path, pd.DataFrame]:
    out = tmp_path / "m.csv"
    frame, _ = build_manifest(ScanOptions(root=str(dicom_folder), salt=SALT), out, workers=1, show_progress=False)
    return out, frame


def test_cache_round_trips_and_is_reused(manifest, dicom_folder, tmp_path):
    _, frame = manifest
    config = CXRPreprocess(image_size=32)
    report = cache.build_cache(frame, dicom_folder, config, tmp_path / "cache", workers=2, show_progress=False)
    assert report.built == len(frame) == 6 and report.reused == 0 and report.failures.empty
    for row in frame.itertuples():
        expected = config(read_image(dicom_folder / row.path))
        stored = cache.load(report.directory, row.image_id)
        assert stored.shape == (32, 32)
        assert np.abs(stored - expected).max() <= 0.5 / cache.SCALE + 1e-7
    again = cache.build_cache(frame, dicom_folder, config, tmp_path / "cache", workers=1, show_progress=False)
    assert again.built == 0 and again.reused == 6
    other = cache.build_cache(frame, dicom_folder, CXRPreprocess(image_size=48), tmp_path / "cache", workers=1,
                              show_progress=False)
    assert other.directory != report.directory and other.built == 6  # sizes side by side


def test_decode_failure_is_reported_not_raised(manifest, dicom_folder, tmp_path):
    _, frame = manifest
    victim = frame.iloc[0]
    data = (dicom_folder / victim.path).read_bytes()
    (dicom_folder / victim.path).write_bytes(data[:600])  # now truncated
    report = cache.build_cache(frame, dicom_folder, CXRPreprocess(image_size=32), tmp_path / "cache", workers=1,
                               show_progress=False)
    assert report.built == 5
    assert report.failures["image_id"].tolist() == [victim.image_id]
    assert report.failures["reason"].iloc[0] == "pixel data could not be decoded"
    assert (report.directory / cache.FAILURES_FILE).exists()


def test_an_undecodable_png_is_an_image_error_not_a_dicom_error(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(ImageReadError, match="image file could not be decoded") as raised:
        read_image(broken)
    assert not isinstance(raised.value, DicomReadError)
    assert cache.preprocess_file(CXRPreprocess(image_size=32), str(broken)) == (None, "image file could not be decoded")


def compose_data(manifest_path: Path, dicom_folder: Path, tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            f"data.manifest={manifest_path}", f"data.image_root={dicom_folder}", f"paths.cache_dir={tmp_path}/c",
            "data.image_size=32", "data.num_workers=0", "data.batch_size=2", "data.show_progress=false",
            "data.split.stratify=[]", "data.split.fractions=[0.5,0.25,0.25]", *overrides])
    return cfg, instantiate(cfg.data)


def test_datamodule_from_config_yields_batches_with_targets(manifest, dicom_folder, tmp_path):
    path, frame = manifest
    cfg, dm = compose_data(path, dicom_folder, tmp_path, "task=[age,sex]", "augment=thesis", "data.in_chans=3")
    dm.prepare_data()
    dm.setup("fit")
    sizes = {k: len(v) for k, v in dm.datasets.items()}
    assert sum(sizes.values()) == 6 and set(sizes) == {"train", "val", "test"}
    by_id = frame.set_index("image_id")
    for loader in [dm.train_dataloader(), dm.val_dataloader(), *dm.test_dataloader()]:
        batch = next(iter(loader))
        images = batch["image"]
        assert images.shape[1:] == (3, 32, 32) and images.dtype == torch.float32
        assert torch.allclose(images[:, 0].mean(dim=(1, 2)), torch.zeros(len(images)), atol=1e-4)  # z-scored
        for i, image_id in enumerate(batch["image_id"]):
            assert batch["targets"]["age"][i].item() == pytest.approx(by_id.loc[image_id, "age_years"], abs=1e-3)
            assert batch["targets"]["sex"][i].item() == float(by_id.loc[image_id, "sex"] == "F")
            assert batch["sex"][i].item() == float(by_id.loc[image_id, "sex"] == "F")
    # patients never cross splits
    assert dm.frame.groupby("patient_id")["split"].nunique().max() == 1


def test_datamodule_roi_and_missing_task_column(manifest, dicom_folder, tmp_path):
    path, _ = manifest
    _, dm = compose_data(path, dicom_folder, tmp_path, "task=[age]", "roi=right_shoulder", "augment=none")
    assert dm.preprocess.roi.name == "right_shoulder"
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.datasets["train"]) > 0
    _, bad = compose_data(path, dicom_folder, tmp_path, "task=[osteo_binary]")
    with pytest.raises(UserError, match="has no values in column bmd_class; osteoporosis labels come from the DXA"):
        bad.prepare_data()


def test_thesis_augmentation_keeps_shape_and_range():
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name="train", overrides=["augment=thesis"])
    transform = instantiate(cfg.augment.train)
    image = np.random.default_rng(0).uniform(0, 1, size=(64, 64)).astype(np.float32)
    out = transform(image=image)["image"]
    assert out.shape == (64, 64) and out.dtype == np.float32 and np.isfinite(out).all()


def test_prediction_loader_never_augments(manifest, dicom_folder, tmp_path):
    path, _ = manifest
    _, dm = compose_data(path, dicom_folder, tmp_path, "task=[age]", "augment=thesis")
    dm.prepare_data()
    dm.setup("fit")
    first = next(iter(dm.prediction_loader("train")))["image"]
    second = next(iter(dm.prediction_loader("train")))["image"]
    assert torch.equal(first, second)  # no random augmentation
    assert dm.datasets["train"].transform is not None  # the training loader still augments
