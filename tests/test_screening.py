"""What a screener sees: calibration fitted on validation, the operating point saved with the run, ECE / Brier before
and after, the model card, and the demo's result.md, from train.py's and eval.py's own outputs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from sklearn.metrics import brier_score_loss, recall_score, roc_auc_score
from test_calibration import overconfident
from torchmetrics.functional.classification import binary_calibration_error

from radscreen.errors import UserError
from radscreen.evaluation.analysis import ReportOptions, load_run, subgroup_table
from radscreen.evaluation.calibration import fit_calibration
from radscreen.evaluation.formatting import METRIC_NAMES
from radscreen.evaluation.operating_point import load_operating_point
from radscreen.evaluation.report import build_report
from radscreen.evaluation.screening import OperatingOptions, calibrate_predictions
from radscreen.evaluation.uncertainty import patient_bootstrap_many
from radscreen.jobs import evaluate, train
from radscreen.metrics.scores import choose_threshold
from radscreen.tasks import BinaryTask

from hydra_helpers import compose_eval, compose_train, tiny_overrides
from script_helpers import load_script
from test_reports import fake_run

OSTEO = BinaryTask(name="osteo", column="bmd_class", positive=("osteoporosis",))
N_BOOT = 30


def ece(target, prob) -> float:
    return float(binary_calibration_error(torch.tensor(np.asarray(prob, float)),
                                          torch.tensor(np.asarray(target, int)), n_bins=15))


def overconfident_frames(n: int = 2000) -> dict[str, pd.DataFrame]:
    frames = {}
    for split, seed in (("val", 0), ("test", 1)):
        prob, y = overconfident(n, seed=seed)
        frames[split] = pd.DataFrame({"image_id": [f"{split}{i}" for i in range(n)], "osteo_target": y.astype(float),
                                      "osteo_pred": prob})
    return frames


# ----------------------------------------------------------------- calibration of predictions, in memory
def test_temperature_calibration_of_an_overconfident_model_cuts_its_ece():
    frames = overconfident_frames()
    point, metrics = calibrate_predictions(frames, {"osteo": OSTEO}, OperatingOptions("temperature"), "validation")
    test = frames["test"]
    before, after = ece(test.osteo_target, test.osteo_pred), ece(test.osteo_target, test.osteo_pred_calibrated)
    assert metrics["test/osteo_ece"] == pytest.approx(before, abs=1e-12)
    assert metrics["test/osteo_ece_calibrated"] == pytest.approx(after, abs=1e-12)
    assert after < 0.4 * before, (before, after)  # logits three times too large: ECE ≈ 0.14 → < 0.03
    assert metrics["test/osteo_brier_calibrated"] < metrics["test/osteo_brier"]
    assert metrics["test/osteo_brier"] == pytest.approx(brier_score_loss(test.osteo_target, test.osteo_pred))
    saved = point.tasks["osteo"]
    val = frames["val"]
    assert saved.calibration == fit_calibration("temperature", val.osteo_pred, val.osteo_target)
    assert saved.threshold == choose_threshold(val.osteo_target, val.osteo_pred_calibrated, "youden")
    assert (saved.method, saved.n_validation, point.source) == ("youden", 2000, "validation")
    positive = test.osteo_pred_calibrated >= saved.threshold
    assert metrics["test/osteo_sensitivity_at_threshold"] == pytest.approx(recall_score(test.osteo_target, positive))
    assert metrics["test/osteo_specificity_at_threshold"] == pytest.approx(
        recall_score(1 - test.osteo_target, ~positive))


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_platt_and_isotonic_also_calibrate(method):
    frames = overconfident_frames()
    _, metrics = calibrate_predictions(frames, {"osteo": OSTEO}, OperatingOptions(method, "sensitivity", 0.8))
    assert metrics["test/osteo_ece_calibrated"] < 0.5 * metrics["test/osteo_ece"]
    assert metrics["val/osteo_sensitivity_at_threshold"] >= 0.8


def test_no_calibration_raw_threshold_and_fallbacks(caplog):
    frames = overconfident_frames(400)
    point, metrics = calibrate_predictions(frames, {"osteo": OSTEO}, OperatingOptions("none"))
    assert "osteo_pred_calibrated" not in frames["test"] and "test/osteo_ece_calibrated" not in metrics
    val = frames["val"]
    assert point.tasks["osteo"].calibration is None
    assert point.tasks["osteo"].threshold == choose_threshold(val.osteo_target, val.osteo_pred, "youden")
    one_class = {"val": val.assign(osteo_target=0.0), "test": frames["test"]}
    with caplog.at_level(logging.WARNING, logger="radscreen.evaluation.screening"):
        point, _ = calibrate_predictions(one_class, {"osteo": OSTEO}, OperatingOptions("temperature"))
    assert "needs both classes of task osteo in the validation split" in caplog.text
    assert "osteo_pred_calibrated" not in one_class["test"]
    assert (point.tasks["osteo"].calibration, point.tasks["osteo"].threshold, point.tasks["osteo"].method) == \
        (None, 0.5, "fixed")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="radscreen.evaluation.screening"):
        point, _ = calibrate_predictions({"test": frames["test"]}, {"osteo": OSTEO}, OperatingOptions("platt"))
    assert "needs labelled validation predictions of task osteo and there are none" in caplog.text
    assert point.tasks["osteo"].n_validation == 0 and point.tasks["osteo"].threshold == 0.5


# ----------------------------------------------------------------- mistakes stop before anything runs
def test_an_unknown_calibration_is_one_line_before_training_or_evaluation(cohort, cache_root, tmp_path):
    cfg = compose_train([*tiny_overrides(cohort, tmp_path, cache_root), "calibration=beta"], tmp_path / "run")
    with pytest.raises(UserError) as raised:
        train(cfg)
    message = str(raised.value)
    assert message == "calibration=beta is not a calibration method; choose one of none, temperature, platt, isotonic"
    assert not (tmp_path / "run").exists()  # nothing trained, no run folder
    cfg = compose_eval([f"ckpt_path={tmp_path / 'missing.ckpt'}", "calibration=beta"], tmp_path / "eval")
    with pytest.raises(UserError, match=r"^calibration=beta is not a calibration method"):
        evaluate(cfg)  # before the checkpoint is even looked for
    cfg = compose_eval([f"ckpt_path={tmp_path / 'missing.ckpt'}", "report.threshold_method=median"], tmp_path / "eval")
    with pytest.raises(UserError, match="threshold 'median' is neither youden, sensitivity, fixed nor a number"):
        evaluate(cfg)


# ----------------------------------------------------------------- a real run: train.py after fitting, then eval.py
@pytest.fixture(scope="module")
def trained(cohort, cache_root, tmp_path_factory) -> Path:
    """A tiny age + osteoporosis run folder as train.py leaves it (with .hydra/ written as Hydra would)."""
    folder = tmp_path_factory.mktemp("screening") / "run"
    overrides = [*tiny_overrides(cohort, folder.parent, cache_root), "task=[age,osteo_binary]", "trainer.max_epochs=2",
                 "augment=none", f"report.n_boot={N_BOOT}"]
    cfg = compose_train(overrides, folder)
    (folder / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, folder / ".hydra" / "config.yaml")
    OmegaConf.save(OmegaConf.create([o for o in overrides if not o.startswith("hydra.")]),
                   folder / ".hydra" / "overrides.yaml")
    train(cfg)
    return folder


def card_row(card: str, name: str) -> list[str]:
    """The cells of the first Markdown table row of `card` whose first cell is `name`."""
    for line in card.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == name:
            return cells
    raise AssertionError(f"no row {name!r} in the card")


def card_section(card: str, heading: str) -> str:
    start = card.index(heading)
    end = card.find("\n## ", start + 1)
    return card[start:end if end > 0 else None]


def test_train_writes_calibrated_predictions_and_the_operating_point_it_chose(trained):
    for split in ("train", "val", "test"):
        columns = pd.read_csv(trained / f"predictions_{split}.csv").columns
        assert "osteo_pred_calibrated" in columns and "age_pred_calibrated" not in columns
    val = pd.read_csv(trained / "predictions_val.csv").dropna(subset=["osteo_target"])
    point = load_operating_point(trained)
    saved = point.tasks["osteo"]
    assert saved.threshold == choose_threshold(val.osteo_target, val.osteo_pred_calibrated, "youden")
    assert saved.method == "youden" and saved.n_validation == len(val)
    assert saved.calibration == fit_calibration("temperature", val.osteo_pred, val.osteo_target)  # CSVs hold float64
    assert str(trained) in point.source and list(point.tasks) == ["osteo"]
    assert (trained / "checkpoints").is_dir() and (trained / "operating_point.json").is_file()


def test_logged_ece_and_brier_equal_torchmetrics_and_sklearn_on_the_csv(trained):
    logged = json.loads((trained / "metrics.json").read_text())["metrics"]
    threshold = load_operating_point(trained).tasks["osteo"].threshold
    for split in ("val", "test"):
        rows = pd.read_csv(trained / f"predictions_{split}.csv").dropna(subset=["osteo_target"])
        y = rows.osteo_target.astype(int)
        for suffix, column in (("", "osteo_pred"), ("_calibrated", "osteo_pred_calibrated")):
            assert logged[f"{split}/osteo_ece{suffix}"] == pytest.approx(ece(y, rows[column]), abs=1e-6)
            assert logged[f"{split}/osteo_brier{suffix}"] == pytest.approx(brier_score_loss(y, rows[column]),
                                                                          abs=1e-6)
        positive = rows.osteo_pred_calibrated >= threshold
        assert logged[f"{split}/osteo_sensitivity_at_threshold"] == pytest.approx(recall_score(y, positive))
        assert logged[f"{split}/osteo_specificity_at_threshold"] == pytest.approx(recall_score(1 - y, ~positive))


def test_model_card_holds_the_reports_numbers_and_the_command(trained):
    card = (trained / "model_card.md").read_text()
    for heading in ("## Intended use", "## Out-of-scope use", "## Training data", "## Preprocessing", "## Model",
                    "## Metrics (test and external sets, 95 % CIs)", "## Subgroup metrics", "## Threshold and "
                    "calibration", "## Known limitations", "## Reproduce"):
        assert heading in card, heading
    report = build_report(trained, options=ReportOptions(n_boot=N_BOOT)).parent  # what scripts/report.py writes
    logged = json.loads((trained / "metrics.json").read_text())["metrics"]
    metrics = card_section(card, "## Metrics")
    for task in ("osteo", "age"):
        table = pd.read_csv(report / f"metrics_{task}_test.csv")
        section = metrics[metrics.index(f"### {task}, test"):]
        for row in table.itertuples():
            cells = card_row(section, METRIC_NAMES.get(row.metric, row.metric))
            assert cells[1:] == [f"{row.value:.4f}", f"{row.ci_low:.4f}–{row.ci_high:.4f}"], row.metric
    for key in ("ece", "ece_calibrated", "brier", "brier_calibrated", "auroc"):
        value = float(card_row(metrics[metrics.index("### osteo, test"):], METRIC_NAMES[key])[1])
        assert value == pytest.approx(logged[f"test/osteo_{key}"], abs=6e-5), key
    groups = pd.read_csv(report / "subgroups_osteo_test.csv").set_index(["subgroup", "value"])
    women = groups.loc[("sex", "F")]
    subgroups = card_section(card, "## Subgroup metrics")
    cells = card_row(subgroups[subgroups.index("### osteo, test"):], "sex")
    assert cells[1:4] == ["F", str(int(women.n)), f"{women.auroc:.4f} ({women.auroc_ci_low:.4f}–"
                                                      f"{women.auroc_ci_high:.4f})"]
    saved = load_operating_point(trained).tasks["osteo"]
    assert card_row(card_section(card, "## Threshold"), "threshold")[1] == f"{saved.threshold:.6g}"
    assert f"T = {saved.calibration['temperature']:.4g}" in card
    command = card_section(card, "## Reproduce")
    assert "python train.py seed=" in command and "'task=[age,osteo_binary]'" in command
    assert f"report.n_boot={N_BOOT}" in command
    limitations = card_section(card, "## Known limitations")
    assert "synthetic data (cohort synthetic)" in limitations
    n_val = len(pd.read_csv(trained / "predictions_val.csv"))
    assert f"The validation split holds {n_val} images (< 100)" in limitations
    assert "No external test set" in limitations
    data = card_section(card, "## Training data")
    test = pd.read_csv(trained / "predictions_test.csv")
    cells = card_row(data, "test")
    assert cells[1:3] == [str(len(test)), str(test.patient_id.nunique())]
    assert cells[3] == f"{test.age_years.mean():.1f} ± {test.age_years.std():.1f} ({test.age_years.min():.0f}–" \
                       f"{test.age_years.max():.0f})"


def test_eval_saves_its_own_operating_point_and_card_and_none_is_raw(trained, tmp_path):
    checkpoint = trained / "checkpoints" / "best.ckpt"
    folder = tmp_path / "eval"
    evaluate(compose_eval([f"ckpt_path={checkpoint}", f"report.n_boot={N_BOOT}", "calibration=platt",
                           f"paths.log_dir={tmp_path}/logs"], folder))
    point = load_operating_point(folder)
    val = pd.read_csv(folder / "predictions_val.csv").dropna(subset=["osteo_target"])
    assert point.tasks["osteo"].calibration["method"] == "platt"
    assert point.tasks["osteo"].threshold == choose_threshold(val.osteo_target, val.osteo_pred_calibrated, "youden")
    confusion = pd.read_csv(folder / "report" / "confusion_osteo_test.csv").iloc[0]
    test = pd.read_csv(folder / "predictions_test.csv").dropna(subset=["osteo_target"])
    positive = test.osteo_pred_calibrated >= point.tasks["osteo"].threshold
    assert confusion.threshold == point.tasks["osteo"].threshold
    assert confusion.tp == int((positive & (test.osteo_target == 1)).sum())
    card = (folder / "model_card.md").read_text()
    table = pd.read_csv(folder / "report" / "metrics_osteo_test.csv").set_index("metric")
    cells = card_row(card[card.index("### osteo, test"):], "specificity")
    assert cells[1:] == [f"{table.loc['specificity', 'value']:.4f}",
                         f"{table.loc['specificity', 'ci_low']:.4f}–{table.loc['specificity', 'ci_high']:.4f}"]
    command = card_section(card, "## Reproduce")
    assert f"python eval.py ckpt_path={checkpoint}" in command and "calibration=platt" in command
    assert "python train.py seed=" in command  # and the training run's own command
    page = (folder / "report" / "report.html").read_text()
    assert "Operating point (operating_point.json)" in page and "Platt scaling" in page

    raw = tmp_path / "raw"
    evaluate(compose_eval([f"ckpt_path={checkpoint}", "report.n_boot=0", "calibration=none", "report.enabled=false",
                           f"paths.log_dir={tmp_path}/logs"], raw))
    for split in ("val", "test"):
        assert "osteo_pred_calibrated" not in pd.read_csv(raw / f"predictions_{split}.csv").columns
    val = pd.read_csv(raw / "predictions_val.csv").dropna(subset=["osteo_target"])
    saved = load_operating_point(raw).tasks["osteo"]
    assert saved.calibration is None
    assert saved.threshold == choose_threshold(val.osteo_target, val.osteo_pred, "youden")
    logged = json.loads((raw / "metrics.json").read_text())["metrics"]
    assert "test/osteo_ece" in logged and "test/osteo_ece_calibrated" not in logged
    assert (raw / "model_card.md").is_file() and not (raw / "report").exists()


# ----------------------------------------------------------------- report pieces on fake runs
def test_subgroup_intervals_are_each_subgroups_own_patient_bootstrap(tmp_path):
    run = load_run(fake_run(tmp_path / "run"))
    test = run.predictions["test"]
    groups = subgroup_table(test, run.tasks["osteo"], 0.3, n_boot=40, seed=3).set_index(["subgroup", "value"])
    women = test[test.sex == "F"]
    expected = patient_bootstrap_many(women, lambda s: {"auroc": roc_auc_score(s.osteo_target, s.osteo_pred)},
                                      n_boot=40, seed=3)
    assert (groups.loc[("sex", "F"), "auroc_ci_low"], groups.loc[("sex", "F"), "auroc_ci_high"]) == \
        pytest.approx(expected["auroc"])
    assert (groups["sensitivity_ci_low"] <= groups["sensitivity_ci_high"]).all()
    assert "auroc_ci_low" not in subgroup_table(test, run.tasks["osteo"], 0.3).columns  # n_boot=0: points only


def test_report_reads_a_saved_operating_point_and_calibrates_with_it(tmp_path):
    """Predictions without the calibrated column are calibrated as operating_point.json says; the report uses its
    threshold, not one chosen again."""
    from radscreen.evaluation.operating_point import OperatingPoint, TaskOperatingPoint

    run_dir = fake_run(tmp_path / "run")
    OperatingPoint({"osteo": TaskOperatingPoint(0.4, "youden", {"method": "temperature", "temperature": 2.0}, 80)},
                   "elsewhere").save(run_dir)
    run = load_run(run_dir)
    test = run.predictions["test"]
    z = np.log(test.osteo_pred.clip(1e-7, 1 - 1e-7) / (1 - test.osteo_pred.clip(1e-7, 1 - 1e-7)))
    np.testing.assert_allclose(test.osteo_pred_calibrated, 1 / (1 + np.exp(-z / 2.0)), rtol=1e-12)
    build_report(run, options=ReportOptions(n_boot=0))
    counts = pd.read_csv(run_dir / "report" / "confusion_osteo_test.csv").iloc[0]
    positive = test.osteo_pred_calibrated >= 0.4
    assert counts.threshold == 0.4 and counts.tp == int((positive & (test.osteo_target == 1)).sum())
    page = (run_dir / "report" / "report.html").read_text()
    assert "0.4000, the run&#x27;s saved operating point (Youden&#x27;s J on the calibrated validation " \
           "probabilities, n=80)" in page
    assert (run_dir / "report" / "figures" / "osteo_test_calibration.png").is_file()


# ----------------------------------------------------------------- the demo's summary
def test_demo_result_gives_the_screening_figures_at_the_saved_threshold(tmp_path, monkeypatch):
    demo = load_script("demo")
    monkeypatch.setattr(demo, "OUT", tmp_path)
    (tmp_path / "age").mkdir()
    (tmp_path / "eval").mkdir()
    (tmp_path / "age" / "metrics.json").write_text(json.dumps({"metrics": {"test/age_mae": 6.5, "test/age_r2": 0.7}}))
    for split, ages in (("train", [40.0, 60.0]), ("test", [50.0, 70.0])):
        pd.DataFrame({"age_target": ages}).to_csv(tmp_path / "age" / f"predictions_{split}.csv", index=False)
    metrics = {"test/osteo_auroc": 0.97, "test/osteo_sensitivity": 0.1, "test/osteo_specificity": 1.0,
               "test/osteo_sensitivity_at_threshold": 0.912, "test/osteo_specificity_at_threshold": 0.887,
               "test/osteo_ppv_at_threshold": 0.8, "test/osteo_npv_at_threshold": 0.95, "test/osteo_ece": 0.301,
               "test/osteo_ece_calibrated": 0.052, "test/osteo_brier": 0.29, "test/osteo_brier_calibrated": 0.08}
    (tmp_path / "eval" / "metrics.json").write_text(json.dumps({"metrics": metrics}))
    (tmp_path / "eval" / "operating_point.json").write_text(json.dumps({"source": "val", "tasks": {"osteo": {
        "threshold": 0.3125, "method": "youden", "n_validation": 55,
        "calibration": {"method": "temperature", "temperature": 8.5}}}}))
    text = demo.write_result({"age model": 60.0}, 1200).read_text()
    assert "| osteoporosis | sensitivity / specificity at that threshold | 0.912 / 0.887 |" in text
    assert "| osteoporosis | calibration (temperature scaling (T = 8.5)): ECE before → after | 0.301 → 0.052 |" in text
    assert "chosen on the 55 validation images (youden, calibrated probabilities) | 0.3125 |" in text
    assert "at 0.5" not in text and "0.100" not in text  # no figures at the default threshold
