"""Age gap: the linear bias correction fitted on validation, and scripts/agegap.py (outputs and user mistakes)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from radscreen.evaluation.agegap import RAW, add_age_gap, fit_gap_correction

from script_helpers import run_tool, user_error

MEAN_AGE = 55.0


def regressing_to_the_mean(n: int, rng: np.random.Generator, split: str) -> pd.DataFrame:
    """Predictions that regress to the mean: pred = mean + 0.5·(age − mean) + noise (no biology in the gap)."""
    age = rng.uniform(20, 90, n)
    pred = MEAN_AGE + 0.5 * (age - MEAN_AGE) + rng.normal(0, 6, n)
    ids = [f"{split}{i}" for i in range(n)]
    return pd.DataFrame({"image_id": ids, "patient_id": [f"p{i}" for i in ids], "age_years": age,
                         "sex": rng.choice(["F", "M"], n), "age_target": age, "age_pred": pred})


@pytest.fixture
def run_dir(tmp_path):
    rng = np.random.default_rng(11)
    folder = tmp_path / "run"
    folder.mkdir()
    regressing_to_the_mean(600, rng, "val").to_csv(folder / "predictions_val.csv", index=False)
    test = regressing_to_the_mean(800, rng, "test")
    test.to_csv(folder / "predictions_test.csv", index=False)
    manifest = test[["image_id"]].assign(weight_kg=rng.normal(75, 12, len(test)),
                                         bmd_class=rng.choice(["normal", "osteopenia", "osteoporosis"], len(test)))
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    return folder


def test_coefficients_equal_polyfit_on_the_validation_rows():
    rng = np.random.default_rng(0)
    val = regressing_to_the_mean(300, rng, "val")
    val.loc[::10, "age_pred"] = np.nan  # rows without a prediction are left out of the fit
    correction = fit_gap_correction(val.age_target, val.age_pred)
    kept = val.dropna(subset=["age_pred"])
    slope, intercept = np.polyfit(kept.age_target, kept.age_pred - kept.age_target, 1)
    assert correction.slope == pytest.approx(slope, rel=1e-10) and correction.intercept == pytest.approx(intercept)
    assert correction.n == len(kept) == 270
    gap = np.asarray([3.0, -2.0])
    assert correction.apply(gap, [30, 70]) == pytest.approx(gap - (intercept + slope * np.array([30, 70])))


def test_correction_removes_regression_to_the_mean():
    rng = np.random.default_rng(1)
    val, test = regressing_to_the_mean(600, rng, "val"), regressing_to_the_mean(800, rng, "test")
    correction = fit_gap_correction(val.age_target, val.age_pred)
    raw, corrected = add_age_gap(test, "age", RAW), add_age_gap(test, "age", correction)
    assert stats.pearsonr(raw.age_target, raw.age_gap)[0] < -0.7
    assert abs(stats.pearsonr(corrected.age_target, corrected.age_gap)[0]) < 0.2
    mean_age = {name: frame.groupby("age_gap_group", observed=True)["age_target"].mean()
                for name, frame in (("raw", raw), ("corrected", corrected))}
    # raw: the 'old-predicted' are the young and the 'young-predicted' the old (the pattern of the issue)
    assert mean_age["raw"]["young-predicted"] - mean_age["raw"]["old-predicted"] > 20
    assert abs(mean_age["corrected"]["young-predicted"] - mean_age["corrected"]["old-predicted"]) < 8
    assert (corrected.age_gap_raw == raw.age_gap).all()


def test_agegap_script_corrects_on_validation_by_default_and_says_so(run_dir, capsys):
    code, out, err = run_tool("agegap", [run_dir / "predictions_test.csv", "--manifest", run_dir.parent /
                                           "manifest.csv", "--categorical", "sex", "bmd_class", "--continuous",
                                           "age_years", "weight_kg"], capsys)
    assert code == 0, err
    folder = run_dir / "agegap"
    correction = json.loads((folder / "correction.json").read_text())
    val = pd.read_csv(run_dir / "predictions_val.csv")
    slope, intercept = np.polyfit(val.age_target, val.age_pred - val.age_target, 1)
    assert correction["slope"] == pytest.approx(slope) and correction["intercept"] == pytest.approx(intercept)
    used = f"bias-corrected on validation (n=600, slope {slope:.3f}, intercept {intercept:.2f} y)"
    assert correction["description"] == used and correction["validation_file"] == str(run_dir / "predictions_val.csv")
    assert out.startswith(f"# Age gap: {used}; groups at ±5 y") and used in err
    assert (folder / "agegap.md").read_text().startswith(f"# Age gap: {used}")
    for name in ("categorical", "continuous"):
        assert set(pd.read_csv(folder / f"{name}.csv")["age_gap"]) == {used}
    gaps = pd.read_csv(folder / "gaps.csv")
    assert gaps["age_gap"].to_numpy() == pytest.approx(
        (gaps.age_pred - gaps.age_target - (intercept + slope * gaps.age_target)).to_numpy())
    assert abs(stats.pearsonr(gaps.age_target, gaps.age_gap)[0]) < 0.2
    summary = pd.read_csv(folder / "gap_summary.csv")
    assert summary.loc[0, "pearson_r_with_age"] == pytest.approx(stats.pearsonr(gaps.age_target, gaps.age_gap_raw)[0])
    assert (folder / "agegap_weight_kg.png").exists()
    assert "| young-predicted |" in out  # counts table, integers
    assert not list(folder.glob("*.partial"))


def test_agegap_script_raw_gap_on_request(run_dir, capsys):
    code, out, err = run_tool("agegap", [run_dir / "predictions_test.csv", "--correction", "none",
                                           "--categorical", "sex", "--continuous", "age_years"], capsys)
    assert code == 0, err
    assert out.startswith("# Age gap: raw (predicted − true, not bias-corrected); groups at ±5 y")
    gaps = pd.read_csv(run_dir / "agegap" / "gaps.csv")
    assert (gaps.age_gap == gaps.age_gap_raw).all()
    assert set(pd.read_csv(run_dir / "agegap" / "continuous.csv")["age_gap"]) == \
        {"raw (predicted − true, not bias-corrected)"}


def test_agegap_explicit_validation_file(run_dir, tmp_path, capsys):
    other = tmp_path / "elsewhere.csv"
    (run_dir / "predictions_val.csv").rename(other)
    code, _, err = run_tool("agegap", [run_dir / "predictions_test.csv", "--validation", other, "--categorical",
                                         "sex", "--continuous", "age_years", "--out", tmp_path / "out"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "out" / "correction.json").read_text())["n"] == 600


def test_agegap_validation_missing(run_dir, capsys):
    (run_dir / "predictions_val.csv").unlink()
    assert user_error("agegap", [run_dir / "predictions_test.csv", "--categorical", "sex", "--continuous"], capsys) \
        == (f"error: validation predictions {run_dir / 'predictions_val.csv'} do not exist; the bias correction is "
            f"fitted on them: pass --validation PATH, or --correction none for the raw gap")
    assert not (run_dir / "agegap").exists()


def test_agegap_given_validation_missing(run_dir, capsys):
    missing = run_dir / "nope.csv"
    assert user_error("agegap", [run_dir / "predictions_test.csv", "--validation", missing, "--categorical", "sex",
                                 "--continuous"], capsys).startswith(f"error: validation predictions {missing} do "
                                                                     f"not exist; the bias correction")


def test_agegap_validation_without_predictions(run_dir, capsys):
    path = run_dir / "predictions_val.csv"
    pd.read_csv(path).drop(columns="age_pred").to_csv(path, index=False)
    assert user_error("agegap", [run_dir / "predictions_test.csv", "--categorical", "sex", "--continuous"],
                      capsys).startswith(f"error: validation predictions {path} lacks column(s) age_pred; it has:")


def test_agegap_predictions_missing(tmp_path, capsys):
    missing = tmp_path / "predictions_test.csv"
    assert user_error("agegap", [missing], capsys) == f"error: predictions file {missing} does not exist"


def test_agegap_predictions_empty(tmp_path, capsys):
    path = tmp_path / "predictions_test.csv"
    path.write_text("")
    assert user_error("agegap", [path], capsys) == \
        f"error: predictions file {path} is empty; it needs a header row and one row per record"


def test_agegap_predictions_folder(run_dir, capsys):
    assert user_error("agegap", [run_dir], capsys) == \
        f"error: predictions file {run_dir} is a folder; give the path of a file"


def test_agegap_task_columns_missing(run_dir, capsys):
    path = run_dir / "predictions_test.csv"
    assert user_error("agegap", [path, "--task", "brain"], capsys).startswith(
        f"error: predictions file {path} lacks column(s) brain_pred, brain_target; it has: image_id")


def test_agegap_clinical_column_missing(run_dir, capsys):
    path = run_dir / "predictions_test.csv"
    assert user_error("agegap", [path, "--categorical", "sex", "--continuous", "weight_kg"], capsys) == \
        f"error: column(s) weight_kg not found in predictions {path} (pass --manifest for clinical columns)"
    manifest = run_dir.parent / "manifest.csv"
    assert user_error("agegap", [path, "--manifest", manifest, "--continuous", "bmi"], capsys) == \
        f"error: column(s) bmi not found in predictions {path} or manifest {manifest}"


def test_agegap_manifest_missing_or_without_image_id(run_dir, capsys):
    path, manifest = run_dir / "predictions_test.csv", run_dir.parent / "manifest.csv"
    assert user_error("agegap", [path, "--manifest", run_dir / "m.csv"], capsys) == \
        f"error: manifest {run_dir / 'm.csv'} does not exist"
    pd.read_csv(manifest).rename(columns={"image_id": "id"}).to_csv(manifest, index=False)
    assert user_error("agegap", [path, "--manifest", manifest], capsys).startswith(
        f"error: manifest {manifest} lacks column(s) image_id; it has: id")


def test_agegap_manifest_with_duplicate_images(run_dir, capsys):
    path, manifest = run_dir / "predictions_test.csv", run_dir.parent / "manifest.csv"
    table = pd.read_csv(manifest)
    pd.concat([table, table.iloc[:3]]).to_csv(manifest, index=False)
    assert user_error("agegap", [path, "--manifest", manifest], capsys) == (
        f"error: manifest {manifest} lists 3 image_id(s) more than once; one row per image is needed to join it to "
        f"the predictions")


def test_agegap_out_folder_missing(run_dir, tmp_path, capsys):
    out = tmp_path / "missing" / "agegap"
    assert user_error("agegap", [run_dir / "predictions_test.csv", "--categorical", "sex", "--continuous",
                                 "--out", out], capsys) == \
        f"error: the folder above --out {out} does not exist; create {out.parent} first"


def test_agegap_bad_margin(run_dir, capsys):
    assert user_error("agegap", [run_dir / "predictions_test.csv", "--margin", "0"], capsys) == \
        "error: --margin 0 must be a positive number of years, e.g. 5"


def test_agegap_non_numeric_predictions(run_dir, capsys):
    path = run_dir / "predictions_test.csv"
    pd.read_csv(path).assign(age_pred="n/a?").to_csv(path, index=False)
    assert user_error("agegap", [path, "--correction", "none"], capsys) == \
        f"error: column age_pred of predictions file {path} holds 800 value(s) that are not numbers, e.g. 'n/a?'"
