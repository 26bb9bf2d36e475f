"""Metrics against scikit-learn / SciPy / torchmetrics, thresholds, patient bootstrap and DeLong."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from sklearn import metrics as skm

from radscreen.evaluation.uncertainty import delong_test, patient_bootstrap, patient_bootstrap_many
from radscreen.metrics.scores import binary_scores, choose_threshold, multiclass_scores, regression_scores
from radscreen.tasks import BinaryTask, RegressionTask

RNG = np.random.default_rng(0)
AGE_TRUE = RNG.uniform(20, 90, 300)
AGE_PRED = AGE_TRUE + RNG.normal(1.0, 6.0, 300)
Y = (RNG.random(400) < 0.3).astype(int)
P = np.clip(0.3 * Y + RNG.normal(0.35, 0.2, 400), 0, 1)


def test_regression_scores_equal_sklearn_scipy_and_torchmetrics():
    s = regression_scores(AGE_TRUE, AGE_PRED)
    assert s["mae"] == pytest.approx(skm.mean_absolute_error(AGE_TRUE, AGE_PRED), abs=1e-9)
    assert s["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(AGE_TRUE, AGE_PRED)), abs=1e-9)
    assert s["r2"] == pytest.approx(skm.r2_score(AGE_TRUE, AGE_PRED), abs=1e-9)
    assert s["pearson"] == pytest.approx(stats.pearsonr(AGE_TRUE, AGE_PRED)[0], abs=1e-9)
    assert s["within4"] == np.mean(np.abs(AGE_PRED - AGE_TRUE) <= 4)
    assert s["sd_error"] == pytest.approx(np.std(AGE_PRED - AGE_TRUE, ddof=1), abs=1e-9)
    assert s["mean_error"] == pytest.approx(np.mean(AGE_PRED - AGE_TRUE), abs=1e-12)
    assert s["n"] == 300 and isinstance(s["n"], int)
    assert np.isnan(regression_scores([40, 50, 60], [55, 55, 55])["pearson"])  # constant prediction: no r, no warning
    logged = RegressionTask(name="age", column="age_years").metrics()
    logged.update(torch.tensor(AGE_PRED, dtype=torch.float64), torch.tensor(AGE_TRUE, dtype=torch.float64))
    for key, value in logged.compute().items():
        assert s[key] == pytest.approx(float(value), rel=1e-6), key


def test_binary_scores_equal_sklearn_and_torchmetrics_at_half():
    s = binary_scores(Y, P, 0.5)
    pred = (P >= 0.5).astype(int)
    assert s["auroc"] == pytest.approx(skm.roc_auc_score(Y, P), abs=1e-12)
    assert s["sensitivity"] == pytest.approx(skm.recall_score(Y, pred), abs=1e-12)
    assert s["specificity"] == pytest.approx(skm.recall_score(1 - Y, 1 - pred), abs=1e-12)
    assert s["ppv"] == pytest.approx(skm.precision_score(Y, pred), abs=1e-12)
    assert s["npv"] == pytest.approx(skm.precision_score(1 - Y, 1 - pred), abs=1e-12)
    assert s["f1"] == pytest.approx(skm.f1_score(Y, pred), abs=1e-12)
    assert s["tp"] + s["fn"] == Y.sum()
    assert (s["tp"], s["fp"], s["tn"], s["fn"]) == (np.sum((Y == 1) & (pred == 1)), np.sum((Y == 0) & (pred == 1)),
                                                    np.sum((Y == 0) & (pred == 0)), np.sum((Y == 1) & (pred == 0)))
    assert all(isinstance(s[k], int) for k in ("n", "tp", "fp", "tn", "fn"))
    logged = BinaryTask(name="osteo", column="bmd_class", positive=["osteoporosis"]).metrics()
    logged.update(torch.tensor(P, dtype=torch.float32), torch.tensor(Y))
    for key, value in logged.compute().items():
        assert s[key] == pytest.approx(float(value), abs=1e-6), key


def test_multiclass_scores_equal_sklearn():
    classes = ["normal", "osteopenia", "osteoporosis"]
    y = RNG.integers(0, 3, 200)
    probs = RNG.dirichlet([1, 1, 1], 200) + np.eye(3)[y] * 0.3
    probs /= probs.sum(1, keepdims=True)
    s = multiclass_scores(np.array(classes)[y], probs, classes)
    assert s["auroc"] == pytest.approx(skm.roc_auc_score(y, probs, multi_class="ovr"), abs=1e-12)
    assert s["f1"] == pytest.approx(skm.f1_score(y, probs.argmax(1), average="macro"), abs=1e-12)


def test_threshold_chosen_on_validation_is_the_one_applied_to_test():
    val_y, val_p = Y[:200], P[:200]
    threshold = choose_threshold(val_y, val_p, "youden")
    fpr, tpr, thr = skm.roc_curve(val_y, val_p)
    assert threshold == pytest.approx(min(thr[np.argmax(tpr - fpr)], 1.0))
    test = binary_scores(Y[200:], P[200:], threshold)
    assert test["threshold"] == threshold
    assert test["sensitivity"] == pytest.approx(np.mean(P[200:][Y[200:] == 1] >= threshold))
    target = choose_threshold(val_y, val_p, "sensitivity", sensitivity=0.9)
    assert np.mean(val_p[val_y == 1] >= target) >= 0.9
    assert np.mean(val_p[val_y == 1] >= np.nextafter(target, 2)) < 0.9  # the highest such threshold


def test_patient_bootstrap_covers_shrinks_and_resamples_patients():
    def frame(n, copies=1, seed=0):
        rng = np.random.default_rng(seed)
        err = rng.normal(0, 5, n)
        return pd.DataFrame({"patient_id": np.repeat(np.arange(n), copies), "error": np.repeat(np.abs(err), copies)})

    mae = lambda f: f["error"].mean()  # noqa: E731
    small, large = frame(50), frame(800)
    lo_s, hi_s = patient_bootstrap(small, mae, n_boot=500)
    lo_l, hi_l = patient_bootstrap(large, mae, n_boot=500)
    assert lo_s <= mae(small) <= hi_s and lo_l <= mae(large) <= hi_l
    assert hi_l - lo_l < 0.5 * (hi_s - lo_s)
    # ten identical images per patient carry no more information than one: same interval as one image each
    assert patient_bootstrap(frame(50, copies=10), mae, n_boot=500) == pytest.approx((lo_s, hi_s))
    # several statistics from the same resamples: each interval equals its own patient_bootstrap
    both = patient_bootstrap_many(small, lambda f: {"mae": mae(f), "max": f["error"].max()}, n_boot=500)
    assert both["mae"] == (lo_s, hi_s)
    assert both["max"] == patient_bootstrap(small, lambda f: f["error"].max(), n_boot=500)


def naive_delong(y, a, b):
    """DeLong (1988) from its definition: Mann–Whitney kernels, O(m·n)."""
    def components(score):
        pos, neg = score[y == 1], score[y == 0]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        return psi.mean(), psi.mean(axis=1), psi.mean(axis=0)
    auc_a, v10a, v01a = components(a)
    auc_b, v10b, v01b = components(b)
    m, n = len(v10a), len(v01a)
    s10, s01 = np.cov([v10a, v10b]), np.cov([v01a, v01b])
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    z = (auc_a - auc_b) / np.sqrt(var)
    return auc_a, auc_b, 2 * stats.norm.sf(abs(z))


def test_delong_equals_the_definition_and_sklearn_auc():
    a = P
    b = np.round(np.clip(P + RNG.normal(0, 0.15, len(P)), 0, 1), 2)  # ties included
    result = delong_test(Y, a, b)
    auc_a, auc_b, p = naive_delong(Y, a, b)
    assert result["auc_a"] == pytest.approx(skm.roc_auc_score(Y, a), abs=1e-12) == pytest.approx(auc_a)
    assert result["auc_b"] == pytest.approx(auc_b, abs=1e-12)
    assert result["p_value"] == pytest.approx(p, rel=1e-9)
    assert delong_test(Y, a, a)["p_value"] == 1.0


def test_r2_of_a_single_sample_is_nan_not_an_error():
    import torch
    from sklearn.metrics import r2_score

    from radscreen.metrics.running import R2OrNaN

    one = R2OrNaN()
    one.update(torch.tensor([50.0]), torch.tensor([60.0]))
    assert torch.isnan(one.compute())
    many = R2OrNaN()
    many.update(torch.tensor([1.0, 2.0, 3.5]), torch.tensor([1.0, 2.5, 3.0]))
    assert float(many.compute()) == pytest.approx(r2_score([1.0, 2.5, 3.0], [1.0, 2.0, 3.5]), rel=1e-6)


def test_weighted_mean_keeps_the_weights_and_a_nan():
    import torch

    from radscreen.metrics.running import WeightedMean

    mean = WeightedMean()
    mean.update(torch.tensor([1.0, 4.0]), torch.tensor([3.0, 1.0]))
    mean.update(torch.tensor([2.0]), torch.tensor([4.0]))
    assert float(mean.compute()) == pytest.approx((3 + 4 + 8) / 8)
    mean.update(torch.tensor([float("nan")]), torch.tensor([2.0]))
    assert torch.isnan(mean.compute())  # a diverged loss shows, as Lightning's mean of the step values showed it
