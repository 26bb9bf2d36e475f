"""Training behaviour: learning, transfer, freezing, fusion, Gaussian NLL, eval reproduction, resume, DDP."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import pytorch_lightning as pl
import torch

from radscreen.jobs import train
from radscreen.metrics.scores import binary_scores, regression_scores
from radscreen.models.backbones import block_groups
from radscreen.models.module import RadscreenModule, load_module

from hydra_helpers import ROOT, TEST_SEED, compose_train, run_script, tiny_overrides

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


class _InMemoryData(pl.LightningDataModule):
    """Loaders of batches in the data module's layout (age and osteoporosis targets), with uneven last batches and
    one validation batch without any osteoporosis label; two test splits, as `test_splits` names them."""

    test_splits = ["test", "external"]

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(TEST_SEED)
        osteo = {"train": [0, 1, 1, 0, 1, 0], "val": [0, 1, 0, 1] + [np.nan] * 4 + [1, 0],
                 "test": [1, 0, 0, 1, 1], "external": [0, 1, 1, 0, 0, 1, 0]}
        self.samples = {split: [{"image": torch.randn(1, 32, 32, generator=generator),
                                 "targets": {"age": torch.tensor(float(20 + 70 * torch.rand(1, generator=generator))),
                                             "osteo": torch.tensor(float(label))},
                                 "age": torch.tensor(50.0), "sex": torch.tensor(1.0), "image_id": f"{split}{i}"}
                                for i, label in enumerate(labels)]
                        for split, labels in osteo.items()}

    def loader(self, split: str) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(self.samples[split], batch_size=4)

    def train_dataloader(self):
        return self.loader("train")

    def val_dataloader(self):
        return self.loader("val")

    def test_dataloader(self):
        return [self.loader(split) for split in self.test_splits]


def _epoch_values_by_hand(module: RadscreenModule, loader, stage: str) -> dict[str, float]:
    """What a stage's epoch logs, from the module's outputs on the loader: each task's and the total loss averaged
    over batches weighted by batch size (batches without a label left out of the task's mean), and scikit-learn's
    scores of the labelled predictions."""
    losses: dict[str, list[tuple[float, int]]] = {name: [] for name in (*module.tasks, "total")}
    rows: dict[str, list[tuple[float, float]]] = {name: [] for name in module.tasks}
    with torch.no_grad():
        for batch in loader:
            outputs = module(batch["image"])
            decoded = module.decode(outputs)
            size, total = len(batch["image"]), 0.0
            for name, task in module.tasks.items():
                target, stats = batch["targets"][name], getattr(module, f"target_stats_{name}")
                loss = task.compute_loss(outputs[name], task.head_target(target, stats))
                if loss is not None:
                    losses[name].append((float(loss), size))
                    total += task.weight * float(loss)
                    present = ~torch.isnan(target)
                    rows[name] += zip(target[present].tolist(), decoded[name]["pred"][present].tolist())
            losses["total"].append((total, size))
    mean = {name: sum(v * n for v, n in values) / sum(n for _, n in values) for name, values in losses.items()}
    expected = {f"{stage}/{name}_loss": mean[name] for name in module.tasks} | {f"{stage}/loss": mean["total"]}
    age, osteo = np.array(rows["age"]), np.array(rows["osteo"])
    scores = {"age": regression_scores(age[:, 0], age[:, 1]), "osteo": binary_scores(osteo[:, 0], osteo[:, 1], 0.5)}
    keys = {"age": ("mae", "rmse", "r2", "pearson", "within4", "within9"),
            "osteo": ("auroc", "accuracy", "sensitivity", "specificity", "ppv", "f1")}
    for name, task_keys in keys.items():
        expected |= {f"{stage}/{name}_{k}": scores[name][k] for k in task_keys if np.isfinite(scores[name][k])}
    return expected


def _assert_logged(logged: dict, expected: dict[str, float]) -> None:
    for key, value in expected.items():
        assert float(logged[key]) == pytest.approx(value, rel=1e-5, abs=1e-5), key


def test_logged_epoch_metrics_equal_the_values_computed_from_the_predictions(tmp_path):
    """train/*, val/* and both test splits' epoch values (callback metrics, CSV log, trainer.test's results) are the
    batch-size-weighted mean losses and scikit-learn's scores of the predictions; the checkpoint and early-stopping
    monitors read them. With lr=0 the weights stay those the training steps saw."""
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger

    pl.seed_everything(TEST_SEED, verbose=False)
    module = RadscreenModule(tasks={**AGE, **OSTEO}, backbone=TINY,
                             optimizer={"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.0})
    module.target_stats_age.copy_(torch.tensor([55.0, 20.0]))
    data = _InMemoryData()
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "checkpoints", monitor="val/age_loss", save_top_k=1)
    stopping = EarlyStopping(monitor="val/osteo_auroc", mode="max", patience=5, strict=True)
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, logger=CSVLogger(tmp_path, name="csv", version=""),
                         callbacks=[checkpoint, stopping], enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=2)
    trainer.fit(module, datamodule=data)
    logged = dict(trainer.callback_metrics)
    val = _epoch_values_by_hand(module.eval(), data.val_dataloader(), "val")
    train = _epoch_values_by_hand(module.train(), data.train_dataloader(), "train")
    train["train/loss_epoch"] = train.pop("train/loss")
    _assert_logged(logged, val | train)
    assert float(checkpoint.best_model_score) == pytest.approx(val["val/age_loss"], rel=1e-6)
    assert float(stopping.best_score) == pytest.approx(val["val/osteo_auroc"], rel=1e-6)
    csv = pd.read_csv(tmp_path / "csv" / "metrics.csv")
    _assert_logged({k: csv[k].dropna().item() for k in val | train}, val | train)
    module.eval()
    expected = {}
    for split in data.test_splits:
        expected |= _epoch_values_by_hand(module, data.loader(split), split)
    results = trainer.test(module, datamodule=data, verbose=False)
    _assert_logged({k: v for result in results for k, v in result.items()}, expected)


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
