"""Patient-level splits keep patients whole, keep proportions, and never change the test set."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radscreen.errors import UserError
from radscreen.manifests.splits import (
    PatientLeakError,
    SplitConfig,
    apply_filters,
    assign_folds,
    balance,
    check_patient_disjoint,
    make_splits,
    split_patients,
    subsample,
)

from synthetic import synthetic_manifest as cohort

ROOT = Path(__file__).resolve().parents[1]




def test_split_is_patient_level_with_fractions_and_strata():
    df = cohort()
    split = split_patients(df, (0.7, 0.1, 0.2), stratify=["bmd_class", "sex"], seed=1)
    df = df.assign(split=split)
    check_patient_disjoint(df)
    patients = df.groupby("patient_id").first()
    shares = patients["split"].value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.7, abs=0.01)
    assert shares["val"] == pytest.approx(0.1, abs=0.01)
    assert shares["test"] == pytest.approx(0.2, abs=0.01)
    overall = patients.groupby(["bmd_class", "sex"]).size() / len(patients)
    for name, part in patients.groupby("split"):
        within = part.groupby(["bmd_class", "sex"]).size() / len(part)
        assert np.allclose(within, overall, atol=0.03), name


def test_leak_check_fails_loudly():
    df = pd.DataFrame({"patient_id": ["a", "a", "b"], "split": ["train", "test", "val"]})
    with pytest.raises(PatientLeakError, match="1 patient"):
        check_patient_disjoint(df)


def test_kfold_is_patient_level_and_stratified():
    df = cohort(600)
    folds = assign_folds(df, 5, stratify=["bmd_class"], seed=0)
    df = df.assign(fold=folds)
    check_patient_disjoint(df, "fold")
    assert sorted(df["fold"].unique()) == [0, 1, 2, 3, 4]
    counts = df.groupby("fold")["patient_id"].nunique()
    assert counts.min() >= 110 and counts.max() <= 130
    share = df.groupby("fold")["bmd_class"].apply(lambda s: (s == "osteoporosis").mean())
    assert share.max() - share.min() < 0.08


def test_balance_gives_equal_class_and_sex_cells():
    df = cohort(max_images=1)
    balanced = balance(df, ["bmd_class", "sex"], seed=0)
    cells = balanced.groupby(["bmd_class", "sex"]).size()
    assert len(cells) == 6 and cells.nunique() == 1
    assert cells.iloc[0] == df.groupby(["bmd_class", "sex"]).size().min()


def test_filters_select_subgroups():
    df = cohort(200)
    sub = apply_filters(df, {"age_years": {"min": 40}, "bmd_class": ["normal", "osteoporosis"]})
    assert (sub["age_years"] >= 40).all() and set(sub["bmd_class"]) == {"normal", "osteoporosis"}
    with pytest.raises(UserError, match="data.split.filters names 'weight', which is not a manifest column"):
        apply_filters(df, {"weight": {"min": 1}})


def test_subsample_keeps_distribution_and_exact_size():
    df = cohort(3000, max_images=1)
    small = subsample(df, 200, stratify=["sex", "bmd_class"], seed=3)
    assert len(small) == 200
    assert (small["sex"] == "F").mean() == pytest.approx((df["sex"] == "F").mean(), abs=0.02)
    assert subsample(df, 200, ["sex", "bmd_class"], seed=3).equals(small)  # seeded


def test_stress_test_never_changes_the_test_split():
    df = cohort(2000)
    full = make_splits(df, SplitConfig(stratify=("sex",), seed=0))
    stress = make_splits(df, SplitConfig(stratify=("sex",), seed=0, n_train=200, n_val=20))
    assert set(stress.loc[stress.split == "test", "image_id"]) == set(full.loc[full.split == "test", "image_id"])
    assert set(stress.loc[stress.split == "train", "patient_id"]) <= set(full.loc[full.split == "train", "patient_id"])
    assert abs((stress.split == "train").sum() - 200) <= 2  # whole patients: within one patient's images


def test_fold_becomes_validation_and_test_stays_fixed():
    df = cohort(500)
    a = make_splits(df, SplitConfig(folds=5, fold=0))
    b = make_splits(df, SplitConfig(folds=5, fold=3))
    assert set(a.loc[a.split == "val", "fold"]) == {0} and set(b.loc[b.split == "val", "fold"]) == {3}
    assert a.loc[a.split == "test", "image_id"].tolist() == b.loc[b.split == "test", "image_id"].tolist()


def test_external_rows_are_never_split():
    df = cohort(300)
    df["split"] = pd.NA
    df.loc[df["patient_id"].isin(["p1", "p2"]), "split"] = "external"
    out = make_splits(df, SplitConfig())
    assert set(out.loc[out.patient_id.isin(["p1", "p2"]), "split"]) == {"external"}


def test_split_manifest_script(tmp_path):
    src, out = tmp_path / "m.csv", tmp_path / "split.csv"
    cohort(300).to_csv(src, index=False)
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "split_manifest.py"), str(src), "--out",
                             str(out), "--folds", "5", "--stratify", "sex", "bmd_class"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    written = pd.read_csv(out)
    check_patient_disjoint(written, "split")
    check_patient_disjoint(written.dropna(subset=["fold"]), "fold")
    assert written.loc[written.split == "test", "fold"].isna().all()
