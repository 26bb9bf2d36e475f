"""Confidence intervals by patient-level bootstrap, and DeLong's test for two correlated AUCs."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from scipy import stats


def patient_bootstrap(frame: pd.DataFrame, statistic: Callable[[pd.DataFrame], float], n_boot: int = 1000,
                      alpha: float = 0.05, seed: int = 0, patient_column: str = "patient_id") -> tuple[float, float]:
    """Percentile CI of `statistic` resampling **patients** with replacement (all images of a drawn patient
    come along), so correlated images of one patient do not narrow the interval. NaN replicates are skipped."""
    return patient_bootstrap_many(frame, lambda sample: {"value": statistic(sample)}, n_boot, alpha, seed,
                                  patient_column).get("value", (float("nan"), float("nan")))


def patient_bootstrap_many(frame: pd.DataFrame, statistics: Callable[[pd.DataFrame], Mapping[str, float]],
                           n_boot: int = 1000, alpha: float = 0.05, seed: int = 0,
                           patient_column: str = "patient_id") -> dict[str, tuple[float, float]]:
    """`patient_bootstrap` of several statistics computed together on each resample (one `statistics` call per
    replicate): {name: (low, high)}. A replicate where a statistic is NaN is skipped for that statistic only."""
    groups = list(frame.groupby(patient_column, sort=False).indices.values())  # row positions per patient
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {}
    for _ in range(n_boot):
        drawn = rng.integers(0, len(groups), len(groups))
        sample = frame.iloc[np.concatenate([groups[i] for i in drawn])]
        for name, value in statistics(sample).items():
            values.setdefault(name, [])
            if np.isfinite(value):
                values[name].append(value)
    return {name: _percentiles(kept, alpha) for name, kept in values.items()}


def _percentiles(values: list[float], alpha: float) -> tuple[float, float]:
    """The (alpha/2, 1 − alpha/2) percentile interval of bootstrap replicates; NaN without any."""
    if not values:
        return float("nan"), float("nan")
    low, high = np.percentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


def _midrank(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = stats.rankdata(x[order])
    return ranks


def _structural_components(target: np.ndarray, score: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and DeLong's placement values V10 (per positive) and V01 (per negative), by midranks
    (Sun & Xu 2014, 'Fast implementation of DeLong's algorithm')."""
    positive, negative = score[target == 1], score[target == 0]
    m, n = len(positive), len(negative)
    all_ranks = _midrank(np.concatenate([positive, negative]))
    pos_ranks, neg_ranks = _midrank(positive), _midrank(negative)
    v10 = (all_ranks[:m] - pos_ranks) / n
    v01 = 1.0 - (all_ranks[m:] - neg_ranks) / m
    auc = float(v10.mean())
    return auc, v10, v01


def delong_test(target: np.ndarray, score_a: np.ndarray, score_b: np.ndarray) -> dict[str, float]:
    """DeLong's test that two models' AUCs on the same cases are equal: AUCs, difference, z and two-sided p."""
    target = np.asarray(target, int)
    auc_a, v10_a, v01_a = _structural_components(target, np.asarray(score_a, float))
    auc_b, v10_b, v01_b = _structural_components(target, np.asarray(score_b, float))
    s10 = np.cov(np.vstack([v10_a, v10_b]))
    s01 = np.cov(np.vstack([v01_a, v01_b]))
    m, n = len(v10_a), len(v01_a)
    covariance = s10 / m + s01 / n
    variance = covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1]
    diff = auc_a - auc_b
    z = diff / np.sqrt(variance) if variance > 0 else (0.0 if diff == 0 else np.inf)
    return {"auc_a": auc_a, "auc_b": auc_b, "difference": diff, "z": float(z),
            "p_value": float(2 * stats.norm.sf(abs(z)))}
