"""Scale-out: sweeps through hydra-submitit-launcher (the SLURM launcher's code path, run by its local executor)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import yaml

from hydra_helpers import run_script, tiny_overrides


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
