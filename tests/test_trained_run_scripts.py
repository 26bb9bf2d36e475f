"""The scripts that read a trained run (cam.py, embed.py, probe.py), on one train.py run shared by the module."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radscreen.probes.embeddings import load_embeddings

from hydra_helpers import run_script


@pytest.fixture(scope="module")
def trained_run(cohort, cache_root, tmp_path_factory) -> Path:
    """The folder of a one-epoch train.py run (test_resnet, 64 px, age), as a user's command writes it."""
    logs = tmp_path_factory.mktemp("trained") / "logs"
    trained = run_script("train.py", f"data.manifest={cohort}", "data.image_size=64", "data.num_workers=0",
                         "backbone=test_resnet", "trainer=cpu", "logger=none", "callbacks=none", "trainer.max_epochs=1",
                         f"paths.log_dir={logs}", f"paths.cache_dir={cache_root}", "data.show_progress=false",
                         "trainer.enable_progress_bar=false")
    assert trained.returncode == 0, trained.stderr[-2000:]
    return next(logs.glob("train/runs/*"))


@pytest.mark.slow
def test_cam_script_per_layer_on_a_regression_model(trained_run, tmp_path):
    run_dir = trained_run
    result = run_script("scripts/cam.py", f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}", "cam.per_layer=true",
                        "cam.layers=[layer2,layer3]", "cam.max_images=6", f"paths.log_dir={tmp_path}/logs")
    assert result.returncode == 0, result.stderr[-3000:]
    out = run_dir / "cam"
    for name in ("layer_layer2", "layer_layer3", "mean_of_layers"):
        assert np.load(out / f"{name}_average.npy").shape == (64, 64)
        assert (out / f"{name}_average_unaligned.png").exists()
    assert np.load(out / "maps" / "layer_layer2.npy").shape == (6, 64, 64)
    assert len(pd.read_csv(out / "alignment.csv")) == 6
    from radscreen.evaluation.report import ReportOptions, build_report

    page = build_report(run_dir, options=ReportOptions(n_boot=0)).read_text()
    assert "Class-activation maps" in page


@pytest.mark.slow
def test_embed_and_probe_scripts(trained_run, cohort, tmp_path):
    checkpoint = trained_run / "checkpoints" / "last.ckpt"
    out = tmp_path / "emb.parquet"
    embedded = run_script("scripts/embed.py", f"ckpt_path={checkpoint}", f"data.manifest={cohort}", f"out={out}",
                          f"paths.log_dir={tmp_path}/logs")
    assert embedded.returncode == 0, embedded.stderr[-2000:]
    ids, features = load_embeddings(out)
    assert len(ids) == len(pd.read_csv(cohort)) and features.shape[1] == 96  # every image; test_resnet width
    probed = run_script("scripts/probe.py", f"embeddings={out}", f"manifest={cohort}", "targets=[age_years,sex]",
                        "probes=[linear]", "folds=3", "removal.audited=sex", "removal.percentages=[0,10]",
                        f"paths.log_dir={tmp_path}/logs")
    assert probed.returncode == 0, probed.stderr[-2000:]
    summary = pd.read_csv(next((tmp_path / "logs").glob("probe/runs/*/probe_summary.csv")))
    assert set(summary["target"]) == {"age_years", "sex"}
    assert next((tmp_path / "logs").glob("probe/runs/*/removal.png")).exists()
