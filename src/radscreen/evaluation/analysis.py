"""A run's predictions → tables: metrics with patient-bootstrap CIs, thresholds from validation, subgroups."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from radscreen.evaluation.scores import binary_scores, choose_threshold, multiclass_scores, regression_scores
from radscreen.evaluation.uncertainty import patient_bootstrap
from radscreen.tasks import Task, as_tasks

EVAL_SPLITS = ("test", "external")
AGE_BANDS = (0, 40, 60, 80, 200)
CI_METRICS = {"regression": ("mae", "rmse", "r2", "within4", "within9"),
              "binary": ("auroc", "sensitivity", "specificity", "ppv", "npv", "f1", "accuracy"),
              "multiclass": ("auroc", "accuracy", "f1")}


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


def load_run(directory: str | Path) -> Run:
    """Predictions CSVs, logged metrics and config of a run folder."""
    directory = Path(directory)
    predictions = {path.stem.removeprefix("predictions_"): pd.read_csv(path, low_memory=False)
                   for path in sorted(directory.glob("predictions_*.csv"))}
    if not predictions:
        raise FileNotFoundError(f"no predictions_*.csv in {directory}: is it a train.py / eval.py run folder?")
    config = _find_config(directory)
    if "task" not in config:
        raise ValueError(f"no task configuration found for {directory} (.hydra/config.yaml)")
    metrics_file = directory / "metrics.json"
    logged = json.loads(metrics_file.read_text()).get("metrics", {}) if metrics_file.exists() else {}
    return Run(directory, as_tasks(config["task"]), predictions, logged, config)


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
    probs = rows[[f"{task.name}_prob_{c}" for c in task.classes]].to_numpy()
    return multiclass_scores(rows[f"{task.name}_target"].to_numpy(), probs, list(task.classes))


def validation_threshold(run: Run, task: Task, method: str = "youden", sensitivity: float = 0.9) -> float:
    """Operating threshold of a binary task chosen on the run's validation predictions (0.5 without them)."""
    if task.kind != "binary" or "val" not in run.predictions or method == "fixed":
        return 0.5
    rows = labelled(run.predictions["val"], task)
    return choose_threshold(rows[f"{task.name}_target"].astype(int), rows[f"{task.name}_pred"], method, sensitivity)


def metrics_with_ci(frame: pd.DataFrame, task: Task, threshold: float, n_boot: int = 1000,
                    seed: int = 0) -> pd.DataFrame:
    """One row per metric: value and 95 % patient-bootstrap interval."""
    rows = labelled(frame, task)
    point = score(rows, task, threshold)
    table = []
    for metric in CI_METRICS[task.kind]:
        low, high = patient_bootstrap(rows, lambda f, m=metric: score(f, task, threshold)[m], n_boot=n_boot,
                                      seed=seed) if n_boot else (np.nan, np.nan)
        table.append({"metric": metric, "value": point[metric], "ci_low": low, "ci_high": high})
    return pd.DataFrame(table)


def subgroup_table(frame: pd.DataFrame, task: Task, threshold: float, columns: tuple[str, ...] = ("sex",),
                   age_bands: tuple[float, ...] = AGE_BANDS) -> pd.DataFrame:
    """Scores per subgroup: each value of each column, and age bands; a fairness check."""
    rows = labelled(frame, task)
    groups = {column: rows[column].astype("string") for column in columns if column in rows}
    if "age_years" in rows and age_bands:
        groups["age band"] = pd.cut(rows["age_years"], list(age_bands), right=False).astype("string")
    out = []
    for column, values in groups.items():
        for value, part in rows.groupby(values.fillna("missing"), sort=True):
            scores = score(part, task, threshold)
            out.append({"subgroup": column, "value": value, "n": int(scores["n"]),
                        **{k: scores[k] for k in CI_METRICS[task.kind]}})
    return pd.DataFrame(out)
