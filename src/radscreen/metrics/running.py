"""torchmetrics metrics that torchmetrics lacks, updated in training: ±tolerance share, R² or NaN, a weighted mean."""

from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.regression import R2Score


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


class WeightedMean(Metric):
    """Weighted mean of values, NaN when a value is NaN: torchmetrics' MeanMetric either drops NaN values
    (nan_strategy warn / ignore) or, with nan_strategy="disable", also drops the weights (torchmetrics 1.9,
    Lightning-AI/torchmetrics#3434)."""

    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("weighted_sum", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("weight", default=torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, values: torch.Tensor, weights: torch.Tensor) -> None:
        self.weighted_sum += (values * weights).sum()
        self.weight += weights.sum()

    def compute(self) -> torch.Tensor:
        return self.weighted_sum / self.weight
