"""Figures the task kinds draw for a report (PNG, matplotlib): age scatter and histograms, ROC overall and by sex,
confusion matrix at the operating threshold, reliability diagram before / after calibration, and error against
predicted uncertainty for Gaussian NLL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve

from radscreen.metrics.scores import calibration_scores
from radscreen.tasks.base import Task
from radscreen.tasks.columns import calibrated_column, decision_column, labelled
from radscreen.utils.figures import plt, save_figure


def age_scatter(frame: pd.DataFrame, task: Task, path: Path, title: str) -> Path:
    """Predicted vs true with the identity line (thesis Fig. 3.4 / 3.6)."""
    rows = labelled(frame, task)
    true, pred = rows[f"{task.name}_target"], rows[f"{task.name}_pred"]
    fig, ax = plt.subplots(figsize=(5, 5))
    colours = rows["sex"].map({"F": "tab:red", "M": "tab:blue"}).fillna("grey") if "sex" in rows else "tab:blue"
    ax.scatter(true, pred, s=10, alpha=0.6, c=colours)
    low, high = float(min(true.min(), pred.min())), float(max(true.max(), pred.max()))
    ax.plot([low, high], [low, high], "k--", lw=1, label="identity")
    ax.set(xlabel=f"true {task.column}", ylabel=f"predicted {task.column}", title=title, aspect="equal")
    ax.legend(loc="upper left")
    return save_figure(fig, path)


def age_histograms(frame: pd.DataFrame, task: Task, path: Path, title: str) -> Path:
    rows = labelled(frame, task)
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.histogram_bin_edges(pd.concat([rows[f"{task.name}_target"], rows[f"{task.name}_pred"]]), bins=20)
    ax.hist(rows[f"{task.name}_target"], bins=bins, alpha=0.6, label="true")
    ax.hist(rows[f"{task.name}_pred"], bins=bins, alpha=0.6, label="predicted")
    ax.set(xlabel=task.column, ylabel="images", title=title)
    ax.legend()
    return save_figure(fig, path)


def error_vs_uncertainty(frame: pd.DataFrame, task: Task, path: Path, title: str) -> Path:
    """|error| against the predicted SD (Gaussian NLL): they should rise together."""
    rows = labelled(frame, task)
    sd = np.sqrt(rows[f"{task.name}_var"])
    error = (rows[f"{task.name}_pred"] - rows[f"{task.name}_target"]).abs()
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(sd, error, s=10, alpha=0.6)
    ax.set(xlabel="predicted SD", ylabel="absolute error", title=f"{title} (r = {np.corrcoef(sd, error)[0, 1]:.2f})")
    return save_figure(fig, path)


def roc(frame: pd.DataFrame, task: Task, path: Path, title: str, by: str | None = "sex") -> Path:
    """ROC curve overall and, when the column exists, per value of `by` (thesis Fig. 4.11)."""
    rows = labelled(frame, task)
    fig, ax = plt.subplots(figsize=(5, 5))
    parts = [("all", rows)]
    if by and by in rows:
        parts += [(f"{by} = {value}", part) for value, part in rows.groupby(by)]
    for label, part in parts:
        y = part[f"{task.name}_target"].astype(int)
        if y.nunique() < 2:
            continue
        fpr, tpr, _ = roc_curve(y, part[f"{task.name}_pred"])
        ax.plot(fpr, tpr, label=f"{label} (AUC {roc_auc_score(y, part[f'{task.name}_pred']):.3f}, n={len(part)})")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="1 − specificity", ylabel="sensitivity", title=title, aspect="equal")
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)


def binary_confusion(frame: pd.DataFrame, task: Task, path: Path, title: str, threshold: float = 0.5) -> Path:
    """Confusion matrix with counts (thesis Fig. 4.7) at `threshold`, applied to the calibrated probabilities
    when the frame has them."""
    rows = labelled(frame, task)
    truth = rows[f"{task.name}_target"].astype(int)
    pred = (rows[decision_column(rows, task)] >= threshold).astype(int)
    return _confusion_figure(confusion_matrix(truth, pred, labels=[0, 1]), ["negative", "positive"], path, title)


def class_confusion(frame: pd.DataFrame, task: Task, classes: list, path: Path, title: str) -> Path:
    """Confusion matrix with counts of the predicted (argmax) class against the true one."""
    rows = labelled(frame, task)
    matrix = confusion_matrix(rows[f"{task.name}_target"], rows[f"{task.name}_pred"], labels=classes)
    return _confusion_figure(matrix, classes, path, title)


def _confusion_figure(matrix: np.ndarray, labels: list, path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center",
                color="white" if count > matrix.max() / 2 else "black", fontsize=12)
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xticklabels=labels, yticklabels=labels,
           xlabel="predicted", ylabel="true", title=title)
    return save_figure(fig, path)


def calibration(frame: pd.DataFrame, task: Task, path: Path, title: str, bins: int = 10) -> Path:
    """Reliability diagram (scikit-learn's calibration_curve, quantile bins) of the raw probabilities and, when the
    frame has them, the calibrated ones; the legend gives each curve's ECE."""
    rows = labelled(frame, task)
    target = rows[f"{task.name}_target"].astype(int)
    curves = [("raw", f"{task.name}_pred", "o-")]
    if calibrated_column(task) in rows:
        curves.append(("calibrated", calibrated_column(task), "s-"))
    fig, ax = plt.subplots(figsize=(5, 5))
    for label, column, style in curves:
        observed, predicted = calibration_curve(target, rows[column], n_bins=bins, strategy="quantile")
        ece = calibration_scores(target, rows[column])["ece"]
        ax.plot(predicted, observed, style, label=f"{label} (ECE {ece:.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=1, label="perfect")
    ax.set(xlabel="predicted probability", ylabel="observed frequency", title=title, aspect="equal",
           xlim=(0, 1), ylim=(0, 1))
    ax.legend()
    return save_figure(fig, path)


def label_rocs(frame: pd.DataFrame, task: Task, labels: list[str], path: Path, title: str) -> Path:
    """One ROC curve per label of a multilabel task (images that have the label; labels with one class skipped)."""
    fig, ax = plt.subplots(figsize=(6, 6))
    for label in labels:
        known = frame[frame[f"{task.name}_target_{label}"].notna()]
        y = known[f"{task.name}_target_{label}"].astype(int)
        if y.nunique() < 2:
            continue
        prob = known[f"{task.name}_prob_{label}"]
        fpr, tpr, _ = roc_curve(y, prob)
        ax.plot(fpr, tpr, lw=1, label=f"{label} (AUC {roc_auc_score(y, prob):.3f}, n={len(known)})")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="1 − specificity", ylabel="sensitivity", title=title, aspect="equal")
    ax.legend(loc="lower right", fontsize=6)
    return save_figure(fig, path)
