"""Probes of attributes from embeddings under stratified k-fold cross-validation with patient isolation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from sklearn import metrics as skm
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.preprocessing import LabelEncoder, StandardScaler

from radscreen.errors import UserError
from radscreen.evaluation.formatting import mean_sd_text
from radscreen.manifests.splits import patient_folds

PROBES = ("linear", "logistic", "mlp")


@dataclass(frozen=True)
class Target:
    """An attribute to audit: a manifest column, continuous or categorical, optionally binned."""

    column: str
    kind: str  # continuous | categorical
    bins: tuple[float, ...] | None = None  # continuous → categorical (e.g. age groups)

    def values(self, frame: pd.DataFrame) -> pd.Series:
        series = frame[self.column]
        if self.bins:
            return pd.cut(pd.to_numeric(series, errors="coerce"), list(self.bins), right=False).astype("string")
        return pd.to_numeric(series, errors="coerce") if self.kind == "continuous" else series.astype("string")

    @property
    def label(self) -> str:
        return f"{self.column} (binned)" if self.bins else self.column


def infer_target(frame: pd.DataFrame, column: str, bins: Sequence[float] | None = None) -> Target:
    """Continuous when numeric with more than 10 distinct values, else categorical; bins make it categorical."""
    if column not in frame:
        raise UserError(f"probe target {column} is not a manifest column")
    if bins:
        return Target(column, "categorical", tuple(bins))
    numeric = pd.to_numeric(frame[column], errors="coerce")
    continuous = numeric.notna().mean() > 0.95 and numeric.nunique() > 10
    return Target(column, "continuous" if continuous else "categorical")


def strata_of(target: Target, y: pd.Series, n_bins: int = 5) -> np.ndarray:
    """Labels to stratify folds by: the class, or quantile bins of a continuous target."""
    if target.kind == "continuous" and not target.bins:
        return pd.qcut(y, n_bins, labels=False, duplicates="drop").to_numpy()
    return y.to_numpy()


class MLPProbe:
    """A small torch MLP classifier (width × depth, ReLU, dropout), trained with Adam on standardised inputs."""

    def __init__(self, width: int = 256, depth: int = 1, epochs: int = 20, lr: float = 1e-3, batch_size: int = 512,
                 dropout: float = 0.1, weight_decay: float = 1e-4, seed: int = 0) -> None:
        self.width, self.depth, self.epochs, self.lr = width, depth, epochs, lr
        self.batch_size, self.dropout, self.weight_decay, self.seed = batch_size, dropout, weight_decay, seed
        self.model: torch.nn.Module | None = None

    def fit(self, x: np.ndarray, y: np.ndarray) -> MLPProbe:
        """Train on (n, d) features and (n,) class indices; initialisation, batches and dropout come from the seed
        alone, and the caller's global torch generator is left as it was."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return self._fit(x, y, torch.Generator().manual_seed(self.seed))

    def _fit(self, x: np.ndarray, y: np.ndarray, generator: torch.Generator) -> MLPProbe:
        layers, width = [], x.shape[1]
        for _ in range(self.depth):
            layers += [torch.nn.Linear(width, self.width), torch.nn.ReLU(), torch.nn.Dropout(self.dropout)]
            width = self.width
        self.n_classes = int(y.max()) + 1
        self.model = torch.nn.Sequential(*layers, torch.nn.Linear(width, self.n_classes))
        optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        inputs, targets = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))
        self.model.train()
        for _ in range(self.epochs):
            for index in torch.randperm(len(inputs), generator=generator).split(self.batch_size):
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(self.model(inputs[index]), targets[index]).backward()
                optimizer.step()
        self.model.eval()
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(self.model(torch.from_numpy(x.astype(np.float32))), dim=1).numpy()

    def torch_model(self) -> torch.nn.Module:
        return self.model


def make_probe(kind: str, target: Target, seed: int = 0, mlp: dict | None = None):
    """A fresh scikit-learn or torch probe of the right family for the target."""
    if kind not in PROBES:
        raise UserError(f"probe must be one of {PROBES}, got '{kind}'")
    if target.kind == "continuous":
        if kind != "linear":
            raise UserError(f"continuous target {target.column}: use the linear probe (or bin it)")
        return LinearRegression()
    if kind == "linear":
        kind = "logistic"
    if kind == "logistic":
        return LogisticRegression(max_iter=1000, C=1.0, random_state=seed)  # multinomial (softmax) for k > 2
    return MLPProbe(seed=seed, **(mlp or {}))


def fold_scores(target: Target, y_true: np.ndarray, model, x_test: np.ndarray) -> dict[str, float]:
    """RMSE / MAE / R² for continuous targets; ROC-AUC (one-vs-rest macro) and macro F1 for categorical ones."""
    if target.kind == "continuous":
        pred = model.predict(x_test)
        return {"rmse": float(np.sqrt(skm.mean_squared_error(y_true, pred))),
                "mae": float(skm.mean_absolute_error(y_true, pred)), "r2": float(skm.r2_score(y_true, pred))}
    probs = model.predict_proba(x_test)
    n_classes = probs.shape[1]
    if n_classes == 2:
        auc = skm.roc_auc_score(y_true, probs[:, 1]) if len(np.unique(y_true)) == 2 else np.nan
    else:
        present = np.unique(y_true)
        auc = skm.roc_auc_score(y_true, probs[:, present] / probs[:, present].sum(1, keepdims=True),
                                multi_class="ovr", labels=present) if len(present) > 2 else np.nan
    return {"roc_auc": float(auc), "f1": float(skm.f1_score(y_true, probs.argmax(1), average="macro"))}


class ProbeData(NamedTuple):
    """What a probe is fitted and scored on, one entry per frame row that holds a value of the target."""

    x: np.ndarray  # features
    y: np.ndarray  # the target; class codes (0..n-1) for a categorical one
    groups: np.ndarray  # patient_id (folds never split one)
    strata: np.ndarray  # labels to stratify folds by (strata_of)


def prepared(target: Target, frame: pd.DataFrame, features: np.ndarray) -> ProbeData:
    """A target's probe data: the rows with a value only, the target encoded."""
    values = target.values(frame)
    keep = values.notna().to_numpy()
    y = values[keep]
    if target.kind == "categorical":
        y = pd.Series(LabelEncoder().fit_transform(y.astype(str)), index=y.index)
    return ProbeData(x=features[keep], y=y.to_numpy(),
                     groups=frame.loc[keep, "patient_id"].astype(str).to_numpy(), strata=strata_of(target, y))


def cross_validate(target: Target, frame: pd.DataFrame, features: np.ndarray, probe: str = "linear", k: int = 10,
                   seed: int = 0, mlp: dict | None = None) -> pd.DataFrame:
    """One row per fold with the probe's scores on the held-out patients (features standardised on train)."""
    data = prepared(target, frame, features)
    x, y = data.x, data.y
    rows = []
    for fold, (train, test) in enumerate(patient_folds(data.groups, data.strata, k, seed)):
        scaler = StandardScaler().fit(x[train])
        model = make_probe(probe, target, seed, mlp).fit(scaler.transform(x[train]), y[train])
        rows.append({"target": target.label, "probe": probe, "fold": fold,
                     **fold_scores(target, y[test], model, scaler.transform(x[test]))})
    return pd.DataFrame(rows)


def summarise(folds: pd.DataFrame) -> pd.DataFrame:
    """Mean ± SD over folds per target and probe."""
    metrics = [c for c in folds.columns if c not in ("target", "probe", "fold", "removed")]
    keys = [c for c in ("target", "probe", "removed") if c in folds]
    grouped = folds.groupby(keys, sort=False)[metrics]
    mean, sd = grouped.mean(), grouped.std(ddof=1)
    out = mean.copy().astype(object)
    for metric in metrics:
        out[metric] = [mean_sd_text(m, s) for m, s in zip(mean[metric], sd[metric])]
    return out.reset_index()
