"""The multilabel task kind (CheXpert findings): uncertain-label policies, masked BCE, per-label and macro AUC equal
to scikit-learn's and torchmetrics', and a tiny training run whose predictions CSV is scored by the report code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from omegaconf import open_dict
from sklearn import metrics as skm

from radscreen.errors import UserError
from radscreen.evaluation.analysis import load_run, metrics_with_ci
from radscreen.jobs import train
from radscreen.metrics.scores import multilabel_scores
from radscreen.tasks import MultilabelTask, build_task

from hydra_helpers import compose_train, tiny_overrides

LABELS = ["edema", "effusion", "nodule"]


def test_uncertain_policies_and_missing_labels():
    frame = pd.DataFrame({"edema": [1, -1, 0, None], "effusion": ["-1", "1.0", "", 0], "nodule": [0, 2, -1, None]})
    policies = {"ignore": np.nan, "zero": 0.0, "one": 1.0}
    for policy, uncertain in policies.items():
        task = MultilabelTask(name="findings", columns=LABELS, uncertain=policy)
        expected = np.array([[1, uncertain, 0], [uncertain, 1, np.nan], [0, np.nan, uncertain],
                             [np.nan, 0, np.nan]], np.float32)
        assert np.array_equal(task.encode_frame(frame), expected, equal_nan=True), policy
    ignore = MultilabelTask(name="findings", columns=LABELS)
    assert ignore.has_label(frame).tolist() == [True, True, True, True]
    assert ignore.has_label(frame.assign(effusion=None)).tolist() == [True, False, True, False]
    assert ignore.encode_frame(frame.drop(columns="nodule")).shape == (4, 3)  # a frame lacking a column: missing
    assert np.isnan(ignore.encode_frame(frame.drop(columns="nodule"))).all()


def test_masked_bce_counts_only_labelled_pairs():
    task = MultilabelTask(name="findings", columns=LABELS)
    logits = torch.tensor([[0.3, -1.0, 2.0], [1.5, 0.2, -0.7]])
    target = torch.tensor([[1.0, float("nan"), 0.0], [float("nan"), float("nan"), 1.0]])
    mask = ~torch.isnan(target)
    expected = F.binary_cross_entropy_with_logits(logits[mask], target[mask])
    assert task.compute_loss(logits, target).item() == pytest.approx(expected.item(), abs=1e-7)
    assert task.compute_loss(logits, torch.full((2, 3), float("nan"))) is None


def test_scores_equal_sklearn_per_label_and_torchmetrics_macro():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 2, size=(200, 3)).astype(float)
    probs = np.clip(0.35 * target + rng.uniform(0, 0.65, size=(200, 3)), 0, 1)
    target[rng.uniform(size=(200, 3)) < 0.2] = np.nan  # a fifth of the labels missing
    scores = multilabel_scores(target, probs, LABELS)
    per_label = []
    for k, label in enumerate(LABELS):
        known = ~np.isnan(target[:, k])
        per_label.append(skm.roc_auc_score(target[known, k], probs[known, k]))
        assert scores[f"auroc_{label}"] == pytest.approx(per_label[-1], abs=1e-12)
    assert scores["auroc"] == pytest.approx(np.mean(per_label), abs=1e-12)
    task = MultilabelTask(name="findings", columns=LABELS)
    logged = task.metrics()
    logged.update(*task.metric_inputs(torch.tensor(probs, dtype=torch.float32), torch.tensor(target)))
    assert float(logged.compute()["auroc"]) == pytest.approx(scores["auroc"], abs=1e-5)
    one_class = target.copy()
    one_class[:, 2] = 1.0
    assert np.isnan(multilabel_scores(one_class, probs, LABELS)["auroc_nodule"])
    assert multilabel_scores(one_class, probs, LABELS)["auroc"] == pytest.approx(np.mean(per_label[:2]), abs=1e-12)


@pytest.mark.parametrize("entry, message", [
    ({"columns": ["edema"]}, "at least two `columns`"),
    ({"columns": LABELS, "uncertain": "u-ones"}, "uncertain must be one of ignore, zero, one"),
])
def test_multilabel_mistakes(entry, message):
    with pytest.raises(UserError, match=message):
        build_task({"_target_": "radscreen.tasks.MultilabelTask", "name": "findings", **entry})


@pytest.mark.slow
def test_tiny_multilabel_run_writes_scored_predictions(cohort, cache_root, tmp_path):
    manifest = pd.read_csv(cohort)
    rng = np.random.default_rng(1)
    female = (manifest["sex"] == "F").astype(float)
    manifest["edema"] = female  # learnable from the image (the cohort's sex sign)
    manifest["effusion"] = rng.choice([1.0, 0.0, -1.0, np.nan], size=len(manifest))
    manifest["nodule"] = rng.choice([1.0, 0.0], size=len(manifest))
    path = tmp_path / "findings.csv"
    manifest.to_csv(path, index=False)
    cfg = compose_train([*tiny_overrides(path, tmp_path, cache_root), f"data.image_root={cohort.parent}",
                         "trainer.max_epochs=2", "augment=none"],
                        tmp_path)
    with open_dict(cfg):
        cfg.task = {"findings": {"_target_": "radscreen.tasks.MultilabelTask", "name": "findings",
                                 "columns": LABELS, "uncertain": "ignore"}}
        cfg.monitor = None
    metrics = train(cfg)
    assert cfg.monitor == "val/findings_loss"
    assert {"test/findings_auroc", "test/findings_f1", "val/findings_loss"} <= set(metrics)
    test = pd.read_csv(tmp_path / "predictions_test.csv")
    assert {f"findings_prob_{c}" for c in LABELS} | {f"findings_target_{c}" for c in LABELS} <= set(test)
    expected = manifest.set_index("image_id").loc[test["image_id"]]
    assert np.array_equal(test["findings_target_edema"].to_numpy(), expected["edema"].to_numpy())
    uncertain = expected["effusion"].to_numpy() == -1
    assert test["findings_target_effusion"].to_numpy()[uncertain].tolist() == [] or \
        np.isnan(test["findings_target_effusion"].to_numpy()[uncertain]).all()
    run = load_run(tmp_path)
    task = run.tasks["findings"]
    table = metrics_with_ci(run.predictions["test"], task, 0.5, n_boot=20, seed=0).set_index("metric")
    known = test["findings_target_nodule"].notna()
    assert table.loc["auroc_nodule", "value"] == pytest.approx(
        skm.roc_auc_score(test.loc[known, "findings_target_nodule"], test.loc[known, "findings_prob_nodule"]))
    assert table.loc["auroc", "ci_low"] <= table.loc["auroc", "value"] <= table.loc["auroc", "ci_high"]
    assert (tmp_path / "model_card.md").read_text().count("findings") >= 2
