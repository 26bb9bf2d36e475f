"""Per-task losses that skip rows whose target is missing (NaN, or the ignore index)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from radscreen.tasks import IGNORE_INDEX, Task


def task_loss(task: Task, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """Mean loss over the rows that have a target; None when no row has one.

    regression outputs are in normalised units (mean, and log-variance for gaussian_nll); targets too.
    """
    if task.kind == "multiclass":
        if not (target != IGNORE_INDEX).any():
            return None
        return F.cross_entropy(output.float(), target, ignore_index=IGNORE_INDEX)
    present = ~torch.isnan(target)
    if not present.any():
        return None
    output, target = output[present].float(), target[present].float()
    if task.kind == "binary":
        return F.binary_cross_entropy_with_logits(output[:, 0], target)
    if task.loss == "gaussian_nll":
        return F.gaussian_nll_loss(output[:, 0], target, output[:, 1].exp(), full=True, eps=1e-6)
    return F.mse_loss(output[:, 0], target)
