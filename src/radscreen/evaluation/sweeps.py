"""Hydra multiruns and several experiments → one table (mean ± SD over seeds; thesis Tables 3.1, 4.4, 4.7–4.14)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from radscreen.evaluation.analysis import EVAL_SPLITS, Run, labelled, score, validation_threshold
from radscreen.evaluation.uncertainty import delong_test

IGNORED_OVERRIDES = ("hydra.", "paths.", "ckpt_path")


def collect_jobs(multirun_dir: str | Path) -> pd.DataFrame:
    """One row per finished job of a multirun folder: its overrides (one column each) and logged metrics."""
    rows = []
    for metrics_file in sorted(Path(multirun_dir).glob("*/metrics.json")):
        job = metrics_file.parent
        overrides_file = job / ".hydra" / "overrides.yaml"
        overrides = list(OmegaConf.load(overrides_file)) if overrides_file.exists() else []
        row = {"job": job.name}
        for override in overrides:
            key, _, value = override.lstrip("+~").partition("=")
            if not key.startswith(IGNORED_OVERRIDES):
                row[key] = value
        row.update(json.loads(metrics_file.read_text()).get("metrics", {}))
        rows.append(row)
    if not rows:
        raise FileNotFoundError(f"no finished jobs (*/metrics.json) in {multirun_dir}")
    return pd.DataFrame(rows)


def summarize_jobs(jobs: pd.DataFrame, metrics: list[str] | None = None,
                   over: tuple[str, ...] = ("seed",)) -> pd.DataFrame:
    """Group jobs by every override except `over` (seeds) and report mean, SD and count of each metric."""
    metric_columns = metrics or [c for c in jobs.columns if c.startswith(("test/", "external/", "val/"))
                                 and not c.endswith("_loss")]
    missing = [m for m in metric_columns if m not in jobs]
    if missing:
        raise KeyError(f"metric(s) {missing} were not logged by these jobs; they have: {sorted(jobs.columns)}")
    keys = [c for c in jobs.columns if c not in metric_columns and c != "job" and c not in over
            and not c.startswith(("train/", "val/", "test/", "external/"))]
    grouped = jobs.groupby(keys, dropna=False, sort=True) if keys else jobs.groupby(lambda _: "all")
    summary = grouped[metric_columns].agg(["mean", "std", "count"])
    out = pd.DataFrame(index=summary.index)
    for metric in metric_columns:
        mean, sd, count = summary[(metric, "mean")], summary[(metric, "std")], summary[(metric, "count")]
        out[metric] = [f"{m:.3f} ± {s:.3f}" if c > 1 else f"{m:.3f}" for m, s, c in zip(mean, sd, count)]
    out["runs"] = summary[(metric_columns[0], "count")].astype(int)
    return out.reset_index()


def compare_runs(runs: list[Run], threshold_method: str = "youden") -> pd.DataFrame:
    """Several experiments on the same internal and external sets: one row per run × split × task; for binary
    tasks, DeLong's p-value against the first run with that task when both scored the same images."""
    rows = []
    for run in runs:
        for split in EVAL_SPLITS:
            if split not in run.predictions:
                continue
            for task in run.tasks.values():
                if f"{task.name}_target" not in run.predictions[split]:
                    continue
                threshold = validation_threshold(run, task, threshold_method)
                row = {"run": run.name, "split": split, "task": task.name,
                       **{k: v for k, v in score(run.predictions[split], task, threshold).items()
                          if k not in ("tp", "fp", "tn", "fn")}}
                reference = next(r for r in runs if f"{task.name}_target" in r.predictions.get(split, {}))
                if task.kind == "binary" and run is not reference:
                    row["delong_p_vs_first"] = _delong(reference.predictions[split], run.predictions[split], task)
                rows.append(row)
    return pd.DataFrame(rows)


def _delong(first: pd.DataFrame, other: pd.DataFrame, task) -> float:
    a, b = labelled(first, task), labelled(other, task)
    joined = a.merge(b, on="image_id", suffixes=("_a", "_b"))
    same_cases = len(joined) == len(a) == len(b) and \
        (joined[f"{task.name}_target_a"] == joined[f"{task.name}_target_b"]).all()
    if not same_cases:
        return float("nan")  # not the same test images and labels: AUCs are not paired
    return delong_test(joined[f"{task.name}_target_a"].astype(int), joined[f"{task.name}_pred_a"],
                       joined[f"{task.name}_pred_b"])["p_value"]


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (floats to 4 digits)."""
    return table.to_markdown(index=False, floatfmt=".4f")
