"""Per-task metric collections (torchmetrics), logged as {stage}/{task}_{metric}."""

from __future__ import annotations

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import AUROC, Accuracy, F1Score, Precision, Recall, Specificity
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, PearsonCorrCoef, R2Score

from radscreen.tasks import Task

# what the checkpoint/early-stopping callbacks watch by default, per task kind: (metric, mode). Classifiers are
# chosen on their validation loss (cross-entropy, a proper scoring rule): AUROC on a small validation split ties
# or differs by 1e-7 between epochs and picked degenerate, badly calibrated checkpoints (docs/benchmarks.md).
DEFAULT_MONITOR = {"regression": ("mae", "min"), "binary": ("loss", "min"), "multiclass": ("loss", "min")}


class WithinTolerance(Metric):
    """Share of predictions within ±tolerance of the target (the thesis's ±4 / ±9 years)."""

    higher_is_better = True
    full_state_update = False

    def __init__(self, tolerance: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.tolerance = tolerance
        self.add_state("hits", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        self.hits += ((preds - target).abs() <= self.tolerance).sum()
        self.total += target.numel()

    def compute(self) -> torch.Tensor:
        return self.hits / self.total.clamp(min=1)


class R2OrNaN(R2Score):
    """torchmetrics' R², NaN instead of an error when fewer than two samples were seen (a tiny validation fold)."""

    def compute(self) -> torch.Tensor:
        if self.total < 2:
            return torch.tensor(float("nan"))
        return super().compute()


def task_metrics(task: Task) -> MetricCollection:
    """The metric collection of a task; preds are years (regression), P(positive) or class probabilities."""
    if task.kind == "regression":
        return MetricCollection({
            "mae": MeanAbsoluteError(), "rmse": MeanSquaredError(squared=False), "r2": R2OrNaN(),
            "pearson": PearsonCorrCoef(), "within4": WithinTolerance(4.0), "within9": WithinTolerance(9.0),
        })
    if task.kind == "binary":
        return MetricCollection({
            "auroc": AUROC(task="binary"), "accuracy": Accuracy(task="binary"),
            "sensitivity": Recall(task="binary"), "specificity": Specificity(task="binary"),
            "ppv": Precision(task="binary"), "f1": F1Score(task="binary"),
        })
    n = len(task.classes)
    return MetricCollection({
        "auroc": AUROC(task="multiclass", num_classes=n), "accuracy": Accuracy(task="multiclass", num_classes=n),
        "f1": F1Score(task="multiclass", num_classes=n, average="macro"),
    })


def metric_names(task: Task, stage: str) -> list[str]:
    """The keys a task logs at a stage, e.g. ['val/age_mae', ...]."""
    return [f"{stage}/{task.name}_{name}" for name in task_metrics(task).keys()]
