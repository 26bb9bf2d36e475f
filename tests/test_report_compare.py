"""scripts/report.py on several runs: where the comparison goes, DeLong on the shared images, thresholds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from radscreen.errors import UserError
from radscreen.evaluation.analysis import load_run
from radscreen.evaluation.sweeps import compare_runs, paired_delong
from radscreen.evaluation.uncertainty import delong_test
from radscreen.metrics.scores import parse_threshold

from script_helpers import run_tool, user_error
from test_reports import fake_predictions, fake_run, write_run


def overlapping_runs(tmp_path, shift: int = 50, n: int = 200):
    """Runs A (test images 0–199) and B (test images shift…shift+199) with the same labels on shared images."""
    rng = np.random.default_rng(7)
    total = shift + n
    labels = (rng.random(total) < 0.35).astype(float)
    runs = []
    for name, first in (("A", 0), ("B", shift)):
        test = fake_predictions("test", n, rng, first_id=first)
        test["osteo_target"] = labels[first:first + n]
        test["osteo_pred"] = np.clip(0.3 * test["osteo_target"] + rng.normal(0.35, 0.2, n), 0, 1)
        val = fake_predictions("val", 60, rng)
        runs.append(write_run(tmp_path / name, {"val": val, "test": test}, name=name))
    return runs


def test_comparison_is_written_beside_the_first_run_never_in_the_cwd(tmp_path, monkeypatch, capsys):
    a, b = overlapping_runs(tmp_path)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    code, out, err = run_tool("report", [a, b, "--boot", "0"], capsys)
    assert code == 0, err
    assert list(cwd.iterdir()) == []
    comparison = pd.read_csv(a / "comparison" / "comparison.csv")
    assert list(comparison["run"]) == ["A", "A", "B", "B"]
    markdown = (a / "comparison" / "comparison.md").read_text()
    assert "n_shared" in markdown and str(a) in markdown and str(b) in markdown
    assert "n_shared" in out and (a / "report" / "report.html").exists() and (b / "report" / "report.html").exists()
    code, _, err = run_tool("report", [a, b, "--boot", "0", "--out", tmp_path / "elsewhere"], capsys)
    assert code == 0, err
    assert (tmp_path / "elsewhere" / "comparison.csv").exists() and list(cwd.iterdir()) == []


def test_delong_uses_the_shared_images_and_says_how_many(tmp_path):
    a, b = (load_run(path) for path in overlapping_runs(tmp_path, shift=50))
    table = compare_runs([a, b], threshold_method=0.5)
    row = table[(table.run == "B") & (table.task == "osteo")].iloc[0]
    assert (row["n"], row["n_first"], row["n_shared"]) == (200, 200, 150)
    first, other = a.predictions["test"], b.predictions["test"]
    shared = first.merge(other, on="image_id", suffixes=("_a", "_b"))
    assert len(shared) == 150
    expected = delong_test(shared.osteo_target_a, shared.osteo_pred_a, shared.osteo_pred_b)
    assert row["delong_p_vs_first"] == pytest.approx(expected["p_value"], rel=1e-12)
    assert row["auroc_shared"] == pytest.approx(skm.roc_auc_score(shared.osteo_target_b, shared.osteo_pred_b))
    assert row["auroc_first_shared"] == pytest.approx(skm.roc_auc_score(shared.osteo_target_a, shared.osteo_pred_a))
    assert row["auroc"] == pytest.approx(skm.roc_auc_score(other.osteo_target, other.osteo_pred))  # all of B's
    reference = table[(table.run == "A") & (table.task == "osteo")].iloc[0]
    assert np.isnan(reference["n_shared"]) and np.isnan(reference["delong_p_vs_first"])


def test_delong_without_shared_images_is_a_user_error(tmp_path, capsys):
    a, b = overlapping_runs(tmp_path, shift=200)
    message = user_error("report", [a, b, "--boot", "0"], capsys)
    assert message == ("error: task osteo, test: run B (200 images) and run A (200 images) share no labelled "
                       "image_id; DeLong's paired test needs the same images")
    assert not (a / "comparison").exists()


def test_delong_with_disagreeing_labels_is_a_user_error(tmp_path):
    a, b = (load_run(path) for path in (fake_run(tmp_path / "a", seed=0), fake_run(tmp_path / "b", seed=1)))
    with pytest.raises(UserError, match=r"disagree on the label of \d+ of 200 shared images"):
        paired_delong(a.predictions["test"], b.predictions["test"], a.tasks["osteo"], ("a", "b"))


def test_fixed_threshold_gives_the_confusion_counts_by_hand(tmp_path, capsys):
    run_dir = fake_run(tmp_path / "run")
    code, _, err = run_tool("report", [run_dir, "--threshold", "0.35", "--boot", "0"], capsys)
    assert code == 0, err
    test = pd.read_csv(run_dir / "predictions_test.csv")
    y, positive = test.osteo_target == 1, test.osteo_pred >= 0.35
    counts = pd.read_csv(run_dir / "report" / "confusion_osteo_test.csv").iloc[0]
    assert counts["threshold"] == 0.35
    assert (counts.tp, counts.fp, counts.tn, counts.fn) == ((y & positive).sum(), (~y & positive).sum(),
                                                            (~y & ~positive).sum(), (y & ~positive).sum())
    page = (run_dir / "report" / "report.html").read_text()
    assert "Operating threshold fixed at 0.35; applied unchanged below." in page
    metrics = pd.read_csv(run_dir / "report" / "metrics_osteo_test.csv").set_index("metric")
    assert metrics.loc["sensitivity", "value"] == pytest.approx((y & positive).sum() / y.sum())


def test_threshold_spellings():
    assert parse_threshold("youden") == "youden" and parse_threshold("sensitivity") == "sensitivity"
    assert parse_threshold("0.35") == 0.35 and parse_threshold(0.2) == 0.2
    assert parse_threshold("fixed") == 0.5  # documented as "fixed (0.5)" in conf/eval.yaml


@pytest.mark.parametrize(("value", "message"), [
    ("otsu", "error: threshold 'otsu' is neither youden, sensitivity, fixed nor a number such as 0.35"),
    ("1.5", "error: threshold 1.5 is not a probability; give a number between 0 and 1, e.g. 0.35"),
])
def test_bad_threshold_is_a_user_error(tmp_path, capsys, value, message):
    assert user_error("report", [tmp_path, "--threshold", value], capsys) == message
