"""Reports, age-gap statistics and sweep summaries from predictions CSVs and run folders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from sklearn import metrics as skm

from radscreen.evaluation.agegap import age_gap_groups, categorical_table, continuous_table
from radscreen.evaluation.analysis import load_run, metrics_with_ci
from radscreen.evaluation.report import ReportOptions, build_report
from radscreen.evaluation.scores import choose_threshold
from radscreen.evaluation.sweeps import collect_jobs, summarize_jobs

ROOT = Path(__file__).resolve().parents[1]
TASKS = {"age": {"name": "age", "column": "age_years", "kind": "regression", "loss": "gaussian_nll"},
         "osteo": {"name": "osteo", "column": "bmd_class", "kind": "binary", "positive": ["osteoporosis"]}}


def fake_run(folder: Path, seed: int = 0) -> Path:
    """A run folder as train.py leaves it: config and per-split predictions (two images per patient)."""
    rng = np.random.default_rng(seed)
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"run_name": "fake", "task": TASKS, "seed": 0}))
    for split, n in (("val", 80), ("test", 200)):
        patients = np.repeat([f"p{split}{i}" for i in range(n // 2)], 2)
        age = rng.uniform(20, 90, n)
        osteo = (rng.random(n) < 0.3).astype(float)
        pd.DataFrame({"image_id": [f"{split}{i}" for i in range(n)], "patient_id": patients, "split": split,
                      "age_years": age, "sex": rng.choice(["F", "M"], n), "age_target": age,
                      "age_pred": age + rng.normal(0, 5, n), "age_var": rng.uniform(10, 40, n),
                      "osteo_target": osteo, "osteo_pred": np.clip(0.1 + 0.2 * osteo + rng.normal(0, 0.1, n), 0, 1)}
                     ).to_csv(folder / f"predictions_{split}.csv", index=False)
    return folder


def test_report_tables_use_validation_threshold_and_match_sklearn(tmp_path):
    run_dir = fake_run(tmp_path / "run")
    path = build_report(run_dir, options=ReportOptions(n_boot=200))
    page = path.read_text()
    assert page.startswith("<!doctype html>") and page.count("data:image/png;base64,") >= 6
    val, test = (pd.read_csv(run_dir / f"predictions_{s}.csv") for s in ("val", "test"))
    threshold = choose_threshold(val.osteo_target, val.osteo_pred, "youden")
    table = pd.read_csv(run_dir / "report" / "metrics_osteo_test.csv").set_index("metric")
    assert table.loc["auroc", "value"] == pytest.approx(skm.roc_auc_score(test.osteo_target, test.osteo_pred))
    assert table.loc["sensitivity", "value"] == pytest.approx(skm.recall_score(test.osteo_target,
                                                                               test.osteo_pred >= threshold))
    assert (table["ci_low"] <= table["value"]).all() and (table["value"] <= table["ci_high"]).all()
    age = pd.read_csv(run_dir / "report" / "metrics_age_test.csv").set_index("metric")
    assert age.loc["mae", "value"] == pytest.approx(skm.mean_absolute_error(test.age_target, test.age_pred))
    groups = pd.read_csv(run_dir / "report" / "subgroups_age_test.csv")
    assert set(groups["subgroup"]) == {"sex", "age band"}
    assert groups.loc[groups.subgroup == "sex", "n"].sum() == len(test)
    assert (run_dir / "report" / "figures" / "age_test_uncertainty.png").exists()


def test_intervals_shrink_with_more_patients(tmp_path):
    run = load_run(fake_run(tmp_path / "run"))
    task = run.tasks["age"]
    test = run.predictions["test"]
    wide = metrics_with_ci(test.iloc[:40], task, 0.5, n_boot=300).set_index("metric").loc["mae"]
    narrow = metrics_with_ci(test, task, 0.5, n_boot=300).set_index("metric").loc["mae"]
    assert narrow.ci_high - narrow.ci_low < wide.ci_high - wide.ci_low


def test_agegap_groups_and_tests_equal_scipy():
    rng = np.random.default_rng(3)
    n = 300
    true = rng.uniform(30, 80, n)
    frame = pd.DataFrame({"true": true, "pred": true + rng.normal(0, 6, n), "sex": rng.choice(["F", "M"], n),
                          "bmi": rng.normal(25, 4, n)})
    frame["age_gap_group"] = age_gap_groups(frame.pred, frame.true)
    gap = frame.pred - frame.true
    assert (frame.loc[gap >= 5, "age_gap_group"] == "old-predicted").all()
    assert (frame.loc[gap <= -5, "age_gap_group"] == "young-predicted").all()
    assert (frame.loc[gap.abs() < 5, "age_gap_group"] == "well-predicted").all()
    cat = categorical_table(frame, ["sex"])
    expected = stats.chi2_contingency(pd.crosstab(frame.sex, frame.age_gap_group).to_numpy())[1]
    assert cat["p_value"].iloc[0] == pytest.approx(expected, rel=1e-12)
    cont = continuous_table(frame, ["bmi"])
    names = ("young-predicted", "well-predicted", "old-predicted")
    groups = [frame.loc[frame.age_gap_group == g, "bmi"] for g in names]
    assert cont["p_value"].iloc[0] == pytest.approx(stats.kruskal(*groups).pvalue, rel=1e-12)


def fake_multirun(folder: Path) -> Path:
    values = {("224", "0"): 7.0, ("224", "1"): 8.0, ("512", "0"): 5.0, ("512", "1"): 6.0, ("512", "2"): 7.0}
    for job, ((size, seed), mae) in enumerate(values.items()):
        (folder / str(job) / ".hydra").mkdir(parents=True)
        (folder / str(job) / ".hydra" / "overrides.yaml").write_text(
            yaml.safe_dump([f"data.image_size={size}", f"seed={seed}", "experiment=age_densenet169"]))
        (folder / str(job) / "metrics.json").write_text(json.dumps({"metrics": {"test/age_mae": mae, "val/loss": 1}}))
    return folder


def test_summarize_means_and_sds_over_seeds(tmp_path):
    summary = summarize_jobs(collect_jobs(fake_multirun(tmp_path / "multi"))).set_index("data.image_size")
    assert summary.loc["224", "test/age_mae"] == f"7.500 ± {np.std([7, 8], ddof=1):.3f}"
    assert summary.loc["512", "test/age_mae"] == "6.000 ± 1.000" and summary.loc["512", "runs"] == 3
    with pytest.raises(KeyError, match="never|not logged"):
        summarize_jobs(collect_jobs(tmp_path / "multi"), ["test/age_auroc"])


def test_report_and_summarize_scripts(tmp_path):
    runs = [fake_run(tmp_path / "a", seed=0), fake_run(tmp_path / "b", seed=1)]
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "report.py"), *map(str, runs), "--boot", "50",
                             "--compare-out", str(tmp_path / "cmp")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    comparison = pd.read_csv(tmp_path / "cmp" / "comparison.csv")
    assert len(comparison) == 4 and comparison["delong_p_vs_first"].notna().sum() == 0  # different images
    multi = fake_multirun(tmp_path / "multi")
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "summarize.py"), str(multi)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "6.000 ± 1.000" in (multi / "summary.md").read_text()
