"""Every experiment config composes from the real tree and runs a fast_dev_run with a tiny backbone."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
import torchvision
from hydra.utils import instantiate
from omegaconf import OmegaConf

from radscreen.errors import UserError
from radscreen.models.backbones import create_backbone
from radscreen.training.checks import ConfigError
from radscreen.training.run import train

from hydra_helpers import ROOT, compose_train, tiny_overrides

EXPERIMENTS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
THESIS_SIZES = {"224_b100": (224, 100), "224_b20": (224, 20), "512_b20": (512, 20), "512_b4": (512, 4),
                "1024_b4": (1024, 4)}


@pytest.fixture(scope="module")
def upstream(cohort, cache_root, tmp_path_factory) -> dict[str, Path]:
    """An age checkpoint (1 epoch, test_resnet) and a fake ImageNet file in timm's layout (3 channels, 1000 classes)."""
    work = tmp_path_factory.mktemp("upstream")
    cfg = compose_train(tiny_overrides(cohort, work, cache_root) + ["trainer.max_epochs=1", "evaluate=false"],
                        work / "age")
    train(cfg)
    imagenet = work / "test_resnet_imagenet.pth"
    torch.save(timm.create_model("test_resnet", num_classes=1000).state_dict(), imagenet)
    return {"age": work / "age" / "checkpoints" / "last.ckpt", "imagenet": imagenet}


def test_experiment_list_is_complete():
    expected = {"age_densenet169", "age_inceptionv3", "sex_resnet50", "sex_inceptionv3", "stress_age",
                "stress_sex", "osteo_roi_right_shoulder", "osteo_roi_cervicothoracic_spine",
                "osteo_roi_thoracolumbar_spine", "osteo_subgroup", "osteo_baseline", "osteo_female", "osteo_male",
                "osteo_transfer_imagenet", "osteo_transfer_subgroup", "osteo_transfer_age", "osteo_transfer_sex",
                "osteo_transfer_age40", "osteo_fusion_age", "osteo_fusion_sex", "osteo_fusion_both",
                "osteo_fusion_predage", "osteo_stress_matched", "ct_age_resnet18_gnll",
                "ct_age_r3d18_gnll_3d"}
    assert expected <= set(EXPERIMENTS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_fast_dev_run(experiment, cohort, ct_cohort, cache_root, upstream, tmp_path):
    manifest = ct_cohort if experiment.startswith("ct_") else cohort
    overrides = [f"experiment={experiment}", *tiny_overrides(manifest, tmp_path, cache_root),
                 "trainer.fast_dev_run=true", "trainer.precision=bf16-mixed",
                 *(f"upstream.{k}={upstream['age']}" for k in ("age", "age40", "sex", "subgroup")),
                 f"upstream.imagenet={upstream['imagenet']}"]
    if experiment.startswith(("stress", "osteo_stress")):
        overrides += ["data.split.n_train=40", "data.split.n_val=10"]
    if experiment.startswith("ct_"):
        overrides += ["data.preprocess.shape_zyx=[32,32,32]"]
    if experiment.endswith("_3d"):
        overrides.remove("backbone=test_resnet")  # keep the 3-D backbone: the volume path is what is tested
        # bf16 3-D convolutions have no fast CPU kernel without AVX-512 BF16 (minutes instead of seconds on AVX2
        # machines); mixed precision is exercised by every other experiment here
        overrides[overrides.index("trainer.precision=bf16-mixed")] = "trainer.precision=32-true"
    cfg = compose_train(overrides, tmp_path / "out")
    assert cfg.run_name == experiment
    metrics = train(cfg)
    assert any(k.startswith("train/") for k in metrics), metrics
    assert (tmp_path / "out" / "metrics.json").exists()


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_resolves_and_builds_its_data_module(experiment, tmp_path):
    cfg = compose_train([f"experiment={experiment}"], tmp_path)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["run_name"] == experiment
    data = instantiate(cfg.data)
    assert data.preprocess.image_size == cfg.data.image_size and data.batch_size == cfg.data.batch_size
    kind = "ct" if experiment.startswith("ct_") else "cxr"
    assert data.preprocess.describe()["kind"] == kind


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_each_experiment_keeps_its_studys_protocol(experiment, tmp_path):
    """What experiment/<study>/_base.yaml gives every experiment of the study (unless the experiment says otherwise)."""
    cfg = compose_train([f"experiment={experiment}"], tmp_path)
    split = cfg.data.split
    if experiment.startswith("osteo_"):
        assert (cfg.backbone.name, cfg.head.kind, cfg.head.hidden) == ("inception_v3", "mlp", [256, 64])
        assert list(cfg.task) == ["osteo"] and cfg.task.osteo.column == "bmd_class"
        by_sex = experiment in ("osteo_female", "osteo_male")
        assert list(split.balance_by) == list(split.stratify) == (["bmd_class"] if by_sex else ["bmd_class", "sex"])
    elif experiment.startswith("ct_"):
        assert (cfg.data.preprocess._target_, list(cfg.task), cfg.task.age.loss) == (
            "radscreen.preprocess.ct.CTPreprocess", ["age"], "gaussian_nll")
        assert (split.folds, list(split.fractions)) == (5, [0.8, 0.0, 0.2])
    else:
        study = "sex" if "sex" in experiment else "age"
        assert list(cfg.task) == [study] and list(split.stratify) == ["sex"] and list(split.balance_by) == []
    if not experiment.startswith("ct_"):
        assert (cfg.data.image_size, cfg.data.batch_size) == (512, 20)  # the thesis's size and batch


@pytest.mark.parametrize("experiment", ["age_densenet169", "ct_age_r3d18_gnll_3d"])
@pytest.mark.parametrize("size", sorted(THESIS_SIZES))
def test_size_option_sets_both_the_image_size_and_the_batch_size(size, experiment, tmp_path):
    cfg = compose_train([f"experiment={experiment}", f"size={size}"], tmp_path)
    data = instantiate(cfg.data)
    assert (data.preprocess.image_size, data.batch_size) == THESIS_SIZES[size]  # over the experiment's own batch


def test_the_size_group_holds_the_thesis_pairs():
    assert sorted(p.stem for p in (ROOT / "conf" / "size").glob("*.yaml")) == sorted(THESIS_SIZES)


def test_a_3d_checkpoint_in_the_earlier_layout_still_loads(tmp_path):
    """3-D backbones now come through timm's registry; a checkpoint written before (backbone name video_r3d_18,
    parameters named as torchvision's r3d_18 without fc: backbone.stem.*, backbone.layer1-4.*) loads and computes
    what that torchvision network computes."""
    from radscreen.models.module import RadscreenModule, load_module

    torch.manual_seed(0)
    reference = torchvision.models.video.r3d_18(weights=None)
    reference.stem[0] = torch.nn.Conv3d(1, 64, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False)
    reference.fc = torch.nn.Identity()
    module = RadscreenModule(tasks={"age": {"name": "age", "column": "age_years", "kind": "regression"}},
                             backbone={"name": "video_r3d_18", "in_chans": 1, "weights": "none",
                                       "weights_file": None, "drop_rate": 0.0})
    state = module.state_dict()
    earlier = {f"backbone.{k}": v for k, v in reference.state_dict().items()}
    assert {k for k in state if k.startswith("backbone.")} == set(earlier)
    state.update(earlier)
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": state}, tmp_path / "earlier.ckpt")
    loaded = load_module(tmp_path / "earlier.ckpt")
    volume = torch.randn(2, 1, 16, 16, 16)
    with torch.no_grad():
        assert torch.allclose(loaded.features(volume), reference.eval()(volume), atol=1e-5)
    assert "video_r3d_18" in timm.list_models("video_*")
    with pytest.raises(UserError, match="3-D backbones have no ImageNet weights"):
        create_backbone("video_r3d_18", weights="imagenet")


def test_transfer_experiment_without_upstream_fails_clearly(cohort, cache_root, tmp_path):
    cfg = compose_train(["experiment=osteo_transfer_age", *tiny_overrides(cohort, tmp_path, cache_root)], tmp_path)
    with pytest.raises(ConfigError, match="needs upstream.age=PATH"):
        train(cfg)


def test_monitor_that_is_never_logged_fails_before_training(cohort, cache_root, tmp_path):
    cfg = compose_train([*tiny_overrides(cohort, tmp_path, cache_root), "monitor=val/age_auroc"], tmp_path)
    with pytest.raises(ConfigError, match="never logged"):
        train(cfg)


def test_imagenet_without_a_file_asks_timm_for_its_pretrained_weights(monkeypatch):
    from radscreen.models import backbones

    asked = {}
    monkeypatch.setattr(backbones.timm, "create_model", lambda name, **kw: asked.update(name=name, **kw))
    backbones.create_backbone("densenet169", weights="imagenet")
    assert asked["name"] == "densenet169" and asked["pretrained"] is True and asked["pretrained_cfg_overlay"] is None
    backbones.create_backbone("densenet169", weights="imagenet", weights_file=__file__)
    assert asked["pretrained_cfg_overlay"] == {"file": __file__}


def test_imagenet_hub_download_offline_fails_in_one_line(monkeypatch, tmp_path):
    from radscreen.errors import UserError
    from radscreen.models.backbones import create_backbone

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the suite never reaches a hub; an empty cache has nothing
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(UserError, match=r"timm could not fetch the ImageNet weights of test_resnet \(.*\); without "
                                        r"internet, set backbone.weights_file=/path/to/test_resnet.safetensors"):
        create_backbone("test_resnet", weights="imagenet")
    with pytest.raises(UserError, match="backbone.weights_file /nowhere.pth does not exist"):
        create_backbone("test_resnet", weights="imagenet", weights_file="/nowhere.pth")
