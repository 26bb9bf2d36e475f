"""Embedding probes on synthetic embeddings with known structure; embed.py and probe.py end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from radscreen.manifests.splits import patient_folds
from radscreen.probes.ablation import gradient_ranking, removal_analysis, removal_table
from radscreen.probes.embeddings import join_manifest, load_embeddings, save_embeddings
from radscreen.probes.probes import cross_validate, infer_target, make_probe, prepared, summarise

from hydra_helpers import TEST_SEED


def synthetic(n_patients: int = 400, dims: int = 64, seed: int = 0, redundant: bool = False):
    """Two images per patient. Age = 50 + 10·s + 5·e (best R² = 0.8) with s written into dims 0–3 only;
    sex: in dims 4–5, or (redundant) weakly in every dimension."""
    rng = np.random.default_rng(seed)
    s = np.repeat(rng.normal(size=n_patients), 2)
    sex = np.repeat(rng.integers(0, 2, n_patients), 2)
    features = rng.normal(size=(2 * n_patients, dims))
    features[:, :4] += 3.0 * s[:, None]
    if redundant:
        features += 0.45 * (2 * sex[:, None] - 1)
    else:
        features[:, 4:6] += 2.0 * (2 * sex[:, None] - 1)
    frame = pd.DataFrame({"image_id": [f"i{k}" for k in range(2 * n_patients)],
                          "patient_id": np.repeat([f"p{k}" for k in range(n_patients)], 2),
                          "age_years": 50 + 10 * s + 5 * rng.normal(size=2 * n_patients),
                          "sex": np.where(sex == 1, "F", "M"),
                          "bmd_class": np.where(s < -0.5, "osteoporosis", "normal")})
    return frame, features.astype(np.float32)


def test_linear_probe_recovers_the_encoded_attribute():
    frame, features = synthetic()
    target = infer_target(frame, "age_years")
    assert target.kind == "continuous"
    folds = cross_validate(target, frame, features, "linear", k=5, seed=TEST_SEED)
    assert 0.68 < folds["r2"].mean() < 0.84  # best possible 0.8; seeds 0-9 gave 0.746-0.761
    sex = cross_validate(infer_target(frame, "sex"), frame, features, "logistic", k=5, seed=TEST_SEED)
    assert sex["roc_auc"].mean() > 0.97


def test_mlp_probe_folds_and_weights_come_from_the_seed_alone():
    frame, features = synthetic(n_patients=120, dims=16)
    target = infer_target(frame, "sex")
    runs = []
    for seed in (TEST_SEED, TEST_SEED, TEST_SEED + 1):
        torch.manual_seed(100 + len(runs))  # whatever the global generator holds, it neither matters nor changes
        before = torch.get_rng_state()
        runs.append(cross_validate(target, frame, features, "mlp", k=3, seed=seed, mlp={"epochs": 3}))
        assert torch.equal(torch.get_rng_state(), before)
    pd.testing.assert_frame_equal(runs[0], runs[1], check_exact=True)
    assert not runs[0]["roc_auc"].equals(runs[2]["roc_auc"])


def test_folds_never_split_a_patient():
    frame, features = synthetic()
    data = prepared(infer_target(frame, "sex"), frame, features)
    groups = data.groups
    for train, test in patient_folds(groups, data.strata, k=10):
        assert not set(groups[train]) & set(groups[test])


def test_gradient_ranking_puts_informative_dimensions_first():
    frame, features = synthetic()
    for column, informative, probe in (("age_years", {0, 1, 2, 3}, "linear"), ("sex", {4, 5}, "mlp")):
        target = infer_target(frame, column)
        data = prepared(target, frame, features)
        x, y = data.x, data.y
        x = (x - x.mean(0)) / x.std(0)
        model = make_probe(probe, target, TEST_SEED, mlp={"epochs": 30}).fit(x, y)
        assert set(gradient_ranking(model, x)[: len(informative)]) == informative, column


def test_removing_top_dimensions_drops_the_audited_attribute_only():
    frame, features = synthetic()
    results = removal_analysis(infer_target(frame, "sex"), frame, features, infer_target(frame, "age_years"),
                               probe="logistic", percentages=[0, 5], k=5, seed=TEST_SEED)
    mean = results.groupby(["task", "metric", "removed"])["value"].mean()
    assert mean[("sex", "roc_auc", 0)] > 0.97 and mean[("sex", "roc_auc", 5)] < 0.65  # 4 of 64 dims hold sex
    assert mean[("sex", "f1", 0)] > 0.9 and mean[("sex", "f1", 5)] < 0.65
    assert mean[("age_years", "r2", 5)] == pytest.approx(mean[("age_years", "r2", 0)], abs=0.03)  # untouched
    table = removal_table(results)
    assert list(table.columns) == ["task", "role", "metric", "0 %", "5 %"]
    assert table[["task", "role", "metric"]].values.tolist() == [
        ["sex", "audited", "roc_auc"], ["sex", "audited", "f1"], ["age_years", "reference", "rmse"],
        ["age_years", "reference", "mae"], ["age_years", "reference", "r2"]]
    f1 = results[(results["metric"] == "f1") & (results["removed"] == 5)]["value"]
    assert table.loc[1, "5 %"] == f"{f1.mean():.3f} ± {f1.std(ddof=1):.3f}"  # mean ± SD over the 5 folds


def test_fold_summaries_show_the_mean_alone_when_one_fold_scored_and_never_nan():
    folds = pd.DataFrame({"target": "sex", "probe": "linear", "fold": [0, 1, 2],
                          "roc_auc": [0.8, np.nan, np.nan], "f1": [0.5, 0.7, np.nan], "r2": np.nan})
    summary = summarise(folds).iloc[0]
    assert summary["roc_auc"] == "0.800" and summary["r2"] == "–"
    assert summary["f1"] == f"0.600 ± {np.std([0.5, 0.7], ddof=1):.3f}"
    results = pd.DataFrame({"task": "sex", "role": "audited", "metric": "roc_auc", "removed": [0, 0, 5, 5],
                            "fold": [0, 1, 0, 1],
                            "value": [0.9, 0.7, 0.6, np.nan]})
    table = removal_table(results).iloc[0]
    assert table["0 %"] == f"0.800 ± {np.std([0.9, 0.7], ddof=1):.3f}" and table["5 %"] == "0.600"


def test_redundant_encoding_survives_removal():
    frame, features = synthetic(redundant=True)
    results = removal_analysis(infer_target(frame, "sex"), frame, features, probe="logistic",
                               percentages=[0, 50], k=5, mode="zero", seed=TEST_SEED)
    mean = results[results["metric"] == "roc_auc"].groupby("removed")["value"].mean()
    assert mean[0] > 0.95 and mean[0] - mean[50] < 0.05  # the seed papers' finding


def test_embeddings_files_round_trip_and_join(tmp_path):
    frame, features = synthetic(n_patients=20)
    for name in ("e.parquet", "e.npy"):
        path = save_embeddings(tmp_path / name, frame["image_id"].tolist(), features)
        ids, loaded = load_embeddings(path)
        assert list(ids) == frame["image_id"].tolist() and np.array_equal(loaded, features)
    shuffled = frame.sample(frac=1, random_state=0)
    rows, matched = join_manifest(ids[::-1], loaded[::-1], shuffled.iloc[:30])
    for i, image_id in enumerate(rows["image_id"]):
        assert np.array_equal(matched[i], features[int(image_id[1:])])


def test_probe_command_reference_task_in_both_tables(tmp_path):
    """probe.py's tables: F1 beside ROC-AUC, the reference task probed and re-evaluated after each removal."""
    from radscreen.probes.commands import probe_command

    from hydra_helpers import compose_config

    frame, features = synthetic(n_patients=150, dims=32)
    frame["path"] = frame["image_id"] + ".png"
    frame.to_csv(tmp_path / "manifest.csv", index=False)
    save_embeddings(tmp_path / "emb.parquet", frame["image_id"].tolist(), features)
    cfg = compose_config("probe", [f"embeddings={tmp_path / 'emb.parquet'}", f"manifest={tmp_path / 'manifest.csv'}",
                                   "targets=[sex]", "reference=bmd_class", "probes=[linear]", "folds=3",
                                   "removal.audited=sex", f"hydra.run.dir={tmp_path}/run"], tmp_path / "out")
    assert list(cfg.removal.percentages) == [0, 1, 5, 10, 20, 50]
    results = probe_command(cfg)
    summary = results["summary"]
    assert summary["target"].tolist() == ["sex", "bmd_class"] and {"roc_auc", "f1"} <= set(summary.columns)
    assert all(" ± " in cell for cell in summary["f1"])
    removal = results["removal"]
    assert removal[["task", "role", "metric"]].values.tolist() == [
        ["sex", "audited", "roc_auc"], ["sex", "audited", "f1"],
        ["bmd_class", "reference", "roc_auc"], ["bmd_class", "reference", "f1"]]
    assert list(removal.columns[3:]) == ["0 %", "1 %", "5 %", "10 %", "20 %", "50 %"]
    assert (tmp_path / "out" / "removal.md").read_text().count("±") == 24
