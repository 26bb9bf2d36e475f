"""One of several classes (the three WHO classes): softmax head, cross-entropy, macro scores."""

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
from torchmetrics.classification import AUROC, Accuracy, F1Score

from radscreen.metrics.scores import multiclass_scores
from radscreen.tasks import figures
from radscreen.tasks.base import Task, TaskConfigError
from radscreen.tasks.values import canonical

IGNORE_INDEX = -100  # target of a row without a label (torch's CrossEntropyLoss default)


@dataclass(frozen=True, kw_only=True)
class MulticlassTask(Task):
    """Index of the value in `classes`, IGNORE_INDEX otherwise. Predictions are class probabilities
    (`<name>_prob_<class>`) and the most probable class (`<name>_pred`)."""

    classes: Sequence = ()

    kind: ClassVar[str] = "multiclass"
    losses: ClassVar[tuple[str, ...]] = ("ce",)
    ci_metrics: ClassVar[tuple[str, ...]] = ("auroc", "accuracy", "f1")
    subgroup_metrics: ClassVar[tuple[str, ...]] = ("auroc", "accuracy", "f1")

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "classes", tuple(self.classes or ()))
        if len(self.classes) < 2:
            raise TaskConfigError(f"task '{self.name}': a multiclass task needs at least two `classes`")

    @property
    def n_outputs(self) -> int:
        return len(self.classes)

    def describe(self) -> str:
        return f"`{self.name}`: classify `{self.column}` into {', '.join(map(str, self.classes))}"

    # ------------------------------------------------------------------ data
    def encode(self, values: pd.Series) -> np.ndarray:
        index = {canonical(c): i for i, c in enumerate(self.classes)}
        return np.array([index.get(canonical(v), IGNORE_INDEX) if pd.notna(v) else IGNORE_INDEX for v in values],
                        dtype=np.int64)

    def missing_targets(self, n: int) -> np.ndarray:
        return np.full(n, IGNORE_INDEX, dtype=np.int64)

    def present(self, target: torch.Tensor) -> torch.Tensor:
        return target != IGNORE_INDEX

    # ------------------------------------------------------------------ model
    def compute_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
        if not self.present(target).any():
            return None
        return F.cross_entropy(output.float(), target, ignore_index=IGNORE_INDEX)

    def decode(self, output: torch.Tensor, stats: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"pred": torch.softmax(output, dim=1)}

    def metrics(self) -> MetricCollection:
        n = len(self.classes)
        return MetricCollection({
            "auroc": AUROC(task="multiclass", num_classes=n), "accuracy": Accuracy(task="multiclass", num_classes=n),
            "f1": F1Score(task="multiclass", num_classes=n, average="macro"),
        })

    def cam_output(self, output: torch.Tensor) -> torch.Tensor:
        return output

    def cam_class_index(self, class_name: str | None) -> int:
        if class_name is None or class_name not in self.classes:
            raise TaskConfigError(f"a multiclass CAM needs cam.class_name, one of {list(self.classes)}")
        return list(self.classes).index(class_name)

    # ------------------------------------------------------------------ predictions and scores
    def prediction_columns(self, target: np.ndarray, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        probs = outputs["pred"]
        columns = {f"{self.name}_target": pd.Series(target).map(dict(enumerate(self.classes))).to_numpy()}
        columns.update({f"{self.name}_prob_{c}": probs[:, k] for k, c in enumerate(self.classes)})
        columns[f"{self.name}_pred"] = np.asarray(self.classes, dtype=object)[probs.argmax(axis=1)]
        return columns

    def score_columns(self) -> list[str]:
        return [f"{self.name}_prob_{c}" for c in self.classes]

    def score(self, rows: pd.DataFrame, threshold: float = 0.5) -> dict[str, float]:
        probs = rows[self.score_columns()].to_numpy()
        return multiclass_scores(rows[f"{self.name}_target"].to_numpy(), probs, list(self.classes))

    def selection_scores(self, pred: np.ndarray) -> np.ndarray:
        return pred.argmax(1)

    def figures(self, frame: pd.DataFrame, stem: Path, title: str, threshold: float) -> list[Path]:
        return [figures.class_confusion(frame, self, list(self.classes), Path(f"{stem}_confusion.png"), title)]

    def output_description(self, key: str) -> dict:
        return {"shape": [len(self.classes)], "unit": "probability",
                "description": f"softmax over classes {list(self.classes)} of {self.column}"}
