"""Training behaviour: learning, transfer, freezing, fusion, Gaussian NLL, eval reproduction, resume, DDP."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from radscreen.jobs import train
from radscreen.models.backbones import block_groups
from radscreen.models.module import RadscreenModule, load_module

from hydra_helpers import ROOT, compose_train, run_script, tiny_overrides

AGE = {"age": {"name": "age", "column": "age_years", "_target_": "radscreen.tasks.RegressionTask", "loss": "mse"}}
OSTEO = {"osteo": {"_target_": "radscreen.tasks.BinaryTask",
                   "name": "osteo", "column": "bmd_class", "positive": ["osteoporosis"]}}
TINY = {"name": "test_resnet", "in_chans": 1}


def test_training_learns_age_and_osteoporosis(cohort, cache_root, tmp_path):
    cfg = compose_train([*tiny_overrides(cohort, tmp_path, cache_root), "task=[age,osteo_binary]",
                         "trainer.max_epochs=12", "augment=none", "model.scheduler=null",
                         "data.split.stratify=[bmd_class,sex]"], tmp_path)
    metrics = train(cfg)
    train_pred = pd.read_csv(tmp_path / "predictions_train.csv")
    test_pred = pd.read_csv(tmp_path / "predictions_test.csv")
    constant_mae = (test_pred["age_target"] - train_pred["age_target"].mean()).abs().mean()
    assert metrics["test/age_mae"] < 0.6 * constant_mae, (metrics["test/age_mae"], constant_mae)
    assert metrics["test/osteo_auroc"] > 0.8
    history = pd.read_csv(tmp_path / "predictions_val.csv")
    assert len(history) > 0
    # torchmetrics values logged during training equal the ones recomputed from the predictions CSV
    from radscreen.metrics.scores import binary_scores, regression_scores

    recomputed = regression_scores(test_pred["age_target"], test_pred["age_pred"])
    for key in ("mae", "rmse", "r2", "within4", "within9", "pearson"):
        assert metrics[f"test/age_{key}"] == pytest.approx(recomputed[key], rel=1e-4, abs=1e-5), key
    labelled = test_pred.dropna(subset=["osteo_target"])
    recomputed = binary_scores(labelled["osteo_target"], labelled["osteo_pred"], 0.5)
    for key in ("auroc", "sensitivity", "specificity", "ppv", "f1", "accuracy"):
        assert metrics[f"test/osteo_{key}"] == pytest.approx(recomputed[key], abs=1e-5), key


def test_loss_decreases(cohort, cache_root, tmp_path):
    cfg = compose_train([*tiny_overrides(cohort, tmp_path, cache_root), "trainer.max_epochs=4", "augment=none",
                         "logger=csv", "evaluate=false"], tmp_path)
    train(cfg)
    history = pd.read_csv(tmp_path / "csv" / "metrics.csv")
    losses = history.dropna(subset=["train/loss_epoch"])["train/loss_epoch"].to_numpy()
    assert losses[-1] < 0.7 * losses[0], losses


def test_transfer_copies_backbone_exactly_and_freezes_last_blocks(tmp_path):
    source = RadscreenModule(tasks=AGE, backbone=TINY)
    checkpoint = tmp_path / "age.ckpt"
    torch.save({"state_dict": source.state_dict(), "hyper_parameters": dict(source.hparams)}, checkpoint)
    target = RadscreenModule(tasks=OSTEO, backbone=TINY, init_from=str(checkpoint), trainable_blocks=2)
    for (name, a), b in zip(source.backbone.state_dict().items(), target.backbone.state_dict().values()):
        assert torch.equal(a, b), name
    fresh = RadscreenModule(tasks=OSTEO, backbone=TINY)
    assert not torch.equal(fresh.backbone.conv1[0].weight, target.backbone.conv1[0].weight)
    groups = block_groups(target.backbone)
    trainable = {n for n, p in target.backbone.named_parameters() if p.requires_grad}
    assert trainable == set(groups[-2]) | set(groups[-1])
    assert all(p.requires_grad for p in target.heads.parameters())
    target.train()
    frozen_bn = target.backbone.conv1[1]
    assert not frozen_bn.training and target.backbone.layer4[0].bn1.training


def test_transfer_from_imagenet_file_adapts_first_conv(tmp_path):
    import timm

    imagenet = timm.create_model("test_resnet", num_classes=1000)
    path = tmp_path / "in1k.pth"
    torch.save(imagenet.state_dict(), path)
    grey = RadscreenModule(tasks=AGE, backbone=TINY, init_from=str(path))
    assert torch.allclose(grey.backbone.conv1[0].weight, imagenet.conv1[0].weight.sum(dim=1, keepdim=True))
    assert torch.equal(grey.backbone.layer1[0].conv1.weight, imagenet.layer1[0].conv1.weight)
    wrong = RadscreenModule(tasks=AGE, backbone={"name": "test_efficientnet", "in_chans": 1})
    with pytest.raises(ValueError, match="same architecture|matches"):
        from radscreen.models.transfer import load_backbone_weights
        load_backbone_weights(wrong.backbone, path)


@pytest.mark.parametrize("inputs,extra", [([], 0), (["age"], 1), (["sex"], 1), (["age", "sex"], 2)])
def test_fusion_widens_head_input(inputs, extra):
    module = RadscreenModule(tasks=OSTEO, backbone=TINY, head={"kind": "mlp", "hidden": [16, 8], "dropout": [0.5, 0.2]},
                             fusion={"inputs": inputs})
    width = module.backbone.num_features + extra
    assert module.heads["osteo"][0].in_features == width
    dense = [m for m in module.heads["osteo"] if isinstance(m, torch.nn.Linear)]
    drops = [m for m in module.heads["osteo"] if isinstance(m, torch.nn.Dropout)]
    assert len(dense) == 3 and len(drops) == 2  # the thesis head
    out = module.eval()(torch.randn(3, 1, 32, 32), age=torch.tensor([40.0, float("nan"), 70.0]),
                        sex=torch.tensor([1.0, 0.0, 1.0]))
    assert out["osteo"].shape == (3, 1) and torch.isfinite(out["osteo"]).all()


def test_predicted_age_fusion_uses_frozen_age_model(tmp_path):
    age_model = RadscreenModule(tasks=AGE, backbone=TINY)
    checkpoint = tmp_path / "age.ckpt"
    torch.save({"state_dict": age_model.state_dict(), "hyper_parameters": dict(age_model.hparams)}, checkpoint)
    fused = RadscreenModule(tasks=OSTEO, backbone=TINY,
                            fusion={"inputs": ["predicted_age"], "age_model": str(checkpoint)})
    assert fused.heads["osteo"].in_features == fused.backbone.num_features + 1
    assert not any(p.requires_grad for p in fused.fusion.age_model.parameters())
    # the fused checkpoint reloads without the age model's file
    saved = tmp_path / "fused.ckpt"
    torch.save({"state_dict": fused.state_dict(), "hyper_parameters": dict(fused.hparams)}, saved)
    checkpoint.unlink()
    reloaded = load_module(saved)
    images = torch.randn(2, 1, 32, 32)
    assert torch.allclose(reloaded(images)["osteo"], fused.eval()(images)["osteo"])


def test_gaussian_nll_reports_finite_variances(cohort, cache_root, tmp_path):
    cfg = compose_train([*tiny_overrides(cohort, tmp_path, cache_root), "task=[age_gnll]", "trainer.max_epochs=3",
                         "trainer.precision=bf16-mixed"], tmp_path)
    train(cfg)
    predictions = pd.read_csv(tmp_path / "predictions_test.csv")
    assert np.isfinite(predictions["age_var"]).all() and (predictions["age_var"] > 0).all()
    assert predictions["age_pred"].between(0, 150).all()


@pytest.mark.slow
def test_eval_reproduces_train_metrics(cohort, cache_root, tmp_path):
    common = [f"data.manifest={cohort}", "data.image_size=32", "data.num_workers=0", "data.batch_size=16",
              "backbone=test_resnet", "trainer=cpu", "logger=csv", "callbacks=none", f"paths.log_dir={tmp_path}/logs",
              f"paths.cache_dir={cache_root}", "data.show_progress=false", "trainer.enable_progress_bar=false"]
    first = run_script("train.py", *common, "trainer.max_epochs=2")
    assert first.returncode == 0, first.stderr[-3000:]
    run_dir = next((tmp_path / "logs" / "train" / "runs").iterdir())
    trained = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    best = run_dir / "checkpoints" / "best.ckpt"
    evaluated = run_script("eval.py", f"ckpt_path={best}", f"paths.log_dir={tmp_path}/logs",
                           f"data.manifest={cohort}", "report.n_boot=50")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    eval_dir = next((tmp_path / "logs" / "eval" / "runs").iterdir())
    reproduced = json.loads((eval_dir / "metrics.json").read_text())["metrics"]
    for key in ("test/age_mae", "test/age_r2", "val/age_mae"):
        assert reproduced[key] == pytest.approx(trained[key], rel=1e-6), key
    assert pd.read_csv(eval_dir / "predictions_test.csv").equals(pd.read_csv(run_dir / "predictions_test.csv"))
    assert (eval_dir / "report" / "report.html").exists()
    resolved = (run_dir / "config_resolved.yaml").read_text()
    assert "${" not in resolved and str(cohort) in resolved


@pytest.mark.slow
def test_multirun_sweep_as_the_readme_writes_it_from_any_folder(cohort, cache_root, tmp_path):
    """`python train.py -m ... data.image_size=32,40` with the default log folder, started outside the project:
    the sweep folder is found from the project root (it needed HydraConfig before the fix)."""
    run_name = f"pytest_multirun_{os.getpid()}"
    logs = ROOT / "logs" / run_name
    try:
        result = run_script("train.py", "-m", f"data.manifest={cohort}", "data.image_size=32,40",
                            "data.num_workers=0", "backbone=test_resnet", "trainer=cpu", "logger=none",
                            "callbacks=none", "trainer.max_epochs=1", f"paths.cache_dir={cache_root}",
                            f"run_name={run_name}", "data.show_progress=false", "trainer.enable_progress_bar=false",
                            cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        jobs = sorted(p for p in next((logs / "multiruns").iterdir()).iterdir() if p.is_dir() and p.name.isdigit())
        assert len(jobs) == 2
        sizes = [json.loads((j / "metrics.json").read_text())["data"]["preprocess"]["image_size"] for j in jobs]
        assert sizes == [32, 40]
        assert not (tmp_path / "logs").exists()  # nothing written where the command was started
    finally:
        shutil.rmtree(logs, ignore_errors=True)


@pytest.mark.slow
def test_ddp_with_two_cpu_processes_writes_one_run(cohort, cache_root, tmp_path):
    result = run_script("train.py", f"data.manifest={cohort}", "data.image_size=32", "data.num_workers=0",
                        "backbone=test_resnet", "trainer=ddp_cpu", "logger=csv", "callbacks=none",
                        "trainer.max_epochs=1", f"paths.log_dir={tmp_path}/logs", f"paths.cache_dir={cache_root}",
                        "data.show_progress=false", "trainer.enable_progress_bar=false")
    assert result.returncode == 0, result.stderr[-4000:]
    runs = list((tmp_path / "logs" / "train" / "runs").iterdir())
    assert len(runs) == 1, runs  # rank 1 reused rank 0's folder
    metrics = json.loads((runs[0] / "metrics.json").read_text())
    test_size = metrics["data"]["sizes"]["test"]
    assert len(pd.read_csv(runs[0] / "predictions_test.csv")) == test_size  # complete, written once
    assert "test/age_mae" in metrics["metrics"]
