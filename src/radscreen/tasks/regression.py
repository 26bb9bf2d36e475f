"""A continuous target (age in years): MSE, or Gaussian NLL with a mean and log-variance head."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, PearsonCorrCoef

from radscreen.metrics.running import R2OrNaN, WithinTolerance
from radscreen.metrics.scores import regression_scores, uncertainty_scores
from radscreen.tasks import figures
from radscreen.tasks.base import Task


@dataclass(frozen=True, kw_only=True)
class RegressionTask(Task):
    """Float target, NaN when missing. The head works in z-scored units of the training split; predictions,
    metrics and CSVs are in the column's own units. loss mse: one output; gaussian_nll: mean and log-variance,
    and the predicted variance (`<name>_var`, units²) is written beside the prediction."""

    kind: ClassVar[str] = "regression"
    losses: ClassVar[tuple[str, ...]] = ("mse", "gaussian_nll")
    normalised: ClassVar[bool] = True
    monitor: ClassVar[tuple[str, str]] = ("mae", "min")
    ci_metrics: ClassVar[tuple[str, ...]] = ("mae", "rmse", "r2", "within4", "within9", "mean_error", "sd_error",
                                             "pearson")
    subgroup_metrics: ClassVar[tuple[str, ...]] = ("mae", "mean_error", "r2")

    @property
    def variance_head(self) -> bool:
        """Whether the head also predicts a variance (Gaussian NLL)."""
        return self.loss == "gaussian_nll"

    @property
    def n_outputs(self) -> int:
        return 2 if self.variance_head else 1

    def describe(self) -> str:
        return f"`{self.name}`: estimate `{self.column}` (regression, loss {self.loss})"

    @property
    def unit(self) -> str:
        """years for age columns, else the column's own units."""
        return "years" if self.column.endswith("_years") or self.column == "age" else f"units of {self.column}"

    # ------------------------------------------------------------------ data
    def encode(self, values: pd.Series) -> np.ndarray:
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float32, na_value=np.nan)

    # ------------------------------------------------------------------ model
    def compute_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
        present = self.present(target)
        if not present.any():
            return None
        output, target = output[present].float(), target[present].float()
        if self.variance_head:
            return F.gaussian_nll_loss(output[:, 0], target, output[:, 1].exp(), full=True, eps=1e-6)
        return F.mse_loss(output[:, 0], target)

    def head_target(self, target: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
        mean, sd = stats
        return (target - mean) / sd

    def decode(self, output: torch.Tensor, stats: torch.Tensor) -> dict[str, torch.Tensor]:
        mean, sd = stats
        decoded = {"pred": output[:, 0] * sd + mean}
        if self.variance_head:
            decoded["var"] = output[:, 1].exp() * sd**2
        return decoded

    def output_keys(self) -> tuple[str, ...]:
        return ("pred", "var") if self.variance_head else ("pred",)

    def metrics(self) -> MetricCollection:
        return MetricCollection({
            "mae": MeanAbsoluteError(), "rmse": MeanSquaredError(squared=False), "r2": R2OrNaN(),
            "pearson": PearsonCorrCoef(), "within4": WithinTolerance(4.0), "within9": WithinTolerance(9.0),
        })

    def metric_inputs(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        present = self.present(target)
        return pred[present], target[present]

    # ------------------------------------------------------------------ predictions and scores
    def score(self, rows: pd.DataFrame, threshold: float = 0.5) -> dict[str, float]:
        return regression_scores(rows[f"{self.name}_target"], rows[f"{self.name}_pred"])

    def checkpoint_scores(self, rows: pd.DataFrame) -> dict[str, float]:
        """Gaussian NLL: mean predicted SD and the correlation of |error| with it."""
        if not self.variance_head or not len(rows):
            return {}
        return uncertainty_scores(rows[f"{self.name}_target"], rows[f"{self.name}_pred"], rows[f"{self.name}_var"])

    def figures(self, frame: pd.DataFrame, stem: Path, title: str, threshold: float) -> list[Path]:
        paths = [figures.age_scatter(frame, self, Path(f"{stem}_scatter.png"), title),
                 figures.age_histograms(frame, self, Path(f"{stem}_histograms.png"), title)]
        if f"{self.name}_var" in frame:
            paths.append(figures.error_vs_uncertainty(frame, self, Path(f"{stem}_uncertainty.png"), title))
        return paths

    def output_description(self, key: str) -> dict:
        if key == "var":
            return {"shape": [], "unit": f"{self.unit}²",
                    "description": f"predicted variance of {self.column} (aleatoric uncertainty, Gaussian NLL head)"}
        return {"shape": [], "unit": self.unit, "description": f"predicted {self.column}"}
