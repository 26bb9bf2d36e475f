"""A yes/no target (sex, osteoporosis): one logit, binary cross-entropy, an operating threshold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import AUROC, Accuracy, F1Score, Precision, Recall, Specificity

from radscreen.metrics.scores import binary_scores, calibration_scores
from radscreen.tasks import figures
from radscreen.tasks.base import Task, TaskConfigError
from radscreen.tasks.columns import calibrated_column, decision_column
from radscreen.tasks.values import matches


@dataclass(frozen=True, kw_only=True)
class BinaryTask(Task):
    """1 for values in `positive`, 0 for values in `negative` (default: every other non-missing value), NaN
    otherwise. Predictions are P(positive); thresholded metrics apply an operating threshold chosen on validation,
    to the calibrated probabilities when the run has them.

    Classifiers are chosen on their validation loss (cross-entropy, a proper scoring rule): AUROC on a small
    validation split ties or differs by 1e-7 between epochs and picked degenerate, badly calibrated checkpoints
    (docs/benchmarks.md)."""

    positive: Sequence = ()
    negative: Sequence = ()

    kind: ClassVar[str] = "binary"
    losses: ClassVar[tuple[str, ...]] = ("bce",)
    thresholded: ClassVar[bool] = True
    ci_metrics: ClassVar[tuple[str, ...]] = ("auroc", "sensitivity", "specificity", "ppv", "npv", "f1", "accuracy",
                                             "ece", "brier", "ece_calibrated", "brier_calibrated")
    subgroup_metrics: ClassVar[tuple[str, ...]] = ("auroc", "sensitivity", "specificity", "ppv", "npv")

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "positive", tuple(self.positive or ()))
        object.__setattr__(self, "negative", tuple(self.negative or ()))
        if not self.positive:
            raise TaskConfigError(f"task '{self.name}': a binary task needs `positive` values")

    @property
    def n_outputs(self) -> int:
        return 1

    def describe(self) -> str:
        negative = ", ".join(map(str, self.negative)) if self.negative else "every other value"
        return (f"`{self.name}`: flag images whose `{self.column}` is {', '.join(map(str, self.positive))} "
                f"(vs {negative}) for confirmatory testing, at the operating threshold below")

    # ------------------------------------------------------------------ data
    def encode(self, values: pd.Series) -> np.ndarray:
        is_pos = matches(values, self.positive)
        is_neg = matches(values, self.negative) if self.negative else values.notna()
        out = np.full(len(values), np.nan, dtype=np.float32)
        out[is_neg.to_numpy(dtype=bool)] = 0.0
        out[is_pos.to_numpy(dtype=bool)] = 1.0
        return out

    # ------------------------------------------------------------------ model
    def compute_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
        present = self.present(target)
        if not present.any():
            return None
        return F.binary_cross_entropy_with_logits(output[present].float()[:, 0], target[present].float())

    def decode(self, output: torch.Tensor, stats: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"pred": torch.sigmoid(output[:, 0])}

    def metrics(self) -> MetricCollection:
        return MetricCollection({
            "auroc": AUROC(task="binary"), "accuracy": Accuracy(task="binary"),
            "sensitivity": Recall(task="binary"), "specificity": Specificity(task="binary"),
            "ppv": Precision(task="binary"), "f1": F1Score(task="binary"),
        })

    # ------------------------------------------------------------------ predictions and scores
    def score(self, rows: pd.DataFrame, threshold: float = 0.5) -> dict[str, float]:
        """`threshold` applies to the calibrated probabilities when the rows hold them, the AUC ranks the raw ones,
        and ECE / Brier are given for both (`ece`, `brier`; `ece_calibrated`, `brier_calibrated`)."""
        target, raw = rows[f"{self.name}_target"].astype(int), rows[f"{self.name}_pred"]
        scores = binary_scores(target, rows[decision_column(rows, self)], threshold, ranking=raw)
        scores.update(calibration_scores(target, raw))
        if calibrated_column(self) in rows:
            scores.update({f"{k}_calibrated": v for k, v in
                           calibration_scores(target, rows[calibrated_column(self)]).items()})
        return scores

    def figures(self, frame: pd.DataFrame, stem: Path, title: str, threshold: float) -> list[Path]:
        return [figures.roc(frame, self, Path(f"{stem}_roc.png"), title),
                figures.binary_confusion(frame, self, Path(f"{stem}_confusion.png"),
                                         f"{title} (threshold {threshold:.3f})", threshold),
                figures.calibration(frame, self, Path(f"{stem}_calibration.png"), title)]

    def output_description(self, key: str) -> dict:
        return {"shape": [], "unit": "probability", "description": f"P({self.column} in {list(self.positive)})"}
