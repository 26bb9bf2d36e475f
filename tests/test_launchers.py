"""Scale-out: sweeps through hydra-submitit-launcher (the SLURM launcher's code path, run by its local executor),
who builds the cache in a multi-node run (data.cache_scope), and the loader workers `trainer=gpu` asks for."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from pytorch_lightning.profilers import PassThroughProfiler
from pytorch_lightning.trainer.connectors.data_connector import _DataConnector

from radscreen.data.datamodules import ImageDataModule
from radscreen.errors import UserError

from hydra_helpers import compose_train, run_script, tiny_overrides

AGE = {"age": {"name": "age", "column": "age_years", "kind": "regression", "loss": "mse"}}


@pytest.mark.slow
def test_submitit_local_multirun_writes_one_run_folder_per_job(cohort, tmp_path):
    sweep = tmp_path / "sweep"
    # a cache of its own: both jobs build it at once on process pools, as a first sweep on a cluster does
    overrides = [o for o in tiny_overrides(cohort, tmp_path, tmp_path / "cache")
                 if not o.startswith(("seed=", "hydra.run"))]
    done = run_script("train.py", "-m", "hydra/launcher=submitit_local", "seed=0,1", *overrides,
                      "trainer.max_epochs=1", "augment=none", f"hydra.sweep.dir={sweep}",
                      "hydra.launcher.timeout_min=5", cwd=tmp_path, timeout=420)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [p.name for p in jobs] == ["0", "1"]
    for number, job in enumerate(jobs):
        written = json.loads((job / "metrics.json").read_text())
        mae = written["metrics"]["test/age_mae"]
        assert math.isfinite(mae) and mae > 0, written
        predictions = pd.read_csv(job / "predictions_test.csv")
        assert len(predictions) == written["data"]["sizes"]["test"]
        assert (predictions["age_pred"] - predictions["age_target"]).abs().mean() == pytest.approx(mae, rel=1e-4)
        assert yaml.safe_load((job / ".hydra" / "config.yaml").read_text())["seed"] == number
    # the jobs ran as submitit jobs (one process each, with its own log), not in the launching process
    logs = sorted((sweep / ".submitit").glob("*/*_log.out"))
    assert len(logs) == 2, logs


POOL_UNDER_A_JOB_RUNNER = textwrap.dedent("""
    import signal, time
    from radscreen.utils.parallel import map_with_progress
    signal.signal(signal.SIGTERM, lambda *_: None)  # what submitit does in every job it starts
    results = map_with_progress(time.sleep, [0.05] * 200, total=200, workers=2, chunksize=1, show_progress=False)
    next(results)
    results.close()  # stopped early: the pool terminates its busy workers
    print("stopped")
""")


def test_process_pool_stops_in_a_job_that_ignores_sigterm():
    process = subprocess.Popen([sys.executable, "-c", POOL_UNDER_A_JOB_RUNNER], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the test's own process group: the script and its pool workers
        process.communicate()
        pytest.fail("the pool's workers inherited the ignored SIGTERM and never stopped")
    assert process.returncode == 0 and out.strip() == "stopped", err


def _datamodule(cohort, cache_root, scope: str) -> ImageDataModule:
    return ImageDataModule(manifest=str(cohort), tasks=AGE, cache_root=str(cache_root), image_size=32,
                           cache_workers=1, show_progress=False, cache_scope=scope)


def _prepare_as(datamodule: ImageDataModule, node_rank: int, local_rank: int = 0) -> None:
    """Lightning's own prepare_data dispatch, as the process (node_rank, local_rank) of a multi-node run runs it."""
    trainer = SimpleNamespace(local_rank=local_rank, node_rank=node_rank, datamodule=datamodule,
                              lightning_module=None, profiler=PassThroughProfiler())
    _DataConnector(trainer).prepare_data()


def _cached_files(cache_root) -> int:
    return len(list(cache_root.rglob("*.npy")))


@pytest.mark.parametrize(("scope", "builds_on_second_node"), [("node", True), ("shared", False)])
def test_cache_scope_decides_which_nodes_build_the_cache(cohort, tmp_path, scope, builds_on_second_node):
    cache_root = tmp_path / "cache"
    _prepare_as(_datamodule(cohort, cache_root, scope), node_rank=1, local_rank=1)
    assert _cached_files(cache_root) == 0  # never a second process of a node
    _prepare_as(_datamodule(cohort, cache_root, scope), node_rank=1)
    assert (_cached_files(cache_root) == len(pd.read_csv(cohort))) is builds_on_second_node
    _prepare_as(_datamodule(cohort, cache_root, scope), node_rank=0)
    assert _cached_files(cache_root) == len(pd.read_csv(cohort))  # global rank zero always builds


def test_shared_cache_missing_on_another_node_stops_with_the_setting_to_change(cohort, tmp_path):
    datamodule = _datamodule(cohort, tmp_path / "node_local_disk", "shared")
    datamodule.trainer = SimpleNamespace(node_rank=1)  # the first node built its cache elsewhere
    with pytest.raises(UserError, match="data.cache_scope=node"):
        datamodule.setup("fit")


def test_unknown_cache_scope_is_a_user_error(cohort, tmp_path):
    with pytest.raises(UserError, match="data.cache_scope must be one of node, shared"):
        _datamodule(cohort, tmp_path, "cluster")


def test_trainer_gpu_gives_one_loader_worker_per_usable_core(cohort, cache_root, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(7)), raising=False)
    base = [o for o in tiny_overrides(cohort, tmp_path, cache_root)
            if not o.startswith(("data.num_workers", "trainer"))]
    assert compose_train([*base, "trainer=gpu"], tmp_path).data.num_workers == 7
    assert compose_train([*base, "trainer=gpu", "data.num_workers=3"], tmp_path).data.num_workers == 3
    assert compose_train([*base, "trainer=cpu"], tmp_path).data.num_workers == 2  # conf/data/cxr.yaml's default
    gpu = compose_train([*base, "trainer=gpu"], tmp_path).trainer
    assert (gpu.accelerator, gpu.precision, gpu.max_epochs) == ("gpu", "16-mixed", 50)  # trainer/default.yaml kept
