"""What every task kind provides: one manifest column in, a head's outputs out, and how both are scored.

A task kind is a subclass of `Task` (RegressionTask, BinaryTask, MulticlassTask). Everything that differs between
kinds lives on the class, so the model, the data, the reports and the exports ask the task instead of testing its
kind: a new kind is a new subclass here and one YAML file in conf/task/.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from torchmetrics import MetricCollection

from radscreen.errors import ConfigError


class TaskConfigError(ConfigError):
    """A conf/task/*.yaml entry that does not define a usable task."""


@dataclass(frozen=True, kw_only=True)
class Task(ABC):
    """One prediction target read from a manifest column.

    name: the head, and the prefix of every logged metric and predictions column (`<name>_pred`, ...).
    column: the manifest column holding the label. weight: the task's share of the summed training loss.
    """

    name: str
    column: str
    loss: str = ""
    weight: float = 1.0

    kind: ClassVar[str] = ""                 # a word for reports and records, never compared by other code
    losses: ClassVar[tuple[str, ...]] = ()   # the losses the kind trains with; the first is the default
    thresholded: ClassVar[bool] = False      # has an operating threshold (calibration, operating point, confusion)
    normalised: ClassVar[bool] = False       # heads work in z-scored target units (statistics of the training split)
    monitor: ClassVar[tuple[str, str]] = ("loss", "min")  # what checkpoints and early stopping watch by default
    ci_metrics: ClassVar[tuple[str, ...]] = ()        # scores given with patient-bootstrap intervals
    subgroup_metrics: ClassVar[tuple[str, ...]] = ()  # scores the model card shows per subgroup

    def __post_init__(self) -> None:
        if not self.name or not self.column:
            raise TaskConfigError(f"a {type(self).__name__} needs a name and a manifest column, "
                                  f"got name={self.name!r} column={self.column!r}")
        loss = self.loss or self.losses[0]
        if loss not in self.losses:
            raise TaskConfigError(f"task '{self.name}': loss '{loss}' does not fit a {type(self).__name__} "
                                  f"(choose {', '.join(self.losses)})")
        object.__setattr__(self, "loss", loss)
        object.__setattr__(self, "weight", float(self.weight))

    # ------------------------------------------------------------------ what it is
    @property
    @abstractmethod
    def n_outputs(self) -> int:
        """Width of the task's head."""

    @abstractmethod
    def describe(self) -> str:
        """One line for a model card: what the model does for this task."""

    def label(self) -> str:
        """The kind and loss in a few words, e.g. 'regression, loss mse'."""
        return f"{self.kind}, loss {self.loss}"

    def to_config(self) -> dict:
        """The task as a conf/task entry (`_target_` and fields): what checkpoints and exports record."""
        cls = type(self)
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {"_target_": f"{cls.__module__.rsplit('.', 1)[0]}.{cls.__name__}",
                **{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}}

    # ------------------------------------------------------------------ data
    @property
    def source_columns(self) -> tuple[str, ...]:
        """The manifest columns the task reads."""
        return (self.column,)

    @abstractmethod
    def encode(self, values: pd.Series) -> np.ndarray:
        """Manifest column → targets; rows without a label get the kind's missing value."""

    def encode_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Targets of every row of a manifest frame (missing where the frame lacks the column)."""
        return self.encode(frame[self.column]) if self.column in frame else self.missing_targets(len(frame))

    def has_label(self, frame: pd.DataFrame) -> pd.Series:
        """Boolean Series: the manifest row holds a label for the task."""
        return frame[self.column].notna() if self.column in frame else pd.Series(False, index=frame.index)

    def missing_targets(self, n: int) -> np.ndarray:
        """Targets of n rows that have no label (e.g. an external set without the column): NaN, float32."""
        return np.full(n, np.nan, dtype=np.float32)

    def present(self, target: torch.Tensor) -> torch.Tensor:
        """Boolean mask of the targets of a batch that hold a label (not NaN)."""
        return ~torch.isnan(target)

    # ------------------------------------------------------------------ model
    @abstractmethod
    def compute_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
        """Mean loss over the labelled rows (targets in the head's units); None when no row has a label."""

    def head_target(self, target: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
        """A target batch in the head's units (z-scores for normalised tasks; `stats` = mean, SD)."""
        return target

    @abstractmethod
    def decode(self, output: torch.Tensor, stats: torch.Tensor) -> dict[str, torch.Tensor]:
        """Head output → user units: {'pred': ..., and e.g. 'var'}."""

    @abstractmethod
    def metrics(self) -> MetricCollection:
        """The torchmetrics collection logged during training, updated with `metric_inputs`."""

    def metric_inputs(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(preds, target) of the labelled rows as the metric collection takes them."""
        present = self.present(target)
        return pred[present], target[present].long()

    def output_keys(self) -> tuple[str, ...]:
        """The decoded outputs, in order: 'pred', then whatever else the head gives."""
        return ("pred",)

    def cam_output(self, output: torch.Tensor) -> torch.Tensor:
        """The head's output a CAM explains (B, k)."""
        return output[:, :1]

    def cam_class_index(self, class_name: str | None) -> int:
        """Index of the output column a CAM explains."""
        return 0

    # ------------------------------------------------------------------ predictions and scores
    def prediction_columns(self, target: np.ndarray, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Columns of a predictions CSV: `<name>_target`, `<name>_pred` and any other output (`<name>_var`)."""
        return {f"{self.name}_target": target, **{f"{self.name}_{k}": v for k, v in outputs.items()}}

    def score_columns(self) -> list[str]:
        """Predictions columns (besides `<name>_target`) that scoring needs."""
        return [f"{self.name}_pred"]

    def labelled(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Rows of a predictions frame that have a target for the task."""
        return frame[frame[f"{self.name}_target"].notna()]

    @abstractmethod
    def score(self, rows: pd.DataFrame, threshold: float = 0.5) -> dict[str, float]:
        """scikit-learn scores of labelled predictions rows (`n` and the task's metrics)."""

    def checkpoint_scores(self, rows: pd.DataFrame) -> dict[str, float]:
        """Scores added to a run's metrics beside the logged ones when a checkpoint is evaluated."""
        return {}

    def selection_scores(self, pred: np.ndarray) -> np.ndarray:
        """Per-image scores the CAM selection compares with a threshold."""
        return pred

    @abstractmethod
    def figures(self, frame: pd.DataFrame, stem: Path, title: str, threshold: float) -> list[Path]:
        """The report's figures of one split (PNG files named `<stem>_<figure>.png`)."""

    def output_description(self, key: str) -> dict:
        """Shape (after the batch axis), unit and meaning of a decoded output, for export metadata."""
        return {"shape": [], "unit": "", "description": f"{key} of {self.column}"}
