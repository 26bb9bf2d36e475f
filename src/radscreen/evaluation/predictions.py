"""Predictions of a module on a split → one CSV row per image with targets and outputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch

from radscreen.tasks import Task

CONTEXT_COLUMNS = ("patient_id", "split", "age_years", "sex", "bmd_class", "cohort")


def prediction_frame(batches: Sequence[Mapping], frame: pd.DataFrame, tasks: Mapping[str, Task]) -> pd.DataFrame:
    """Rows of `frame` (by image_id) with, per task, `<task>_target`, `<task>_pred` (years, or P(positive)),
    `<task>_var` (Gaussian NLL variance, years²), or for multiclass `<task>_prob_<class>` and the argmax class:
    each task's `prediction_columns`."""
    ids = [i for batch in batches for i in batch["image_id"]]
    rows = frame.set_index("image_id").loc[ids]  # manifest rows in prediction order, looked up once
    out = rows[[c for c in CONTEXT_COLUMNS if c in frame.columns]].reset_index()
    for name, task in tasks.items():
        outputs = {k: torch.cat([b["outputs"][name][k] for b in batches]).numpy() for k in batches[0]["outputs"][name]}
        target = task.encode_frame(rows)
        for column, values in task.prediction_columns(target, outputs).items():
            out[column] = values
    return out
