"""torchmetrics metrics that torchmetrics lacks, updated batch by batch in training: ±tolerance share, R² or NaN."""

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
