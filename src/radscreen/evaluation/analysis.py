"""A run's predictions → tables: metrics with patient-bootstrap CIs, thresholds from validation, subgroups."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from radscreen.errors import UserError
from radscreen.evaluation.scores import (
    FIXED_DEFAULT,
    binary_scores,
    choose_threshold,
    multiclass_scores,
    parse_threshold,
    regression_scores,
)
from radscreen.evaluation.uncertainty import patient_bootstrap_many
from radscreen.tasks import Task, as_tasks
from radscreen.training.failure import FAILED_MARKER, is_failed
from radscreen.utils.tables import read_table

EVAL_SPLITS = ("test", "external")
AGE_BANDS = (0, 40, 60, 80, 200)
CI_METRICS = {"regression": ("mae", "rmse", "r2", "within4", "within9", "mean_error", "sd_error", "pearson"),
              "binary": ("auroc", "sensitivity", "specificity", "ppv", "npv", "f1", "accuracy"),
              "multiclass": ("auroc", "accuracy", "f1")}
CONFUSION_COUNTS = ("tp", "fp", "tn", "fn")


@dataclass
class Run:
    """One training or evaluation run folder."""

    directory: Path
    tasks: dict[str, Task]
    predictions: dict[str, pd.DataFrame]
    logged: dict[str, float] = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.config.get("run_name") or self.directory.name)


@dataclass(frozen=True)
class Threshold:
    """A binary task's operating threshold and, in words, how it was chosen."""

    value: float
    how: str


def _find_config(directory: Path) -> dict:
    """The run's config: config_resolved.yaml (written by train.py / eval.py), else Hydra's unresolved
    .hydra/config.yaml, following an eval run back to its training run."""
    resolved, raw = directory / "config_resolved.yaml", directory / ".hydra" / "config.yaml"
    path = resolved if resolved.exists() else raw
    config = OmegaConf.to_container(OmegaConf.load(path), resolve=False) if path.exists() else {}
    if "task" not in config and config.get("ckpt_path"):
        from radscreen.training.run import find_run_dir

        return _find_config(find_run_dir(Path(config["ckpt_path"])))
    return config


def check_run_folder(directory: str | Path) -> Path:
    """`directory` as a Path when it is a run folder that did not fail; else UserError saying what it is."""
    directory = Path(directory)
    if not directory.exists():
        raise UserError(f"run folder {directory} does not exist")
    if not directory.is_dir():
        raise UserError(f"{directory} is a file, not a run folder; give the folder that holds predictions_*.csv")
    if is_failed(directory):
        raise UserError(f"run {directory} failed (see {directory / FAILED_MARKER}); its predictions are incomplete")
    return directory


def prediction_columns(task: Task) -> list[str]:
    """Columns a predictions CSV needs to score the task (besides `<task>_target`)."""
    if task.kind == "multiclass":
        return [f"{task.name}_prob_{c}" for c in task.classes]
    return [f"{task.name}_pred"]


def load_run(directory: str | Path) -> Run:
    """Predictions CSVs, logged metrics and config of a run folder; UserError when it is not a usable one."""
    directory = check_run_folder(directory)
    files = sorted(directory.glob("predictions_*.csv"))
    if not files:
        raise UserError(f"no predictions_*.csv in {directory}: is it a train.py / eval.py run folder?")
    predictions = {path.stem.removeprefix("predictions_"): read_table(path, "predictions file", ("image_id",),
                                                                      low_memory=False) for path in files}
    config = _find_config(directory)
    if "task" not in config:
        raise UserError(f"no task configuration found for {directory} (config_resolved.yaml or .hydra/config.yaml)")
    try:
        tasks = as_tasks(config["task"])
    except (TypeError, ValueError) as exc:
        raise UserError(f"task configuration of {directory} is not usable: {exc}") from None
    for split, frame in predictions.items():
        for task in tasks.values():
            missing = [c for c in prediction_columns(task) if c not in frame]
            if f"{task.name}_target" in frame and missing:
                raise UserError(f"predictions file {directory / f'predictions_{split}.csv'} lacks column(s) "
                                f"{', '.join(missing)} needed to score task {task.name}")
    metrics_file = directory / "metrics.json"
    logged = json.loads(metrics_file.read_text()).get("metrics", {}) if metrics_file.exists() else {}
    return Run(directory, tasks, predictions, logged, config)


def labelled(frame: pd.DataFrame, task: Task) -> pd.DataFrame:
    """Rows of a predictions frame that have a target for the task."""
    return frame[frame[f"{task.name}_target"].notna()]


def score(frame: pd.DataFrame, task: Task, threshold: float = 0.5) -> dict[str, float]:
    """The task's scores on a predictions frame (rows without a target are left out)."""
    rows = labelled(frame, task)
    if task.kind == "regression":
        return regression_scores(rows[f"{task.name}_target"], rows[f"{task.name}_pred"])
    if task.kind == "binary":
        return binary_scores(rows[f"{task.name}_target"].astype(int), rows[f"{task.name}_pred"], threshold)
    probs = rows[prediction_columns(task)].to_numpy()
    return multiclass_scores(rows[f"{task.name}_target"].to_numpy(), probs, list(task.classes))


def operating_threshold(run: Run, task: Task, method: str | float = "youden", sensitivity: float = 0.9) -> Threshold:
    """A binary task's threshold: a number (or `fixed` = 0.5) as given, else Youden's J or the target sensitivity
    on the run's validation predictions; 0.5, said so, when the run has none."""
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
    value = choose_threshold(target, rows[f"{task.name}_pred"], method, sensitivity)
    how = "Youden's J" if method == "youden" else f"sensitivity ≥ {sensitivity:g}"
    return Threshold(value, f"{value:.4f}, chosen on the validation split ({how}, n={len(rows)})")


def validation_threshold(run: Run, task: Task, method: str | float = "youden", sensitivity: float = 0.9) -> float:
    """Operating threshold of a binary task (see `operating_threshold`); 0.5 for other task kinds."""
    if task.kind != "binary":
        return FIXED_DEFAULT
    return operating_threshold(run, task, method, sensitivity).value


def metrics_with_ci(frame: pd.DataFrame, task: Task, threshold: float, n_boot: int = 1000,
                    seed: int = 0) -> pd.DataFrame:
    """One row per metric: value and 95 % patient-bootstrap interval (every metric from the same resamples)."""
    rows = labelled(frame, task)
    point = score(rows, task, threshold)
    names = CI_METRICS[task.kind]
    intervals = {}
    if n_boot:
        if "patient_id" not in rows:
            raise UserError(f"predictions of task {task.name} lack column patient_id, which the bootstrap resamples; "
                            f"add it or pass --boot 0")
        def replicate(sample: pd.DataFrame) -> dict[str, float]:
            scores = score(sample, task, threshold)
            return {m: scores[m] for m in names}

        intervals = patient_bootstrap_many(rows, replicate, n_boot=n_boot, seed=seed)
    table = [{"metric": m, "value": point[m], "ci_low": intervals.get(m, (np.nan, np.nan))[0],
              "ci_high": intervals.get(m, (np.nan, np.nan))[1]} for m in names]
    return pd.DataFrame(table)


def confusion_counts(frame: pd.DataFrame, task: Task, threshold: float) -> pd.DataFrame:
    """One row: n, threshold, TP, FP, TN, FN of a binary task at `threshold` (integers)."""
    scores = score(frame, task, threshold)
    return pd.DataFrame([{"n": int(scores["n"]), "threshold": threshold,
                          **{k: int(scores[k]) for k in CONFUSION_COUNTS}}])


def subgroup_table(frame: pd.DataFrame, task: Task, threshold: float, columns: tuple[str, ...] = ("sex",),
                   age_bands: tuple[float, ...] = AGE_BANDS) -> pd.DataFrame:
    """Scores per subgroup: each value of each column, and age bands; a fairness check. Columns absent from
    the frame are left out (see `missing_subgroups`)."""
    rows = labelled(frame, task)
    groups = {column: rows[column].astype("string") for column in columns if column in rows}
    if "age_years" in rows and age_bands:
        groups["age band"] = pd.cut(rows["age_years"], list(age_bands), right=False).astype("string")
    counts = CONFUSION_COUNTS if task.kind == "binary" else ()
    out = []
    for column, values in groups.items():
        for value, part in rows.groupby(values.fillna("missing"), sort=True):
            scores = score(part, task, threshold)
            out.append({"subgroup": column, "value": value, "n": int(scores["n"]),
                        **{k: scores[k] for k in CI_METRICS[task.kind]}, **{k: int(scores[k]) for k in counts}})
    return pd.DataFrame(out)


def missing_subgroups(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[str]:
    """Subgroup columns that a predictions frame lacks."""
    return [c for c in columns if c not in frame]
