"""A task is data, not code: a manifest column, a kind and a loss (conf/task/*.yaml)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

KINDS = ("regression", "binary", "multiclass")
LOSSES = {"regression": ("mse", "gaussian_nll"), "binary": ("bce",), "multiclass": ("ce",)}
IGNORE_INDEX = -100  # multiclass target of a row without a label (torch's CrossEntropyLoss default)


@dataclass(frozen=True)
class Task:
    """One prediction target.

    regression: float target (NaN when missing); loss mse or gaussian_nll (mean + log-variance head).
    binary: 1 for values in `positive`, 0 for values in `negative` (default: every other non-missing
        value), missing otherwise; loss bce.
    multiclass: index of the value in `classes`, IGNORE_INDEX otherwise; loss ce.
    """

    name: str
    column: str
    kind: str
    loss: str | None = None
    positive: Sequence = ()
    negative: Sequence = ()
    classes: Sequence = ()
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"task '{self.name}': kind must be one of {KINDS}, got '{self.kind}'")
        loss = self.loss or LOSSES[self.kind][0]
        if loss not in LOSSES[self.kind]:
            raise ValueError(f"task '{self.name}': loss '{loss}' does not fit kind '{self.kind}' "
                             f"(choose {', '.join(LOSSES[self.kind])})")
        object.__setattr__(self, "loss", loss)
        for name in ("positive", "negative", "classes"):
            object.__setattr__(self, name, tuple(getattr(self, name) or ()))
        if self.kind == "binary" and not self.positive:
            raise ValueError(f"task '{self.name}': a binary task needs `positive` values")
        if self.kind == "multiclass" and len(self.classes) < 2:
            raise ValueError(f"task '{self.name}': a multiclass task needs at least two `classes`")

    @property
    def n_outputs(self) -> int:
        """Width of the task's head: 2 for Gaussian NLL (mean, log-variance), classes for multiclass, else 1."""
        if self.kind == "multiclass":
            return len(self.classes)
        return 2 if self.loss == "gaussian_nll" else 1

    def encode(self, values: pd.Series) -> np.ndarray:
        """Manifest column → float32 (regression, binary; NaN = missing) or int64 (multiclass) targets."""
        if self.kind == "regression":
            return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float32, na_value=np.nan)
        if self.kind == "binary":
            is_pos, is_neg = _matches(values, self.positive), values.notna()
            if self.negative:
                is_neg = _matches(values, self.negative)
            out = np.full(len(values), np.nan, dtype=np.float32)
            out[is_neg.to_numpy(dtype=bool)] = 0.0
            out[is_pos.to_numpy(dtype=bool)] = 1.0
            return out
        index = {_canonical(c): i for i, c in enumerate(self.classes)}
        return np.array([index.get(_canonical(v), IGNORE_INDEX) if pd.notna(v) else IGNORE_INDEX for v in values],
                        dtype=np.int64)


def _canonical(value: object) -> object:
    """Compare 1, 1.0 and '1' alike; other values as strings."""
    try:
        number = float(value)
        return int(number) if number.is_integer() else number
    except (TypeError, ValueError):
        return str(value)


def _matches(values: pd.Series, wanted: Sequence) -> pd.Series:
    keys = {_canonical(w) for w in wanted}
    return values.map(lambda v: pd.notna(v) and _canonical(v) in keys).astype(bool)


def as_tasks(tasks: Mapping[str, Task | Mapping] | Sequence[Task | Mapping]) -> dict[str, Task]:
    """Tasks from config: a mapping name → Task/dict, or a list; returned as name → Task."""
    items = tasks.values() if isinstance(tasks, Mapping) else tasks
    out = {}
    for item in items:
        task = item if isinstance(item, Task) else Task(**item)
        out[task.name] = task
    if not out:
        raise ValueError("at least one task is needed (conf/task/)")
    return out
