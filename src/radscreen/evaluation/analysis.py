"""A run's predictions → tables: metrics with patient-bootstrap CIs, thresholds from validation, subgroups.

A binary task's thresholded metrics (sensitivity, specificity, PPV, NPV, F1, accuracy) are computed on its
calibrated probabilities, `<task>_pred_calibrated`, when the predictions hold them (train.py / eval.py write them
with the run's operating point), and its AUC on the raw `<task>_pred`; ECE and Brier score are given for both."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from radscreen.errors import UserError
from radscreen.evaluation.calibration import apply_calibration
from radscreen.evaluation.operating_point import OPERATING_POINT_FILE, OperatingPoint, load_operating_point
from radscreen.evaluation.uncertainty import patient_bootstrap_many
from radscreen.metrics.scores import FIXED_DEFAULT, choose_threshold, parse_threshold
from radscreen.runs import check_run_folder, read_metrics, run_config
from radscreen.tasks import Task, as_tasks
from radscreen.tasks.columns import CALIBRATED_SUFFIX, calibrated_column, decision_column, labelled
from radscreen.utils.tables import read_table

EVAL_SPLITS = ("test", "external")
AGE_BANDS = (0, 40, 60, 80, 200)
CONFUSION_COUNTS = ("tp", "fp", "tn", "fn")
__all__ = ["CALIBRATED_SUFFIX", "EVAL_SPLITS", "ReportOptions", "Run", "TaskTables", "calibrated_column",
           "check_run_folder", "decision_column", "evaluation_tables", "labelled", "load_run", "score"]


@dataclass(frozen=True)
class ReportOptions:
    """How a run's tables are made (report, model card). threshold_method None: the run's saved operating point
    (operating_point.json) when it has one for the task, else Youden's J on the validation split."""

    threshold_method: str | float | None = None  # None | youden | sensitivity | a number such as 0.35 | fixed (0.5)
    target_sensitivity: float = 0.9
    subgroups: tuple[str, ...] = ("sex",)
    n_boot: int = 1000
    seed: int = 0


@dataclass
class Run:
    """One training or evaluation run folder."""

    directory: Path
    tasks: dict[str, Task]
    predictions: dict[str, pd.DataFrame]
    logged: dict[str, float] = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    operating_point: OperatingPoint | None = None  # operating_point.json of the folder, when there is one

    @property
    def name(self) -> str:
        return str(self.config.get("run_name") or self.directory.name)


@dataclass(frozen=True)
class Threshold:
    """A binary task's operating threshold and, in words, how it was chosen."""

    value: float
    how: str


def load_run(directory: str | Path) -> Run:
    """Predictions CSVs, logged metrics and config of a run folder; UserError when it is not a usable one."""
    directory = check_run_folder(directory)
    files = sorted(directory.glob("predictions_*.csv"))
    if not files:
        raise UserError(f"no predictions_*.csv in {directory}: is it a train.py / eval.py run folder?")
    predictions = {path.stem.removeprefix("predictions_"): read_table(path, "predictions file", ("image_id",),
                                                                      low_memory=False) for path in files}
    config = run_config(directory)
    if "task" not in config:
        raise UserError(f"no task configuration found for {directory} (config_resolved.yaml or .hydra/config.yaml)")
    try:
        tasks = as_tasks(config["task"])
    except (TypeError, ValueError) as exc:
        raise UserError(f"task configuration of {directory} is not usable: {exc}") from None
    for split, frame in predictions.items():
        for task in tasks.values():
            missing = [c for c in task.score_columns() if c not in frame]
            if f"{task.name}_target" in frame and missing:
                raise UserError(f"predictions file {directory / f'predictions_{split}.csv'} lacks column(s) "
                                f"{', '.join(missing)} needed to score task {task.name}")
    logged = read_metrics(directory)
    point = load_operating_point(directory) if (directory / OPERATING_POINT_FILE).is_file() else None
    if point is not None:  # predictions from elsewhere: calibrate them as the operating point says
        for name, saved in point.tasks.items():
            task = tasks.get(name)
            for frame in predictions.values():
                if task is not None and saved.calibration and f"{name}_pred" in frame and \
                        calibrated_column(task) not in frame:
                    frame[calibrated_column(task)] = apply_calibration(saved.calibration, frame[f"{name}_pred"])
    return Run(directory, tasks, predictions, logged, config, point)


def score(frame: pd.DataFrame, task: Task, threshold: float = 0.5) -> dict[str, float]:
    """The task's scores on a predictions frame (rows without a target are left out). Binary: `threshold` applies
    to the calibrated probabilities when the frame has them, the AUC ranks the raw ones, and ECE / Brier are given
    for both (`ece`, `brier`; `ece_calibrated`, `brier_calibrated`)."""
    return task.score(labelled(frame, task), threshold)


def operating_threshold(run: Run, task: Task, method: str | float = "youden", sensitivity: float = 0.9) -> Threshold:
    """A binary task's threshold: a number (or `fixed` = 0.5) as given, else Youden's J or the target sensitivity
    on the run's validation predictions (their calibrated probabilities when they have them); 0.5, said so, when the
    run has none."""
    method = parse_threshold(method)
    if not isinstance(method, str):
        return Threshold(float(method), f"fixed at {float(method):g}")
    rows = labelled(run.predictions["val"], task) if "val" in run.predictions and \
        f"{task.name}_target" in run.predictions["val"] else None
    if rows is None or rows.empty:
        return Threshold(FIXED_DEFAULT, f"{FIXED_DEFAULT:g}: the run has no labelled validation predictions to "
                                        f"choose a {method} threshold on")
    target = rows[f"{task.name}_target"].astype(int)
    if target.nunique() < 2:
        raise UserError(f"the validation predictions of {run.directory} hold only one class of task {task.name}; "
                        f"a {method} threshold needs both: pass a number, e.g. --threshold 0.5")
    column = decision_column(rows, task)
    value = choose_threshold(target, rows[column], method, sensitivity)
    how = "Youden's J" if method == "youden" else f"sensitivity ≥ {sensitivity:g}"
    where = "the validation split's calibrated probabilities" if column == calibrated_column(task) else \
        "the validation split"
    return Threshold(value, f"{value:.4f}, chosen on {where} ({how}, n={len(rows)})")


SAVED_METHODS = {"youden": "Youden's J", "sensitivity": "a target sensitivity", "fixed": "a fixed value"}


def run_threshold(run: Run, task: Task, method: str | float | None = None, sensitivity: float = 0.9) -> Threshold:
    """`operating_threshold` for a method; for None the run's saved operating point of the task when it has one
    (what predict.py applies), else Youden's J on the validation split."""
    saved = run.operating_point.tasks.get(task.name) if method is None and run.operating_point else None
    if saved is None:
        return operating_threshold(run, task, "youden" if method is None else method, sensitivity)
    on = "calibrated validation probabilities" if saved.calibration else "validation probabilities"
    how = SAVED_METHODS.get(saved.method, saved.method)
    n = f", n={saved.n_validation}" if saved.n_validation is not None else ""
    if saved.method == "fixed":
        return Threshold(saved.threshold, f"{saved.threshold:.4f}, the run's saved operating point (a fixed value{n})")
    return Threshold(saved.threshold, f"{saved.threshold:.4f}, the run's saved operating point ({how} on the {on}{n})")


def validation_threshold(run: Run, task: Task, method: str | float = "youden", sensitivity: float = 0.9) -> float:
    """Operating threshold of a binary task (see `run_threshold`); 0.5 for other task kinds."""
    if not task.thresholded:
        return FIXED_DEFAULT
    return run_threshold(run, task, method, sensitivity).value


def metrics_with_ci(frame: pd.DataFrame, task: Task, threshold: float, n_boot: int = 1000,
                    seed: int = 0) -> pd.DataFrame:
    """One row per metric: value and 95 % patient-bootstrap interval (every metric from the same resamples)."""
    rows = labelled(frame, task)
    point = score(rows, task, threshold)
    names = [m for m in task.ci_metrics if m in point]
    intervals = _intervals(rows, task, threshold, names, n_boot, seed)
    table = [{"metric": m, "value": point[m], "ci_low": intervals.get(m, (np.nan, np.nan))[0],
              "ci_high": intervals.get(m, (np.nan, np.nan))[1]} for m in names]
    return pd.DataFrame(table)


def _intervals(rows: pd.DataFrame, task: Task, threshold: float, names: list[str], n_boot: int,
               seed: int) -> dict[str, tuple[float, float]]:
    """95 % patient-bootstrap intervals of the named scores (none for n_boot = 0)."""
    if not n_boot:
        return {}
    if "patient_id" not in rows:
        raise UserError(f"predictions of task {task.name} lack column patient_id, which the bootstrap resamples; "
                        f"add it or pass --boot 0")

    def replicate(sample: pd.DataFrame) -> dict[str, float]:
        scores = score(sample, task, threshold)
        return {m: scores[m] for m in names}

    return patient_bootstrap_many(rows, replicate, n_boot=n_boot, seed=seed)


def confusion_counts(frame: pd.DataFrame, task: Task, threshold: float) -> pd.DataFrame:
    """One row: n, threshold, TP, FP, TN, FN of a binary task at `threshold` (integers)."""
    scores = score(frame, task, threshold)
    return pd.DataFrame([{"n": int(scores["n"]), "threshold": threshold,
                          **{k: int(scores[k]) for k in CONFUSION_COUNTS}}])


def subgroup_table(frame: pd.DataFrame, task: Task, threshold: float, columns: tuple[str, ...] = ("sex",),
                   age_bands: tuple[float, ...] = AGE_BANDS, n_boot: int = 0, seed: int = 0) -> pd.DataFrame:
    """Scores per subgroup: each value of each column, and age bands; a fairness check. Columns absent from
    the frame are left out (see `missing_subgroups`). With n_boot, each score has its 95 % patient-bootstrap
    interval in `<score>_ci_low` / `<score>_ci_high` (resampling the subgroup's own patients)."""
    rows = labelled(frame, task)
    groups = {column: rows[column].astype("string") for column in columns if column in rows}
    if "age_years" in rows and age_bands:
        groups["age band"] = pd.cut(rows["age_years"], list(age_bands), right=False).astype("string")
    counts = CONFUSION_COUNTS if task.thresholded else ()
    out = []
    for column, values in groups.items():
        for value, part in rows.groupby(values.fillna("missing"), sort=True):
            scores = score(part, task, threshold)
            names = [k for k in task.ci_metrics if k in scores]
            intervals = _intervals(part, task, threshold, names, n_boot, seed)
            cis = {f"{k}_ci_{side}": intervals[k][i] for k in names if k in intervals
                   for i, side in enumerate(("low", "high"))}
            out.append({"subgroup": column, "value": value, "n": int(scores["n"]), **{k: scores[k] for k in names},
                        **cis, **{k: int(scores[k]) for k in counts}})
    return pd.DataFrame(out)


@dataclass
class TaskTables:
    """What the report and the model card show of one task: its threshold (binary) and, per test / external
    split, the metrics with intervals, the subgroups and the confusion counts (binary)."""

    threshold: Threshold | None
    metrics: dict[str, pd.DataFrame] = field(default_factory=dict)
    subgroups: dict[str, pd.DataFrame] = field(default_factory=dict)
    confusion: dict[str, pd.DataFrame] = field(default_factory=dict)


def evaluation_tables(run: Run, options: ReportOptions = ReportOptions()) -> dict[str, TaskTables]:
    """Every task's tables on the run's labelled test / external predictions (computed once, shown by the report
    and the model card alike)."""
    out = {}
    for task in run.tasks.values():
        chosen = run_threshold(run, task, options.threshold_method, options.target_sensitivity) \
            if task.thresholded else None
        threshold = chosen.value if chosen else FIXED_DEFAULT
        tables = TaskTables(chosen)
        for split in EVAL_SPLITS:
            frame = run.predictions.get(split)
            if frame is None or f"{task.name}_target" not in frame or labelled(frame, task).empty:
                continue
            tables.metrics[split] = metrics_with_ci(frame, task, threshold, options.n_boot, options.seed)
            tables.subgroups[split] = subgroup_table(frame, task, threshold, options.subgroups,
                                                     n_boot=options.n_boot, seed=options.seed)
            if task.thresholded:
                tables.confusion[split] = confusion_counts(frame, task, threshold)
        out[task.name] = tables
    return out


def missing_subgroups(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[str]:
    """Subgroup columns that a predictions frame lacks."""
    return [c for c in columns if c not in frame]
