"""Every experiment config composes from the real tree and runs a fast_dev_run with a tiny backbone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import timm
import torch
import torchvision
from hydra.utils import instantiate
from omegaconf import OmegaConf

from radscreen.errors import UserError
from radscreen.jobs import train
from radscreen.manifests.importers import CHEXPERT_FINDINGS
from radscreen.models.backbones import create_backbone
from radscreen.training.checks import ConfigError

from hydra_helpers import ROOT, compose_train, tiny_overrides

EXPERIMENTS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
CHEXPERT_COLUMNS = [c.lower().replace(" ", "_") for c in CHEXPERT_FINDINGS]


@pytest.fixture(scope="module")
def mimic_cohort(cohort) -> Path:
    """The synthetic cohort with the columns `import_manifest.py mimic` adds (seeded random values, some missing)."""
    manifest = pd.read_csv(cohort)
    rng = np.random.default_rng(7)
    race = rng.choice(["White", "Black", "Asian", "Hispanic/Latino", "Other", None], len(manifest))
    manifest["race"], manifest["race_raw"] = race, [None if r is None else r.upper() for r in race]
    manifest["insurance"] = rng.choice(["Medicare", "Medicaid", "Other", None], len(manifest))
    manifest["mortality_1y"] = rng.integers(0, 2, len(manifest))
    for finding in CHEXPERT_COLUMNS:  # 1 / 0 / -1 (uncertain) / not mentioned, as the importers write them
        manifest[finding] = rng.choice([1.0, 0.0, -1.0, np.nan], len(manifest))
    path = cohort.with_name("mimic.csv")  # beside the cohort's manifest: the same image folder
    manifest.to_csv(path, index=False)
    return path
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
                "ct_age_r3d18_gnll_3d", "mimic_mortality", "mimic_gender", "mimic_race", "mimic_race_white_black",
                "mimic_insurance", "chexpert_findings"}
    assert expected <= set(EXPERIMENTS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_fast_dev_run(experiment, cohort, ct_cohort, mimic_cohort, cache_root, upstream, tmp_path):
    manifest = {"ct": ct_cohort, "mimic": mimic_cohort, "chexpert": mimic_cohort}.get(experiment.split("_")[0], cohort)
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


@pytest.mark.parametrize("experiment", [e for e in EXPERIMENTS if e.startswith("mimic_")])
def test_mimic_experiments_share_the_study_protocol(experiment, tmp_path):
    cfg = compose_train([f"experiment={experiment}"], tmp_path)
    assert (cfg.backbone.name, cfg.backbone.weights, cfg.data.image_size, cfg.data.in_chans) == (
        "densenet121", "imagenet", 224, 3)
    assert cfg.data.manifest.endswith("data_manifests/mimic.csv") and cfg.model.trainable_blocks is None
    (task,) = cfg.task.values()
    expected = {"mimic_mortality": ("mortality_1y", "BinaryTask", [1]), "mimic_gender": ("sex", "BinaryTask", ["F"]),
                "mimic_race": ("race", "MulticlassTask", []),
                "mimic_race_white_black": ("race", "BinaryTask", ["Black"]),
                "mimic_insurance": ("insurance", "MulticlassTask", [])}[experiment]
    assert (task.column, task._target_.rsplit(".", 1)[-1], list(task.get("positive", []))) == expected
    if experiment == "mimic_race":
        assert list(task.classes) == ["White", "Black", "Asian", "Hispanic/Latino", "Other"]
    if experiment == "mimic_race_white_black":
        assert list(task.negative) == ["White"] and list(cfg.data.split.filters.race) == ["White", "Black"]


def test_mimic_race_trains_and_scores_the_five_groups(mimic_cohort, cache_root, upstream, tmp_path):
    """One epoch of the multiclass race model on the phantom MIMIC manifest: every labelled test image is scored."""
    cfg = compose_train(["experiment=mimic_race", *tiny_overrides(mimic_cohort, tmp_path, cache_root),
                         "trainer.max_epochs=1", f"upstream.imagenet={upstream['imagenet']}"], tmp_path / "out")
    metrics = train(cfg)
    assert "test/race_loss" in metrics, sorted(metrics)
    predictions = pd.read_csv(tmp_path / "out" / "predictions_test.csv")
    manifest = pd.read_csv(mimic_cohort).set_index("image_id")
    groups = ["White", "Black", "Asian", "Hispanic/Latino", "Other"]
    assert set(predictions["race_pred"]) <= set(groups)
    probabilities = predictions[[f"race_prob_{g}" for g in groups]].sum(axis=1)
    assert np.allclose(probabilities, 1.0, atol=1e-5)
    labelled = predictions.dropna(subset=["race_target"])
    assert len(labelled) and labelled["race_target"].tolist() == manifest.loc[labelled["image_id"], "race"].tolist()
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
    if experiment.startswith(("mimic_", "chexpert_")):
        return  # the MIMIC study's protocol: test_mimic_experiments_share_the_study_protocol
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


def test_chexpert_findings_reads_the_importers_columns(tmp_path):
    """The findings task reads exactly the 14 columns the MIMIC and CheXpert importers write."""
    cfg = compose_train(["experiment=chexpert_findings"], tmp_path)
    (task,) = cfg.task.values()
    assert task._target_ == "radscreen.tasks.MultilabelTask" and list(task.columns) == CHEXPERT_COLUMNS
    assert len(CHEXPERT_COLUMNS) == 14 and task.uncertain == "ignore"
