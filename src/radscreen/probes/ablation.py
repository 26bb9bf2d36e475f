"""Feature removal: rank embedding dimensions by the probe's input gradients, remove the top p %, retrain."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.preprocessing import StandardScaler

from radscreen.evaluation.formatting import mean_sd_text
from radscreen.manifests.splits import patient_folds
from radscreen.probes.probes import MLPProbe, Target, fold_scores, make_probe, prepared

REMOVAL_PERCENTAGES = (0, 1, 5, 10, 20, 50)
MAIN_METRICS = ("roc_auc", "r2")  # drawn in the removal plot (the table has every metric)


def _as_torch(model) -> torch.nn.Module:
    """The probe as a torch module mapping inputs to outputs (linear models: their coefficients)."""
    if isinstance(model, MLPProbe):
        return model.torch_model()
    coef = np.atleast_2d(model.coef_).astype(np.float32)
    layer = torch.nn.Linear(coef.shape[1], coef.shape[0])
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(coef))
        layer.bias.copy_(torch.from_numpy(np.atleast_1d(model.intercept_).astype(np.float32)))
    return layer


def gradient_ranking(model, x: np.ndarray) -> np.ndarray:
    """Dimensions ordered by the mean absolute gradient of the probe's output for each sample's predicted
    class (or the regression output) with respect to the input; most influential first."""
    network = _as_torch(model).eval()
    inputs = torch.from_numpy(x.astype(np.float32)).requires_grad_(True)
    outputs = network(inputs)
    chosen = outputs[:, 0] if outputs.shape[1] == 1 else outputs.gather(1, outputs.argmax(1, keepdim=True))[:, 0]
    (gradients,) = torch.autograd.grad(chosen.sum(), inputs)
    importance = gradients.abs().mean(dim=0).numpy()
    return np.argsort(-importance, kind="stable")


def removal_analysis(audited: Target, frame: pd.DataFrame, features: np.ndarray, reference: Target | None = None,
                     probe: str = "linear", percentages: Sequence[float] = REMOVAL_PERCENTAGES, k: int = 10,
                     mode: str = "drop", seed: int = 0, mlp: dict | None = None) -> pd.DataFrame:
    """Per fold and removal percentage, the scores of the audited attribute and of the reference task after
    removing the audited probe's top-ranked dimensions (ranked on the fold's training patients only): one row per
    metric of `fold_scores` (ROC-AUC and macro F1; R², MAE and RMSE for a continuous target).

    mode 'drop' deletes the columns, 'zero' sets them to their training mean (0 after standardisation).
    """
    if mode not in ("drop", "zero"):
        raise ValueError(f"mode must be 'drop' or 'zero', got '{mode}'")
    keep = audited.values(frame).notna()
    if reference is not None:
        keep &= reference.values(frame).notna()
    frame, features = frame[keep.to_numpy()].reset_index(drop=True), features[keep.to_numpy()]
    data = prepared(audited, frame, features)
    x, y = data.x, data.y
    targets = [(audited, y)]
    if reference is not None:
        targets.append((reference, prepared(reference, frame, features).y))
    dims = x.shape[1]
    rows = []
    for fold, (train, test) in enumerate(patient_folds(data.groups, data.strata, k, seed)):
        scaler = StandardScaler().fit(x[train])
        x_train, x_test = scaler.transform(x[train]), scaler.transform(x[test])
        ranking = gradient_ranking(make_probe(probe, audited, seed, mlp).fit(x_train, y[train]), x_train)
        for percent in percentages:
            removed = ranking[: math.ceil(dims * percent / 100)]
            if mode == "drop":
                kept = np.setdiff1d(np.arange(dims), removed)
                a, b = x_train[:, kept], x_test[:, kept]
            else:
                a, b = x_train.copy(), x_test.copy()
                a[:, removed], b[:, removed] = 0.0, 0.0
            for target, values in targets:
                kind = probe if target.kind == "categorical" else "linear"
                model = make_probe(kind, target, seed, mlp).fit(a, values[train])
                role = "audited" if target is audited else "reference"
                for metric, score in fold_scores(target, values[test], model, b).items():
                    rows.append({"task": target.label, "role": role, "metric": metric, "removed": percent,
                                 "fold": fold, "value": score})
    return pd.DataFrame(rows)


def removal_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per task and metric (the audited attribute first, then the reference task; F1 beside ROC-AUC), one
    column per removal percentage: mean ± SD over folds (the seed papers' table)."""
    stats = results.groupby(["task", "role", "metric", "removed"], sort=False)["value"].agg(["mean", "std"])
    cells = [mean_sd_text(m, s) for m, s in zip(stats["mean"], stats["std"])]
    table = pd.Series(cells, index=stats.index).unstack("removed")
    table.columns = [f"{c:g} %" for c in table.columns]
    return table.reset_index()


def removal_plot(results: pd.DataFrame, path: str | Path) -> Path:
    """Line plot of each task's mean score against the share of dimensions removed."""
    from radscreen.utils.figures import plt, save_figure

    fig, ax = plt.subplots(figsize=(6, 4))
    for (task, metric), part in results[results["metric"].isin(MAIN_METRICS)].groupby(["task", "metric"], sort=False):
        stats = part.groupby("removed")["value"].agg(["mean", "std"])
        ax.errorbar(stats.index, stats["mean"], yerr=stats["std"], marker="o", capsize=3, label=f"{task} ({metric})")
    ax.set(xlabel="dimensions removed (%)", ylabel="score", title="Feature removal by input-gradient rank")
    ax.legend(fontsize=8)
    return save_figure(fig, path)
