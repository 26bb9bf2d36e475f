"""Several yes/no findings per image (the 14 CheXpert labels): one logit per label, BCE over the labels each
image has, per-label and macro AUC."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import MultilabelAUROC, MultilabelF1Score

from radscreen.metrics.scores import multilabel_scores
from radscreen.tasks import figures
from radscreen.tasks.base import Task, TaskConfigError

UNCERTAIN_POLICIES = {"ignore": np.nan, "zero": 0.0, "one": 1.0}  # what a -1 (uncertain) label becomes
METRIC_IGNORE = -1  # torchmetrics' ignore_index for labels an image does not have


@dataclass(frozen=True, kw_only=True)
class MultilabelTask(Task):
    """One manifest column per label holding 1 (present), 0 (absent), -1 (uncertain) or nothing (not
    mentioned). `uncertain`: ignore (left out of the loss and the scores, CheXpert's U-Ignore), zero (U-Zeros) or
    one (U-Ones). Predictions are one probability per label, `<name>_prob_<label>`; `<name>_target` lists an
    image's positive labels joined by `|` (empty when it has none, missing when it has no label at all).

    `column` is only the task's name in messages (default: "<n> label columns"); `columns` are read."""

    columns: Sequence = ()
    uncertain: str = "ignore"
    column: str = ""

    kind: ClassVar[str] = "multilabel"
    losses: ClassVar[tuple[str, ...]] = ("bce",)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(str(c) for c in self.columns or ()))
        if not self.column:
            object.__setattr__(self, "column", f"{len(self.columns)} label columns")
        super().__post_init__()
        if len(self.columns) < 2:
            raise TaskConfigError(f"task '{self.name}': a multilabel task needs at least two `columns`")
        if self.uncertain not in UNCERTAIN_POLICIES:
            raise TaskConfigError(f"task '{self.name}': uncertain must be one of {', '.join(UNCERTAIN_POLICIES)}, "
                                  f"got '{self.uncertain}'")

    @property
    def n_outputs(self) -> int:
        return len(self.columns)

    @property
    def source_columns(self) -> tuple[str, ...]:
        return tuple(self.columns)

    @property
    def ci_metrics(self) -> tuple[str, ...]:
        return ("auroc", *(f"auroc_{c}" for c in self.columns))

    @property
    def subgroup_metrics(self) -> tuple[str, ...]:
        return ("auroc",)

    def describe(self) -> str:
        return (f"`{self.name}`: flag each of {len(self.columns)} findings ({', '.join(self.columns)}); "
                f"uncertain labels: {self.uncertain}")

    # ------------------------------------------------------------------ data
    def encode(self, values: pd.DataFrame) -> np.ndarray:
        """Label columns (a frame) → (n, labels) float32: 1, 0, or NaN where missing (and uncertain, if ignored)."""
        labels = values.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float32, na_value=np.nan, copy=True)
        labels[labels == -1] = UNCERTAIN_POLICIES[self.uncertain]
        labels[~np.isin(labels, (0.0, 1.0))] = np.nan  # anything else is not a label
        return labels

    def encode_frame(self, frame: pd.DataFrame) -> np.ndarray:
        if not all(c in frame for c in self.columns):
            return self.missing_targets(len(frame))
        return self.encode(frame[list(self.columns)])

    def has_label(self, frame: pd.DataFrame) -> pd.Series:
        if not all(c in frame for c in self.columns):
            return pd.Series(False, index=frame.index)
        return pd.Series((~np.isnan(self.encode_frame(frame))).any(axis=1), index=frame.index)

    def missing_targets(self, n: int) -> np.ndarray:
        return np.full((n, len(self.columns)), np.nan, dtype=np.float32)

    # ------------------------------------------------------------------ model
    def compute_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
        """Mean BCE over the (image, label) pairs that have a label."""
        present = self.present(target)
        if not present.any():
            return None
        return F.binary_cross_entropy_with_logits(output.float()[present], target.float()[present])

    def decode(self, output: torch.Tensor, stats: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"pred": torch.sigmoid(output)}

    def metrics(self) -> MetricCollection:
        n = len(self.columns)
        return MetricCollection({
            "auroc": MultilabelAUROC(num_labels=n, average="macro", ignore_index=METRIC_IGNORE),
            "f1": MultilabelF1Score(num_labels=n, average="macro", ignore_index=METRIC_IGNORE),
        })

    def metric_inputs(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return pred, torch.nan_to_num(target, nan=METRIC_IGNORE).long()

    def cam_output(self, output: torch.Tensor) -> torch.Tensor:
        return output

    def cam_class_index(self, class_name: str | None) -> int:
        if class_name not in self.columns:
            raise TaskConfigError(f"a multilabel CAM needs cam.class_name, one of {list(self.columns)}")
        return list(self.columns).index(class_name)

    # ------------------------------------------------------------------ predictions and scores
    def prediction_columns(self, target: np.ndarray, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        probs = outputs["pred"]
        known = ~np.isnan(target)
        positives = ["|".join(c for c, v in zip(self.columns, row) if v == 1) for row in target]
        columns = {f"{self.name}_target": np.where(known.any(axis=1), np.asarray(positives, dtype=object), None)}
        for k, label in enumerate(self.columns):
            columns[f"{self.name}_target_{label}"] = target[:, k]
            columns[f"{self.name}_prob_{label}"] = probs[:, k]
        return columns

    def labelled(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Rows that have at least one label (`<name>_target` is empty, so missing once read back from a CSV, for
        an image with no positive label)."""
        targets = frame[[f"{self.name}_target_{c}" for c in self.columns]]
        return frame[targets.notna().any(axis=1)]

    def score_columns(self) -> list[str]:
        return [c for label in self.columns for c in (f"{self.name}_target_{label}", f"{self.name}_prob_{label}")]

    def score(self, rows: pd.DataFrame, threshold: float = 0.5) -> dict[str, float]:
        target = rows[[f"{self.name}_target_{c}" for c in self.columns]].to_numpy(float)
        probs = rows[[f"{self.name}_prob_{c}" for c in self.columns]].to_numpy(float)
        return multilabel_scores(target, probs, list(self.columns), threshold)

    def figures(self, frame: pd.DataFrame, stem: Path, title: str, threshold: float) -> list[Path]:
        return [figures.label_rocs(frame, self, list(self.columns), Path(f"{stem}_roc.png"), title)]

    def output_description(self, key: str) -> dict:
        return {"shape": [len(self.columns)], "unit": "probability",
                "description": f"P(finding) for each of {list(self.columns)}"}
