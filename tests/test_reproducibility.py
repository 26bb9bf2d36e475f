"""Randomness as a function of (seed, epoch, sample): same numbers with any worker count, exact resume after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from radscreen.data.datasets import CachedImageDataset
from radscreen.data.randomness import EpochSeededSampler, sample_generators
from radscreen.jobs import train
from radscreen.training.checkpoint import moved_state
from radscreen.training.run import keep_earlier_logs, resolve_ckpt_path
from radscreen.utils.rng_state import capture_rng_states, restore_rng_states

from hydra_helpers import CONF, ROOT, TEST_SEED, compose_train, tiny_overrides

THESIS_AUGMENT = OmegaConf.load(Path(CONF) / "augment" / "thesis.yaml").train


def test_epoch_order_depends_on_seed_and_epoch_only():
    data = range(50)
    first, again = EpochSeededSampler(data, seed=3), EpochSeededSampler(data, seed=3)
    first.set_epoch(2)
    again.set_epoch(2)
    keys = list(first)
    assert keys == list(again) and {epoch for _, epoch in keys} == {2}
    assert sorted(index for index, _ in keys) == list(range(50))
    first.set_epoch(3)
    assert [i for i, _ in first] != [i for i, _ in keys]
    other = EpochSeededSampler(data, seed=4)
    other.set_epoch(2)
    assert [i for i, _ in other] != [i for i, _ in keys]
    # under DDP each of two processes takes every other index of the same permutation, none twice
    ranks = [EpochSeededSampler(data, seed=3, num_replicas=2, rank=r) for r in (0, 1)]
    for sampler in ranks:
        sampler.set_epoch(2)
    parts = [[i for i, _ in sampler] for sampler in ranks]
    assert parts[0] + parts[1] != [] and sorted(parts[0] + parts[1]) == list(range(50))
    assert parts[0] == [i for i, _ in keys][0::2]


def test_sample_generators_are_independent_of_call_order():
    draws = {key: sample_generators(0, *key)[0].random(3) for key in [(0, 1), (1, 7), (0, 2)]}
    np.testing.assert_array_equal(sample_generators(0, 1, 7)[0].random(3), draws[(1, 7)])
    assert not np.allclose(draws[(0, 1)], draws[(0, 2)])
    assert sample_generators(0, 0, 1)[1].random() == sample_generators(0, 0, 1)[1].random()


def test_augmentation_is_a_function_of_seed_epoch_and_index(cohort, cache_root, tmp_path):
    datamodule = instantiate(compose_train(tiny_overrides(cohort, tmp_path, cache_root), tmp_path).data,
                             train_transform=instantiate(THESIS_AUGMENT))
    datamodule.prepare_data()
    datamodule.setup("fit")
    train_set: CachedImageDataset = datamodule.datasets["train"]
    reference = train_set[(5, 1)]["image"]
    for key in [(4, 1), (5, 2), 6]:
        train_set[key]  # other draws in between change nothing
    assert torch.equal(train_set[(5, 1)]["image"], reference)
    assert not torch.equal(train_set[(5, 2)]["image"], reference)  # another epoch, another augmentation
    other_seed = CachedImageDataset(train_set.frame, train_set.cache_dir, {}, train_set.transform,
                                    seed=train_set.seed + 1)
    assert not torch.equal(other_seed[(5, 1)]["image"], reference)


def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)
    import random

    random.seed(3)
    saved = capture_rng_states()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.save(saved, tmp_path / "states.pt")
    restore_rng_states(torch.load(tmp_path / "states.pt", weights_only=True))
    assert torch.equal(torch.rand(3), expected[0])
    np.testing.assert_array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


def test_moved_checkpoint_state_copies_files_into_the_new_run(tmp_path):
    old, new = tmp_path / "old" / "checkpoints", tmp_path / "new" / "checkpoints"
    old.mkdir(parents=True)
    for name in ("best.ckpt", "last.ckpt"):
        (old / name).write_bytes(name.encode())
    state = {"dirpath": str(old), "best_model_path": str(old / "best.ckpt"), "best_model_score": torch.tensor(0.5),
             "kth_best_model_path": str(old / "best.ckpt"), "last_model_path": str(old / "last.ckpt"),
             "best_k_models": {str(old / "best.ckpt"): torch.tensor(0.5)}}
    moved = moved_state(state, old, new)
    assert moved["best_model_path"] == str(new / "best.ckpt") and (new / "best.ckpt").read_bytes() == b"best.ckpt"
    assert moved["last_model_path"] == str(new / "last.ckpt") and (new / "last.ckpt").is_file()
    assert list(moved["best_k_models"]) == [str(new / "best.ckpt")] and moved["dirpath"] == str(new)
    assert (old / "best.ckpt").is_file()  # the earlier run keeps its files
    # checkpoints written by Lightning's ModelCheckpoint (runs before RunCheckpoint) restore into it, and back
    from pytorch_lightning.callbacks import ModelCheckpoint

    from radscreen.training.checkpoint import RunCheckpoint

    settings = {"dirpath": str(new), "filename": "best", "monitor": "val/loss", "mode": "min", "save_last": True}
    assert RunCheckpoint(**settings).state_key == ModelCheckpoint(**settings).state_key


def test_a_run_resumed_in_its_own_folder_keeps_the_earlier_logs(tmp_path):
    loggers = OmegaConf.create({name: {"_target_": target, "save_dir": str(tmp_path), "name": name, "version": ""}
                                for name, target in (("csv", "pytorch_lightning.loggers.CSVLogger"),
                                                     ("tensorboard", "pytorch_lightning.loggers.TensorBoardLogger"))})
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "metrics.csv").write_text("epoch,step,val/loss\n0,5,1.2\n")  # what the killed run flushed
    keep_earlier_logs(loggers)
    assert loggers.csv.version == "resumed_1" and loggers.tensorboard.version == ""  # an empty folder stays
    logger = instantiate(loggers.csv)
    logger.log_metrics({"val/loss": 0.9, "val/age_mae": 7.0}, step=11)
    logger.save()
    assert (tmp_path / "csv" / "metrics.csv").read_text() == "epoch,step,val/loss\n0,5,1.2\n"
    assert pd.read_csv(tmp_path / "csv" / "resumed_1" / "metrics.csv")["val/age_mae"].tolist() == [7.0]
    # ckpt_path=last in a fixed run folder (hydra.run.dir, e.g. a requeued cluster job) takes that folder's own
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    cfg = OmegaConf.create({"ckpt_path": "last", "paths": {"output_dir": str(tmp_path), "log_dir": str(tmp_path)},
                            "run_name": "x"})
    assert resolve_ckpt_path(cfg) == str(tmp_path / "checkpoints" / "last.ckpt")


def _run(cohort, cache_root, workdir: Path, seed: int, workers: int) -> tuple[dict, dict[str, pd.DataFrame]]:
    """A short deterministic CPU run with augmentation and dropout; its metrics and predictions."""
    cfg = compose_train([*tiny_overrides(cohort, workdir, cache_root), f"seed={seed}", f"data.num_workers={workers}",
                         "augment=thesis", "head=thesis_mlp", "trainer.max_epochs=2", "trainer.deterministic=true",
                         "data.image_size=40"], workdir)
    train(cfg)
    written = json.loads((workdir / "metrics.json").read_text())
    predictions = {split: pd.read_csv(workdir / f"predictions_{split}.csv") for split in ("train", "val", "test")}
    return written, predictions


def test_same_seed_same_numbers_with_any_worker_count_and_job_order(cohort, cache_root, tmp_path):
    first, first_predictions = _run(cohort, cache_root, tmp_path / "a", seed=TEST_SEED, workers=0)
    other, other_predictions = _run(cohort, cache_root, tmp_path / "b", seed=TEST_SEED + 1, workers=0)
    again, again_predictions = _run(cohort, cache_root, tmp_path / "c", seed=TEST_SEED, workers=2)
    assert again == first  # metrics.json byte for byte in content: metrics, best checkpoint, data summary
    for split, frame in first_predictions.items():
        pd.testing.assert_frame_equal(again_predictions[split], frame, check_exact=True)
    assert other["metrics"]["test/age_mae"] != first["metrics"]["test/age_mae"]
    assert not other_predictions["test"]["age_pred"].equals(first_predictions["test"]["age_pred"])


@pytest.mark.parametrize("experiment", ["ct_age_resnet18_gnll", "ct_age_r3d18_gnll_3d"])
def test_ct_runs_repeat_exactly_with_the_patch_augmentation_and_on_volumes(experiment, ct_cohort, cache_root,
                                                                         tmp_path):
    results = []
    volumes = experiment.endswith("_3d")
    for workers, folder in ((0, "a"), (2, "b")):
        overrides = [f"experiment={experiment}", *tiny_overrides(ct_cohort, tmp_path / folder, cache_root),
                     "data.preprocess.shape_zyx=[32,32,32]", "data.batch_size=4", "trainer.max_epochs=2",
                     "trainer.deterministic=true", f"data.num_workers={workers}", "backbone.drop_rate=0.3"]
        if volumes:  # torchvision's r3d_18 on 16³ volumes: training and validation metrics only
            overrides.remove("backbone=test_resnet")
            overrides += ["data.preprocess.shape_zyx=[16,16,16]", "evaluate=false"]
        metrics = train(compose_train(overrides, tmp_path / folder))
        predictions = None if volumes else pd.read_csv(tmp_path / folder / "predictions_test.csv")
        results.append((metrics, predictions))
    assert results[0][0] == results[1][0] and "val/age_mae" in results[0][0]
    if not volumes:
        pd.testing.assert_frame_equal(results[0][1], results[1][1], check_exact=True)


# ---------------------------------------------------------------- kill and resume
def _train_command(cohort: Path, cache_root: Path, log_dir: Path, run_name: str, extra: list[str]) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), f"data.manifest={cohort}", "data.image_size=40",
            "data.num_workers=2", "data.batch_size=16", "data.show_progress=false", "backbone=test_resnet",
            "head=thesis_mlp", "augment=thesis", "trainer=cpu", "trainer.deterministic=true", "trainer.max_epochs=5",
            "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "callbacks.progress_bar=null",
            "callbacks.model_summary=null", "callbacks.early_stopping.patience=3", "model.scheduler.patience=1",
            "logger=default", f"paths.log_dir={log_dir}", f"paths.cache_dir={cache_root}", f"run_name={run_name}",
            f"seed={TEST_SEED}",
            *extra]


def _last_epoch(run_root: Path) -> int:
    """Epoch of the newest readable last.ckpt under run_root (-1 when none is complete yet)."""
    epochs = [-1]
    for path in run_root.glob("runs/*/checkpoints/last.ckpt"):
        try:
            epochs.append(int(torch.load(path, map_location="cpu", weights_only=False)["epoch"]))
        except Exception:  # being written
            pass
    return max(epochs)


def _kill_after_epoch(command: list[str], run_root: Path, epoch: int, timeout: float = 600) -> int:
    """Start train.py, SIGKILL it once a last.ckpt of `epoch` (0-based) exists; its return code. The deadline is
    generous (the run takes about 30 s alone) so that a loaded machine slows the test instead of failing it."""
    with tempfile.TemporaryFile("w+") as errors:  # a file, not a pipe: a full pipe would stall train.py
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors, text=True,
                                   start_new_session=True)
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            if _last_epoch(run_root) >= epoch:
                os.killpg(process.pid, signal.SIGKILL)
                break
            if time.monotonic() > deadline:
                os.killpg(process.pid, signal.SIGKILL)
                pytest.fail(f"train.py wrote no last.ckpt of epoch {epoch} within {timeout:.0f} s")
            time.sleep(0.05)
        process.wait(timeout=60)
        errors.seek(0)
        assert process.returncode in (0, -signal.SIGKILL), errors.read()[-3000:]
    return process.returncode


def _final_metrics(run_root: Path) -> dict:
    newest = max(run_root.glob("runs/*/metrics.json"), key=lambda p: p.parent.name)
    return json.loads(newest.read_text())


@pytest.mark.slow
def test_sigkill_and_resume_ends_with_the_uninterrupted_runs_metrics(cohort, cache_root, tmp_path):
    log_dir = tmp_path / "logs"
    with tempfile.TemporaryFile("w+") as full_errors:
        full = subprocess.Popen(_train_command(cohort, cache_root, log_dir, "full", []), stdout=subprocess.DEVNULL,
                                stderr=full_errors, text=True)
        try:
            killed = _train_command(cohort, cache_root, log_dir, "killed", [])
            resumed = _train_command(cohort, cache_root, log_dir, "killed", ["ckpt_path=last"])
            assert _kill_after_epoch(killed, log_dir / "killed", epoch=1) == -signal.SIGKILL
            time.sleep(1.1)  # run folders are named by the second
            second_kill = _kill_after_epoch(resumed, log_dir / "killed", epoch=3)  # killed again, after resuming
            time.sleep(1.1)
            finished = subprocess.run(resumed, capture_output=True, text=True, timeout=600)
            assert finished.returncode == 0, finished.stderr[-3000:]
            full.wait(timeout=600)
        finally:
            if full.poll() is None:  # the test failed before the uninterrupted run ended
                full.kill()
                full.wait()
        full_errors.seek(0)
        assert full.returncode == 0, full_errors.read()[-3000:]
    uninterrupted, ended = _final_metrics(log_dir / "full"), _final_metrics(log_dir / "killed")
    assert second_kill == -signal.SIGKILL or second_kill == 0  # 0: early stopping ended it before epoch 3
    assert ended["metrics"] == uninterrupted["metrics"]  # exactly: test, val and train metrics
    assert ended["best_score"] == uninterrupted["best_score"]
    assert ended["best_checkpoint"] == uninterrupted["best_checkpoint"] == "checkpoints/best.ckpt"
    best = {name: torch.load(log_dir / name / "runs" / run / "checkpoints" / "best.ckpt", weights_only=False)["epoch"]
            for name, run in (("full", max(p.name for p in (log_dir / "full" / "runs").iterdir())),
                              ("killed", max(p.name for p in (log_dir / "killed" / "runs").iterdir())))}
    assert best["killed"] == best["full"]
    # every run folder's CSV log reads back whole, whatever the kill left in it
    for metrics_csv in (log_dir / "killed").glob("runs/*/csv/metrics.csv"):
        assert "epoch" in pd.read_csv(metrics_csv).columns
    assert any((log_dir / "killed").glob("runs/*/tensorboard/events.out.tfevents.*"))
