"""Reports, age-gap statistics and sweep summaries from predictions CSVs and run folders."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from sklearn import metrics as skm

from radscreen.errors import UserError
from radscreen.evaluation.agegap import age_gap_groups, categorical_table, continuous_table
from radscreen.evaluation.analysis import load_run, metrics_with_ci, subgroup_table
from radscreen.evaluation.formatting import to_html, to_markdown
from radscreen.evaluation.report import ReportOptions, build_report
from radscreen.evaluation.sweeps import collect_jobs, summarize_jobs
from radscreen.metrics.scores import choose_threshold

from script_helpers import run_tool

ROOT = Path(__file__).resolve().parents[1]
TASKS = {"age": {"_target_": "radscreen.tasks.RegressionTask",
                 "name": "age", "column": "age_years", "loss": "gaussian_nll"},
         "osteo": {"_target_": "radscreen.tasks.BinaryTask",
                   "name": "osteo", "column": "bmd_class", "positive": ["osteoporosis"]}}


def write_run(folder: Path, predictions: dict[str, pd.DataFrame], tasks: dict = TASKS, name: str = "fake") -> Path:
    """A run folder as train.py leaves it: .hydra/config.yaml and one predictions_<split>.csv per frame."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"run_name": name, "task": tasks, "seed": 0}))
    for split, frame in predictions.items():
        frame.to_csv(folder / f"predictions_{split}.csv", index=False)
    return folder


def fake_predictions(split: str, n: int, rng: np.random.Generator, first_id: int = 0) -> pd.DataFrame:
    """Predictions of both TASKS for images <split><first_id>… (two images per patient)."""
    ids = np.arange(first_id, first_id + n)
    age = rng.uniform(20, 90, n)
    osteo = (rng.random(n) < 0.3).astype(float)
    return pd.DataFrame({"image_id": [f"{split}{i}" for i in ids], "patient_id": [f"p{split}{i // 2}" for i in ids],
                         "split": split, "age_years": age, "sex": rng.choice(["F", "M"], n), "age_target": age,
                         "age_pred": age + rng.normal(0, 5, n), "age_var": rng.uniform(10, 40, n),
                         "osteo_target": osteo,
                         "osteo_pred": np.clip(0.1 + 0.2 * osteo + rng.normal(0, 0.1, n), 0, 1)})


def fake_run(folder: Path, seed: int = 0) -> Path:
    """A run with 80 validation and 200 test predictions (two images per patient)."""
    rng = np.random.default_rng(seed)
    return write_run(folder, {split: fake_predictions(split, n, rng) for split, n in (("val", 80), ("test", 200))})




def test_report_tables_use_validation_threshold_and_match_sklearn(tmp_path):
    run_dir = fake_run(tmp_path / "run")
    path = build_report(run_dir, options=ReportOptions(n_boot=100))
    page = path.read_text()
    assert page.startswith("<!doctype html>") and page.count("data:image/png;base64,") >= 6
    val, test = (pd.read_csv(run_dir / f"predictions_{s}.csv") for s in ("val", "test"))
    threshold = choose_threshold(val.osteo_target, val.osteo_pred, "youden")
    table = pd.read_csv(run_dir / "report" / "metrics_osteo_test.csv").set_index("metric")
    assert table.loc["auroc", "value"] == pytest.approx(skm.roc_auc_score(test.osteo_target, test.osteo_pred))
    assert table.loc["sensitivity", "value"] == pytest.approx(skm.recall_score(test.osteo_target,
                                                                               test.osteo_pred >= threshold))
    assert (table["ci_low"] <= table["value"]).all() and (table["value"] <= table["ci_high"]).all()
    assert f"Operating threshold {threshold:.4f}, chosen on the validation split (Youden" in page
    age = pd.read_csv(run_dir / "report" / "metrics_age_test.csv").set_index("metric")
    assert age.loc["mae", "value"] == pytest.approx(skm.mean_absolute_error(test.age_target, test.age_pred))
    groups = pd.read_csv(run_dir / "report" / "subgroups_age_test.csv")
    assert set(groups["subgroup"]) == {"sex", "age band"}
    assert groups.loc[groups.subgroup == "sex", "n"].sum() == len(test)
    assert (run_dir / "report" / "figures" / "age_test_uncertainty.png").exists()
    assert not list((run_dir / "report").rglob("*.partial"))  # atomic writes leave no temporary file


def test_age_report_has_error_mean_sd_and_pearson_everywhere(tmp_path):
    run_dir = fake_run(tmp_path / "run")
    page = build_report(run_dir, options=ReportOptions(n_boot=100)).read_text()
    test = pd.read_csv(run_dir / "predictions_test.csv")
    error = test.age_pred - test.age_target
    table = pd.read_csv(run_dir / "report" / "metrics_age_test.csv").set_index("metric")
    assert table.loc["mean_error", "value"] == pytest.approx(np.mean(error), abs=1e-12)
    assert table.loc["sd_error", "value"] == pytest.approx(np.std(error, ddof=1), abs=1e-12)
    assert table.loc["pearson", "value"] == pytest.approx(stats.pearsonr(test.age_target, test.age_pred)[0], abs=1e-12)
    for metric in ("mean_error", "sd_error", "pearson"):  # with patient-bootstrap intervals like the others
        low, value, high = table.loc[metric, ["ci_low", "value", "ci_high"]]
        assert low <= value <= high and high > low, metric
    groups = pd.read_csv(run_dir / "report" / "subgroups_age_test.csv")
    women = groups[(groups.subgroup == "sex") & (groups.value == "F")].iloc[0]
    part = test[test.sex == "F"]
    assert women["mean_error"] == pytest.approx(np.mean(part.age_pred - part.age_target), abs=1e-12)
    assert women["sd_error"] == pytest.approx(np.std(part.age_pred - part.age_target, ddof=1), abs=1e-12)
    assert women["pearson"] == pytest.approx(stats.pearsonr(part.age_target, part.age_pred)[0], abs=1e-12)
    for name in ("error mean (pred − true)", "error SD", "Pearson r", "MAE", "share within ±9"):
        assert f"<td>{name}</td>" in page, name
    assert f"<td>{np.std(error, ddof=1):.4f}</td>" in page
    for column in ("mean_error", "sd_error", "pearson"):
        assert f"<th>{column}</th>" in page  # the subgroup table's columns


def test_counts_render_as_integers_in_markdown_html_and_report(tmp_path):
    table = pd.DataFrame({"run": ["a", "b"], "n": [114.0, 80.0], "tp": [30.0, np.nan], "auroc": [0.81234, 0.7],
                          "delong_p_vs_first": [np.nan, 1.234e-5], "n_shared": [np.nan, 60.0]})
    markdown = to_markdown(table)
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in markdown.splitlines()]
    header, body = rows[0], rows[2:]
    column = {name: [row[header.index(name)] for row in body] for name in header}
    assert column["n"] == ["114", "80"] and column["tp"] == ["30", "–"] and column["n_shared"] == ["–", "60"]
    assert column["auroc"] == ["0.8123", "0.7000"] and column["delong_p_vs_first"] == ["–", "1.23e-05"]
    assert "114.0" not in markdown and "<td>114</td>" in to_html(table)
    run_dir = fake_run(tmp_path / "run")
    page = build_report(run_dir, options=ReportOptions(n_boot=0)).read_text()
    run = load_run(run_dir)
    groups = subgroup_table(run.predictions["test"], run.tasks["osteo"], 0.5)
    for n in groups["n"]:
        assert f"<td>{n}</td>" in page
    assert not re.search(r"<td>\d+\.0+</td>", page)  # no count anywhere as 114.0000
    assert "<th>tp</th>" in page and "<h3>test: 200 images, 100 patients</h3>" in page


def test_intervals_shrink_with_more_patients(tmp_path):
    run = load_run(fake_run(tmp_path / "run"))
    task = run.tasks["age"]
    test = run.predictions["test"]
    wide = metrics_with_ci(test.iloc[:40], task, 0.5, n_boot=200).set_index("metric").loc["mae"]
    narrow = metrics_with_ci(test, task, 0.5, n_boot=200).set_index("metric").loc["mae"]
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
    with pytest.raises(UserError, match="test/age_auroc were not logged by these jobs; they logged: test/age_mae"):
        summarize_jobs(collect_jobs(tmp_path / "multi"), ["test/age_auroc"])


THESIS_SIZES = {"224_b100": (224, 100), "224_b20": (224, 20), "512_b20": (512, 20), "512_b4": (512, 4),
                "1024_b4": (1024, 4)}


def size_multirun(folder: Path) -> tuple[Path, dict[str, list[float]]]:
    """A multirun as `train.py -m experiment=age_densenet169 size=...,... seed=0,1` leaves it: each job's config
    composed from the real tree and saved as Hydra saves it (unresolved), its overrides and a test MAE."""
    from omegaconf import OmegaConf

    from hydra_helpers import compose_train

    maes, job = {}, 0
    for size in THESIS_SIZES:
        for seed in (0, 1):
            overrides = ["experiment=age_densenet169", f"size={size}", f"seed={seed}"]
            cfg = compose_train(overrides, folder / str(job))
            (folder / str(job) / ".hydra").mkdir(parents=True)
            (folder / str(job) / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
            (folder / str(job) / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
            mae = 4.0 + job * 0.25
            maes.setdefault(size, []).append(mae)
            (folder / str(job) / "metrics.json").write_text(json.dumps({"metrics": {"test/age_mae": mae}}))
            job += 1
    return folder, maes


def test_summarize_shows_the_image_and_batch_size_each_size_option_set(tmp_path, capsys):
    multi, maes = size_multirun(tmp_path / "multi")
    summary = summarize_jobs(collect_jobs(multi)).set_index("size")
    assert sorted(summary.index) == sorted(THESIS_SIZES)
    for size, (image_size, batch_size) in THESIS_SIZES.items():
        assert (summary.loc[size, "data.image_size"], summary.loc[size, "data.batch_size"]) == (image_size,
                                                                                              batch_size)
        assert summary.loc[size, "test/age_mae"] == f"{np.mean(maes[size]):.3f} ± {np.std(maes[size], ddof=1):.3f}"
        assert summary.loc[size, "runs"] == 2
    # values that follow another (data.seed: ${seed}, data.preprocess.image_size) are not shown again
    assert not {"data.seed", "data.preprocess.image_size", "data.split.seed"} & set(summary.columns)
    code, out, _ = run_tool("summarize", [multi], capsys)
    header = out.splitlines()[0]
    assert code == 0 and all(column in header for column in ("size", "data.image_size", "data.batch_size"))
    assert "| 1024_b4 " in out and "| 224_b100 " in out


def test_summarize_script_writes_the_summary(tmp_path, capsys):
    multi = fake_multirun(tmp_path / "multi")
    code, out, _ = run_tool("summarize", [multi], capsys)
    assert code == 0
    assert "6.000 ± 1.000" in (multi / "summary.md").read_text() and "6.000 ± 1.000" in out
    assert pd.read_csv(multi / "summary.csv")["runs"].tolist() == [2, 3]
