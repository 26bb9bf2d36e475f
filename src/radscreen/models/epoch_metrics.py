"""A task's metrics over one stage's epoch, fed and logged once at the epoch end instead of at every step."""

from __future__ import annotations

import torch
import torch.nn as nn
from torchmetrics import MetricCollection

from radscreen.metrics.running import WeightedMean


class EpochMetrics(nn.Module):
    """One task's torchmetrics collection for one stage (train, val, a test split) and its mean loss.

    A step only keeps its detached metric inputs, loss and batch size (`add`); at the epoch end `update` feeds them
    to the collection and to a mean weighted by batch size, which is what Lightning's `on_epoch=True` logging
    of the step losses computed on one process (under DDP the mean now covers every rank's steps). The module logs
    those metric objects, so Lightning computes them (synchronised across processes) and resets them once per
    epoch, and the per-step cost is a list append. Metric states are not persistent: nothing here enters the state
    dict.
    """

    def __init__(self, collection: MetricCollection, loss_name: str) -> None:
        super().__init__()
        self.collection = collection
        self.loss = WeightedMean()  # a NaN loss gives NaN, as Lightning's mean did
        self.loss_name = loss_name
        self._steps: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]] = []

    def add(self, preds: torch.Tensor, target: torch.Tensor, loss: torch.Tensor, batch_size: int) -> None:
        """Keep one step's metric inputs (preds, target as the collection takes them), loss and batch size."""
        self._steps.append((preds.detach(), target, loss.detach(), batch_size))

    def update(self) -> bool:
        """Feed the kept steps to the collection and the loss mean, then forget them; False when none was kept."""
        if not self._steps:
            return False
        preds, target, losses, sizes = zip(*self._steps)
        self._steps.clear()
        self.collection.update(torch.cat(preds), torch.cat(target))
        losses = torch.stack(losses).float()
        self.loss.update(losses, torch.tensor(sizes, dtype=losses.dtype, device=losses.device))
        return True

    def reset(self) -> None:
        """Forget kept steps and metric states (a new epoch after one that stopped early)."""
        self._steps.clear()
        self.collection.reset()
        self.loss.reset()
