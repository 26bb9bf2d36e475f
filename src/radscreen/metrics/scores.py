"""Metrics recomputed from predictions (NumPy / scikit-learn), thresholds chosen on validation.

These agree with the torchmetrics values logged during training (tests check it) and add what a paper
needs: error mean and SD, NPV, confusion counts, thresholds from the validation split.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats
from sklearn import metrics as skm
from torchmetrics.functional.classification import binary_calibration_error

from radscreen.errors import UserError

THRESHOLD_METHODS = ("youden", "sensitivity", "fixed")
FIXED_DEFAULT = 0.5  # what the spelling `fixed` means (conf/eval.yaml documents it as "fixed (0.5)")
ECE_BINS = 15  # equal-width bins of the expected calibration error (torchmetrics' default)


def regression_scores(target: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, R², share within ±4 / ±9 units (thesis Table 3.1), mean and SD of the error, Pearson r."""
    target, pred = np.asarray(target, float), np.asarray(pred, float)
    error = pred - target
    varies = len(target) > 2 and np.ptp(target) > 0 and np.ptp(pred) > 0  # Pearson r is undefined otherwise
    return {
        "n": len(target),
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "r2": float(skm.r2_score(target, pred)) if len(target) > 1 else float("nan"),
        "within4": float(np.mean(np.abs(error) <= 4)),
        "within9": float(np.mean(np.abs(error) <= 9)),
        "mean_error": float(np.mean(error)),
        "sd_error": float(np.std(error, ddof=1)) if len(target) > 1 else float("nan"),
        "pearson": float(stats.pearsonr(target, pred)[0]) if varies else float("nan"),
    }


def parse_threshold(value: str | float) -> str | float:
    """A threshold as a user writes it: `youden`, `sensitivity`, a probability such as `0.35` (applied
    unchanged) or `fixed` (the same as 0.5). UserError for anything else."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif str(value).strip().lower() in THRESHOLD_METHODS:
        method = str(value).strip().lower()
        return FIXED_DEFAULT if method == "fixed" else method
    else:
        try:
            number = float(str(value))
        except ValueError:
            raise UserError(f"threshold '{value}' is neither youden, sensitivity, fixed nor a number such as 0.35")\
                from None
    if not 0.0 <= number <= 1.0 or not np.isfinite(number):
        raise UserError(f"threshold {value} is not a probability; give a number between 0 and 1, e.g. 0.35")
    return number


def choose_threshold(target: np.ndarray, prob: np.ndarray, method: str | float = "youden",
                     sensitivity: float = 0.9, fixed: float = FIXED_DEFAULT) -> float:
    """Operating threshold from (validation) data: Youden's J maximum, the highest threshold reaching a
    target sensitivity, or a fixed value (`fixed`, or the number itself). Predictions >= threshold are positive."""
    if isinstance(method, (int, float)) and not isinstance(method, bool):
        return float(method)
    if method not in THRESHOLD_METHODS:
        raise ValueError(f"threshold method must be one of {THRESHOLD_METHODS} or a number, got '{method}'")
    if method == "fixed":
        return float(fixed)
    target = np.asarray(target, int)
    if len(np.unique(target)) < 2:
        raise ValueError("a threshold needs both classes in the validation split")
    fpr, tpr, thresholds = skm.roc_curve(target, prob, drop_intermediate=False)
    thresholds = np.minimum(thresholds, 1.0)  # sklearn's first threshold is +inf
    if method == "youden":
        return float(thresholds[np.argmax(tpr - fpr)])
    reaching = np.flatnonzero(tpr >= sensitivity)
    return float(thresholds[reaching[0]])


def binary_scores(target: np.ndarray, prob: np.ndarray, threshold: float = 0.5,
                  ranking: np.ndarray | None = None) -> dict[str, float]:
    """AUC, accuracy, sensitivity, specificity, PPV, NPV, F1 and confusion counts at `threshold` (predictions
    `prob >= threshold` are positive). The AUC ranks `ranking` when given (the model's raw probabilities when `prob`
    holds calibrated ones: a calibration map that is not strictly increasing, isotonic's, would tie images)."""
    target = np.asarray(target, int)
    prob = np.asarray(prob, float)
    ranked = prob if ranking is None else np.asarray(ranking, float)
    pred = (prob >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(target, pred, labels=[0, 1]).ravel()
    ratio = lambda a, b: float(a / b) if b else float("nan")  # noqa: E731
    return {
        "n": len(target),
        "auroc": float(skm.roc_auc_score(target, ranked)) if len(np.unique(target)) == 2 else float("nan"),
        "threshold": float(threshold),
        "accuracy": ratio(tp + tn, len(target)),
        "sensitivity": ratio(tp, tp + fn),
        "specificity": ratio(tn, tn + fp),
        "ppv": ratio(tp, tp + fp),
        "npv": ratio(tn, tn + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn),
    }


def calibration_scores(target: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    """Expected calibration error (torchmetrics, ECE_BINS equal-width bins, L1) and Brier score (scikit-learn) of
    probabilities in [0, 1] against 0/1 targets; NaN for no rows."""
    target = np.asarray(target, int)
    prob = np.asarray(prob, float)
    if not len(target):
        return {"ece": float("nan"), "brier": float("nan")}
    ece = binary_calibration_error(torch.tensor(prob), torch.tensor(target), n_bins=ECE_BINS, norm="l1")
    return {"ece": float(ece), "brier": float(skm.brier_score_loss(target, prob, pos_label=1))}


def multiclass_scores(target: np.ndarray, probs: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Macro one-vs-rest AUC, accuracy and macro F1 of class probabilities (n, k); target holds class names."""
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[t] for t in target])
    pred = probs.argmax(axis=1)
    present = np.unique(y)
    auc = float(skm.roc_auc_score(y, probs, multi_class="ovr", average="macro", labels=list(range(len(classes))))) \
        if len(present) == len(classes) else float("nan")
    return {"n": len(y), "auroc": auc, "accuracy": float(np.mean(pred == y)),
            "f1": float(skm.f1_score(y, pred, average="macro", labels=list(range(len(classes)))))}


def uncertainty_scores(target: np.ndarray, pred: np.ndarray, var: np.ndarray) -> dict[str, float]:
    """Gaussian-NLL heads: mean predicted SD and the Pearson correlation of |error| with the predicted SD."""
    sd = np.sqrt(np.asarray(var, float))
    error = np.abs(np.asarray(pred, float) - np.asarray(target, float))
    corr = float(stats.pearsonr(sd, error)[0]) if len(sd) > 2 and sd.std() > 0 and error.std() > 0 else float("nan")
    return {"mean_sd": float(sd.mean()), "sd_error_corr": corr}


def multilabel_scores(target: np.ndarray, probs: np.ndarray, labels: list[str],
                      threshold: float = 0.5) -> dict[str, float]:
    """Per-label AUC (`auroc_<label>`, over the images that have that label; NaN when it has one class), their
    macro mean (`auroc`, over the labels that have an AUC), and macro F1 at `threshold`. target (n, k) holds
    1 / 0 / NaN (no label), probs (n, k) the predicted probabilities."""
    target, probs = np.asarray(target, float), np.asarray(probs, float)
    scores: dict[str, float] = {"n": int((~np.isnan(target)).any(axis=1).sum())}
    aucs, f1s = [], []
    for k, label in enumerate(labels):
        known = ~np.isnan(target[:, k])
        y, p = target[known, k].astype(int), probs[known, k]
        auc = float(skm.roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")
        scores[f"auroc_{label}"] = auc
        if not np.isnan(auc):
            aucs.append(auc)
        if len(y):
            f1s.append(float(skm.f1_score(y, (p >= threshold).astype(int), zero_division=0.0)))
    scores["auroc"] = float(np.mean(aucs)) if aucs else float("nan")
    scores["f1"] = float(np.mean(f1s)) if f1s else float("nan")
    return scores
