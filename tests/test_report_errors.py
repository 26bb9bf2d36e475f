"""Every user mistake in scripts/report.py and scripts/summarize.py: one line `error: …`, exit code 2."""

from __future__ import annotations

import json

import pandas as pd

from radscreen.runs import mark_failed

from script_helpers import run_tool, user_error
from test_reports import fake_multirun, fake_run


def test_report_run_folder_that_does_not_exist(tmp_path, capsys):
    missing = tmp_path / "nope"
    assert user_error("report", [missing], capsys) == f"error: run folder {missing} does not exist"


def test_report_run_folder_that_is_a_file(tmp_path, capsys):
    run_dir = fake_run(tmp_path / "run")
    path = run_dir / "predictions_test.csv"
    assert user_error("report", [path], capsys) == \
        f"error: {path} is a file, not a run folder; give the folder that holds predictions_*.csv"


def test_report_run_folder_without_predictions(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert user_error("report", [tmp_path / "empty"], capsys) == \
        f"error: no predictions_*.csv in {tmp_path / 'empty'}: is it a train.py / eval.py run folder?"


def test_report_empty_predictions_csv(tmp_path, capsys):
    run_dir = fake_run(tmp_path / "run")
    (run_dir / "predictions_test.csv").write_text("")
    assert user_error("report", [run_dir], capsys) == (f"error: predictions file {run_dir / 'predictions_test.csv'} "
                                                       f"is empty; it needs a header row and one row per record")


def test_report_predictions_csv_with_semicolons(tmp_path, capsys):
    run_dir = fake_run(tmp_path / "run")
    path = run_dir / "predictions_test.csv"
    pd.read_csv(path).to_csv(path, sep=";", index=False)
    assert user_error("report", [run_dir], capsys).startswith(f"error: predictions file {path} is separated by ';'")


def test_report_predictions_without_a_prediction_column(tmp_path, capsys):
    run_dir = fake_run(tmp_path / "run")
    path = run_dir / "predictions_test.csv"
    pd.read_csv(path).drop(columns="osteo_pred").to_csv(path, index=False)
    assert user_error("report", [run_dir], capsys) == \
        f"error: predictions file {path} lacks column(s) osteo_pred needed to score task osteo"


def test_report_predictions_without_image_id(tmp_path, capsys):
    run_dir = fake_run(tmp_path / "run")
    path = run_dir / "predictions_val.csv"
    pd.read_csv(path).drop(columns="image_id").to_csv(path, index=False)
    assert user_error("report", [run_dir], capsys).startswith(f"error: predictions file {path} lacks column(s) "
                                                              f"image_id; it has: patient_id, split")


def test_report_run_without_config(tmp_path, capsys):
    run_dir = fake_run(tmp_path / "run")
    (run_dir / ".hydra" / "config.yaml").unlink()
    assert user_error("report", [run_dir], capsys) == \
        f"error: no task configuration found for {run_dir} (config_resolved.yaml or .hydra/config.yaml)"


def test_report_failed_run(tmp_path, capsys):
    run_dir = fake_run(tmp_path / "run")
    mark_failed(run_dir, RuntimeError("CUDA out of memory"))
    assert user_error("report", [run_dir], capsys) == \
        f"error: run {run_dir} failed (see {run_dir / 'FAILED'}); its predictions are incomplete"


def test_report_subgroup_column_missing(tmp_path, capsys):
    run_dir = fake_run(tmp_path / "run")
    message = user_error("report", [run_dir, "--subgroups", "sex", "cohort"], capsys)
    assert message.startswith(f"error: subgroup column(s) cohort (--subgroups) are not in the test / external "
                              f"predictions of {run_dir}; they have: age_pred, age_target")
    assert not (run_dir / "report").exists()


def test_report_comparison_out_folder_missing(tmp_path, capsys):
    a, b = fake_run(tmp_path / "a"), fake_run(tmp_path / "b")
    out = tmp_path / "missing" / "cmp"
    assert user_error("report", [a, b, "--out", out], capsys) == \
        f"error: the folder above --out {out} does not exist; create {out.parent} first"
    assert not (a / "report").exists()


def test_report_bad_sensitivity_and_boot(tmp_path, capsys):
    run_dir = fake_run(tmp_path / "run")
    assert user_error("report", [run_dir, "--threshold", "sensitivity", "--sensitivity", "90"], capsys) == \
        "error: --sensitivity 90.0 is not a sensitivity; give a number in (0, 1], e.g. 0.9"
    assert user_error("report", [run_dir, "--boot", "-1"], capsys) == \
        "error: --boot -1 is negative; give a number of resamples (0: no intervals)"


def test_report_validation_with_one_class(tmp_path, capsys):
    run_dir = fake_run(tmp_path / "run")
    path = run_dir / "predictions_val.csv"
    pd.read_csv(path).assign(osteo_target=0.0).to_csv(path, index=False)
    assert user_error("report", [run_dir], capsys) == (
        f"error: the validation predictions of {run_dir} hold only one class of task osteo; a youden threshold "
        f"needs both: pass a number, e.g. --threshold 0.5")


def test_summarize_folder_that_does_not_exist(tmp_path, capsys):
    assert user_error("summarize", [tmp_path / "nope"], capsys) == \
        f"error: multirun folder {tmp_path / 'nope'} does not exist"


def test_summarize_folder_without_finished_jobs(tmp_path, capsys):
    (tmp_path / "multi" / "0").mkdir(parents=True)
    assert user_error("summarize", [tmp_path / "multi"], capsys) == \
        f"error: nothing to summarise in {tmp_path / 'multi'}: no finished jobs (*/metrics.json)"


def test_summarize_metric_never_logged(tmp_path, capsys):
    multi = fake_multirun(tmp_path / "multi")
    assert user_error("summarize", [multi, "--metrics", "test/age_r2"], capsys) == \
        "error: metric(s) test/age_r2 were not logged by these jobs; they logged: test/age_mae, val/loss"
    assert not (multi / "summary.md").exists()


def test_summarize_unreadable_metrics_json(tmp_path, capsys):
    multi = fake_multirun(tmp_path / "multi")
    (multi / "3" / "metrics.json").write_text("[1, 2]")
    assert user_error("summarize", [multi], capsys) == \
        f"error: {multi / '3' / 'metrics.json'} is not a metrics.json written by train.py (not a JSON object)"


def test_summarize_skips_failed_jobs_and_says_how_many(tmp_path, capsys):
    multi = fake_multirun(tmp_path / "multi")
    mark_failed(multi / "2", RuntimeError("diverged"))  # (512, seed 0), mae 5: left out
    (multi / "5").mkdir()
    mark_failed(multi / "5", RuntimeError("killed before any metric"))
    code, out, err = run_tool("summarize", [multi], capsys)
    assert code == 0, err
    assert "skipped 2 failed job(s) (FAILED marker): 2, 5" in err
    summary = pd.read_csv(multi / "summary.csv").set_index("data.image_size")
    assert summary.loc[512, "runs"] == 2 and summary.loc[512, "test/age_mae"] == "6.500 ± 0.707"
    assert "Skipped 2 failed job(s)" in (multi / "summary.md").read_text()


def test_summarize_all_jobs_failed(tmp_path, capsys):
    multi = fake_multirun(tmp_path / "multi")
    for job in multi.iterdir():
        mark_failed(job, RuntimeError("x"))
    assert user_error("summarize", [multi], capsys) == \
        f"error: nothing to summarise in {multi}: all 5 job(s) failed (FAILED marker)"
    assert json.loads((multi / "0" / "metrics.json").read_text())  # nothing of the jobs was touched
