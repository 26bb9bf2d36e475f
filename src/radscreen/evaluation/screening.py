"""From a checkpoint's predictions to what a screener sees: per binary task, the calibration fitted on the labelled
validation predictions, the calibrated probability of every image (`<task>_pred_calibrated`), the threshold chosen
on the calibrated validation probabilities, and ECE / Brier score before and after calibration.

train.py (after fitting) and eval.py call `calibrate_predictions` on the predictions of every split before they are
written; the operating point it returns is saved as operating_point.json for predict.py.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from radscreen.errors import UserError
from radscreen.evaluation.analysis import calibrated_column, decision_column, labelled
from radscreen.evaluation.calibration import METHODS, apply_calibration, fit_calibration
from radscreen.evaluation.operating_point import OperatingPoint, TaskOperatingPoint
from radscreen.metrics.scores import (
    FIXED_DEFAULT,
    binary_scores,
    calibration_scores,
    choose_threshold,
    parse_threshold,
)
from radscreen.tasks import Task

log = logging.getLogger(__name__)
SCORED_SPLITS = ("val", "test", "external")  # splits whose calibration and operating-point metrics are logged
AT_THRESHOLD = ("sensitivity", "specificity", "ppv", "npv")  # logged as <split>/<task>_<name>_at_threshold


@dataclass(frozen=True)
class OperatingOptions:
    """How the operating point is made: conf/train.yaml and conf/eval.yaml `calibration` and `report.*`."""

    calibration: str = "temperature"  # none | temperature | platt | isotonic
    threshold_method: str | float = "youden"  # youden | sensitivity | a number such as 0.35 | fixed (0.5)
    target_sensitivity: float = 0.9

    @classmethod
    def from_config(cls, cfg: Mapping) -> OperatingOptions:
        """The options of a train.py / eval.py config, checked (UserError for a mistake, before any evaluation)."""
        report = cfg.get("report") or {}
        options = cls(str(cfg.get("calibration", "temperature")), report.get("threshold_method", "youden"),
                      float(report.get("target_sensitivity", 0.9)))
        options.check()
        return options

    def check(self) -> None:
        if self.calibration not in METHODS:
            raise UserError(f"calibration={self.calibration} is not a calibration method; choose one of "
                            f"{', '.join(METHODS)}")
        parse_threshold(self.threshold_method)
        if not 0 < self.target_sensitivity <= 1:
            raise UserError(f"report.target_sensitivity={self.target_sensitivity} is not a sensitivity; give a "
                            f"number in (0, 1], e.g. 0.9")


def describe_calibration(parameters: dict | None) -> str:
    """A calibration's fitted parameters in words."""
    if not parameters:
        return "none (raw probabilities)"
    method = parameters.get("method")
    if method == "temperature":
        return f"temperature scaling, T = {parameters['temperature']:.4g}"
    if method == "platt":
        return f"Platt scaling, slope {parameters['slope']:.4g}, intercept {parameters['intercept']:.4g}"
    if method == "isotonic":
        return f"isotonic regression, {len(parameters['x'])} breakpoints"
    return str(method)


def validation_rows(frames: Mapping[str, pd.DataFrame], task: Task) -> pd.DataFrame:
    """Labelled validation predictions of a task (empty without a validation split)."""
    frame = frames.get("val")
    if frame is None or f"{task.name}_target" not in frame:
        return pd.DataFrame(columns=[f"{task.name}_target", f"{task.name}_pred"])
    return labelled(frame, task)


def calibration_note(method: str, rows: pd.DataFrame, task: Task) -> str | None:
    """Why `method` cannot be fitted on these validation rows (None when it can, or for 'none')."""
    if method == "none":
        return None
    if rows.empty:
        return f"calibration={method} needs labelled validation predictions of task {task.name} and there are none"
    if rows[f"{task.name}_target"].nunique() < 2:
        return f"calibration={method} needs both classes of task {task.name} in the validation split, which holds one"
    return None


def calibrate_predictions(frames: dict[str, pd.DataFrame], tasks: Mapping[str, Task], options: OperatingOptions,
                          source: str = "") -> tuple[OperatingPoint, dict[str, float]]:
    """Fit each binary task's calibration on the labelled validation rows of `frames` (split → predictions frame),
    add `<task>_pred_calibrated` to every frame (in place), choose the threshold on the calibrated validation
    probabilities and return the operating point with the metrics: per split, `<task>_ece` / `_brier` (raw),
    `_ece_calibrated` / `_brier_calibrated`, and sensitivity, specificity, PPV, NPV `_at_threshold`.

    A calibration that cannot be fitted (no validation split, one class in it) falls back to none, and a threshold
    that cannot be chosen there to 0.5; both with a logged note, not an error."""
    options.check()
    points: dict[str, TaskOperatingPoint] = {}
    metrics: dict[str, float] = {}
    for name, task in tasks.items():
        if not task.thresholded:
            continue
        for frame in frames.values():  # float64: the CSV then holds exactly the values the threshold is chosen on
            if f"{name}_pred" in frame:
                frame[f"{name}_pred"] = frame[f"{name}_pred"].astype(float)
        rows = validation_rows(frames, task)
        method = options.calibration
        note = calibration_note(method, rows, task)
        if note:
            log.warning("%s: probabilities of %s are left uncalibrated", note, name)
            method = "none"
        parameters = fit_calibration(method, rows[f"{name}_pred"].to_numpy(float),
                                     rows[f"{name}_target"].to_numpy(float))
        if parameters:
            for frame in frames.values():
                if f"{name}_pred" in frame:
                    frame[calibrated_column(task)] = apply_calibration(parameters, frame[f"{name}_pred"].to_numpy())
            log.info("%s: %s, fitted on %d validation images", name, describe_calibration(parameters), len(rows))
            rows = validation_rows(frames, task)  # now with the calibrated column
        threshold, how = _threshold(task, options, rows)
        points[name] = TaskOperatingPoint(threshold, how, parameters, int(len(rows)))
        metrics.update(split_metrics(frames, task, threshold))
    return OperatingPoint(points, source), metrics


def _threshold(task: Task, options: OperatingOptions, rows: pd.DataFrame) -> tuple[float, str]:
    """The threshold and how it was chosen (youden | sensitivity | fixed) on the validation rows' calibrated
    probabilities when they have them (what analysis.operating_threshold chooses on the written predictions)."""
    method = parse_threshold(options.threshold_method)
    if not isinstance(method, str):
        return float(method), "fixed"
    if rows.empty or rows[f"{task.name}_target"].nunique() < 2:
        log.warning("task %s: a %s threshold needs both classes in labelled validation predictions; the operating "
                    "threshold is %g", task.name, method, FIXED_DEFAULT)
        return FIXED_DEFAULT, "fixed"
    target = rows[f"{task.name}_target"].astype(int)
    return choose_threshold(target, rows[decision_column(rows, task)], method, options.target_sensitivity), method


def split_metrics(frames: Mapping[str, pd.DataFrame], task: Task, threshold: float) -> dict[str, float]:
    """ECE and Brier score before / after calibration and the operating-point metrics of each scored split."""
    out: dict[str, float] = {}
    for split in SCORED_SPLITS:
        frame = frames.get(split)
        if frame is None or f"{task.name}_target" not in frame:
            continue
        rows = labelled(frame, task)
        if rows.empty:
            continue
        target = rows[f"{task.name}_target"].astype(int).to_numpy()
        key = f"{split}/{task.name}"
        out.update({f"{key}_{k}": v for k, v in calibration_scores(target, rows[f"{task.name}_pred"]).items()})
        if calibrated_column(task) in rows:
            out.update({f"{key}_{k}_calibrated": v for k, v in
                        calibration_scores(target, rows[calibrated_column(task)]).items()})
        scores = binary_scores(target, rows[decision_column(rows, task)], threshold)
        out.update({f"{key}_{k}_at_threshold": scores[k] for k in AT_THRESHOLD})
    return {k: float(v) for k, v in out.items() if np.isfinite(v)}
