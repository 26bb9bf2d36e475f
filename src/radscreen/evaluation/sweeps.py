"""Hydra multiruns and several experiments → one table (mean ± SD over seeds; thesis Tables 3.1, 4.4, 4.7–4.14)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from radscreen.errors import UserError
from radscreen.evaluation import formatting
from radscreen.evaluation.analysis import EVAL_SPLITS, Run, labelled, run_threshold, score
from radscreen.evaluation.uncertainty import delong_test
from radscreen.runs import is_failed
from radscreen.tasks import Task

IGNORED_OVERRIDES = ("hydra.", "paths.", "ckpt_path")


@dataclass(frozen=True)
class Jobs:
    """The finished jobs of a multirun (one row each) and the job folders left out because they failed."""

    table: pd.DataFrame
    failed: tuple[Path, ...]


def find_jobs(multirun_dir: str | Path) -> Jobs:
    """One row per finished job of a multirun folder (its overrides, one column each, the settings its config-group
    overrides set, and logged metrics); job folders marked FAILED are skipped and listed. UserError when the folder
    has no finished job."""
    folder = Path(multirun_dir)
    if not folder.exists():
        raise UserError(f"multirun folder {folder} does not exist")
    if not folder.is_dir():
        raise UserError(f"{folder} is a file; give the multirun folder that holds one folder per job")
    failed = tuple(job for job in sorted(p for p in folder.iterdir() if p.is_dir()) if is_failed(job))
    finished = [m.parent for m in sorted(folder.glob("*/metrics.json")) if m.parent not in failed]
    if not finished:
        reason = f"all {len(failed)} job(s) failed (FAILED marker)" if failed else "no finished jobs (*/metrics.json)"
        raise UserError(f"nothing to summarise in {folder}: {reason}")
    overrides = [_overrides(job) for job in finished]
    settings = group_settings([_saved_config(job) for job in finished], {k for row in overrides for k in row})
    rows = [{"job": job.name, **row, **setting, **_logged(job / "metrics.json")}
            for job, row, setting in zip(finished, overrides, settings)]
    return Jobs(pd.DataFrame(rows), failed)


def group_settings(configs: list[dict[str, object]], overridden: set[str]) -> list[dict[str, object]]:
    """Per job, the config values in which the jobs differ and that no override names: those a config-group
    override set, e.g. data.image_size and data.batch_size of `size=512_b20`. `configs` are the jobs' saved configs
    as flat dotted keys (interpolations unresolved, so values that follow another, like data.seed, never differ)."""
    keys = list(dict.fromkeys(k for config in configs for k in config))
    varying = [k for k in keys if k not in overridden and not k.startswith(IGNORED_OVERRIDES)
               and len({repr(config.get(k)) for config in configs}) > 1]
    return [{k: config.get(k) for k in varying} for config in configs]


def _saved_config(job: Path) -> dict[str, object]:
    """The job's composed config as Hydra saved it (.hydra/config.yaml, unresolved) as flat dotted keys; {} without."""
    config_file = job / ".hydra" / "config.yaml"
    return _flat(OmegaConf.to_container(OmegaConf.load(config_file), resolve=False)) if config_file.exists() else {}


def _flat(node: object, prefix: str = "") -> dict[str, object]:
    """Nested mappings (and lists holding mappings) → {dotted key: value}; a list of plain values reads [a, b]."""
    if isinstance(node, dict):
        return {k: v for key, value in node.items() for k, v in _flat(value, f"{prefix}{key}.").items()}
    if isinstance(node, list) and any(isinstance(item, (dict, list)) for item in node):
        return {k: v for i, item in enumerate(node) for k, v in _flat(item, f"{prefix}{i}.").items()}
    if isinstance(node, list):
        return {prefix[:-1]: f"[{', '.join(str(item) for item in node)}]"}
    return {prefix[:-1]: node}


def _overrides(job: Path) -> dict[str, str]:
    overrides_file = job / ".hydra" / "overrides.yaml"
    overrides = list(OmegaConf.load(overrides_file)) if overrides_file.exists() else []
    row = {}
    for override in overrides:
        key, _, value = str(override).lstrip("+~").partition("=")
        if not key.startswith(IGNORED_OVERRIDES):
            row[key] = value
    return row


def _logged(metrics_file: Path) -> dict[str, float]:
    try:
        return json.loads(metrics_file.read_text()).get("metrics", {})
    except (json.JSONDecodeError, AttributeError):
        raise UserError(f"{metrics_file} is not a metrics.json written by train.py (not a JSON object)") from None


def collect_jobs(multirun_dir: str | Path) -> pd.DataFrame:
    """The table of `find_jobs` (finished jobs not marked FAILED)."""
    return find_jobs(multirun_dir).table


def summarize_jobs(jobs: pd.DataFrame, metrics: list[str] | None = None,
                   over: tuple[str, ...] = ("seed",)) -> pd.DataFrame:
    """Group jobs by every override except `over` (seeds) and report mean, SD and count of each metric."""
    metric_columns = metrics or [c for c in jobs.columns if c.startswith(("test/", "external/", "val/"))
                                 and not c.endswith("_loss")]
    missing = [m for m in metric_columns if m not in jobs]
    if missing:
        logged = sorted(c for c in jobs.columns if "/" in c)
        raise UserError(f"metric(s) {', '.join(missing)} were not logged by these jobs; they logged: "
                        f"{', '.join(logged)}")
    if not metric_columns:
        raise UserError("these jobs logged no val/, test/ or external/ metric; name some with --metrics")
    keys = [c for c in jobs.columns if c not in metric_columns and c != "job" and c not in over
            and not c.startswith(("train/", "val/", "test/", "external/"))]
    grouped = jobs.groupby(keys, dropna=False, sort=True) if keys else jobs.groupby(lambda _: "all")
    summary = grouped[metric_columns].agg(["mean", "std", "count"])
    out = pd.DataFrame(index=summary.index)
    for metric in metric_columns:
        mean, sd = summary[(metric, "mean")], summary[(metric, "std")]
        out[metric] = [formatting.mean_sd_text(m, s) for m, s in zip(mean, sd)]
    out["runs"] = summary[(metric_columns[0], "count")].astype(int)
    return out.reset_index()


def paired_delong(first: pd.DataFrame, other: pd.DataFrame, task: Task, names: tuple[str, str] = ("first", "other"),
                  split: str = "test") -> dict[str, float]:
    """DeLong's test of two runs' AUCs on the images both scored (joined on image_id): the counts of each run and
    of the shared images, both AUCs on the shared images and the p-value. UserError when no labelled image is
    shared, when the runs' labels of a shared image differ, or when the shared images hold one class only."""
    target, pred = f"{task.name}_target", f"{task.name}_pred"
    a, b = (labelled(f, task)[["image_id", target, pred]] for f in (first, other))
    for frame, name in ((a, names[0]), (b, names[1])):
        if frame["image_id"].duplicated().any():
            raise UserError(f"{split} predictions of run {name} list an image_id more than once; DeLong's paired test "
                            f"needs one prediction per image")
    joined = a.merge(b, on="image_id", suffixes=("_a", "_b"))
    what = f"task {task.name}, {split}: run {names[1]} ({len(b)} images) and run {names[0]} ({len(a)} images)"
    if joined.empty:
        raise UserError(f"{what} share no labelled image_id; DeLong's paired test needs the same images")
    differ = int((joined[f"{target}_a"] != joined[f"{target}_b"]).sum())
    if differ:
        raise UserError(f"{what} disagree on the label of {differ} of {len(joined)} shared images; compare runs "
                        f"evaluated against the same labels")
    if joined[f"{target}_a"].nunique() < 2:
        raise UserError(f"{what} share {len(joined)} images of one class only; DeLong's test needs both classes")
    result = delong_test(joined[f"{target}_a"].astype(int), joined[f"{pred}_a"], joined[f"{pred}_b"])
    return {"n_first": len(a), "n_shared": len(joined), "auroc_first_shared": result["auc_a"],
            "auroc_shared": result["auc_b"], "delong_p_vs_first": result["p_value"]}


def compare_runs(runs: list[Run], threshold_method: str | float | None = "youden",
                 sensitivity: float = 0.9) -> pd.DataFrame:
    """Several experiments on the same internal and external sets: one row per run × split × task with the run's
    scores on all its images; for binary tasks, DeLong's test against the first run with that task on the images
    both runs share (n_shared, n_first: how many; auroc_shared, auroc_first_shared: both AUCs on them).
    threshold_method None: each run's saved operating point (see analysis.run_threshold)."""
    labels = run_labels(runs)
    rows = []
    for run in runs:
        for split in EVAL_SPLITS:
            if split not in run.predictions:
                continue
            for task in run.tasks.values():
                if f"{task.name}_target" not in run.predictions[split]:
                    continue
                threshold = run_threshold(run, task, threshold_method, sensitivity).value \
                    if task.thresholded else 0.5
                row = {"run": labels[id(run)], "split": split, "task": task.name,
                       **{k: v for k, v in score(run.predictions[split], task, threshold).items()
                          if k not in ("tp", "fp", "tn", "fn")}}
                reference = next(r for r in runs if f"{task.name}_target" in r.predictions.get(split, {}))
                if task.thresholded and run is not reference:
                    row.update(paired_delong(reference.predictions[split], run.predictions[split], task,
                                             (labels[id(reference)], labels[id(run)]), split))
                rows.append(row)
    return pd.DataFrame(rows)


def run_labels(runs: list[Run]) -> dict[int, str]:
    """A name per run (keyed by id(run)): its run_name, or its folder when several runs share that name."""
    names = [run.name for run in runs]
    return {id(run): run.name if names.count(run.name) == 1 else str(run.directory) for run in runs}


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table: counts as integers, p-values to 3 significant digits, other numbers
    to 4 decimals (see `radscreen.evaluation.formatting`)."""
    return formatting.to_markdown(table)
