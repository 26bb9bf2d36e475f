"""Names of a task's columns in a predictions CSV: `<task>_target`, `<task>_pred`, `<task>_pred_calibrated`."""

from __future__ import annotations

import pandas as pd

from radscreen.tasks.base import Task

CALIBRATED_SUFFIX = "_pred_calibrated"


def labelled(frame: pd.DataFrame, task: Task) -> pd.DataFrame:
    """Rows of a predictions frame that have a target for the task."""
    return task.labelled(frame)


def calibrated_column(task: Task) -> str:
    """The predictions column of a thresholded task's calibrated probability."""
    return f"{task.name}{CALIBRATED_SUFFIX}"


def decision_column(frame: pd.DataFrame, task: Task) -> str:
    """The probability a thresholded task's threshold applies to: the calibrated one when the frame has it."""
    return calibrated_column(task) if calibrated_column(task) in frame else f"{task.name}_pred"
