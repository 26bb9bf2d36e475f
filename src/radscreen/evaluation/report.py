"""One self-contained HTML report per run: metric tables with CIs, subgroups, embedded figures, config summary."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from radscreen.evaluation import plots
from radscreen.evaluation.analysis import (
    EVAL_SPLITS,
    Run,
    confusion_counts,
    labelled,
    load_run,
    metrics_with_ci,
    missing_subgroups,
    operating_threshold,
    subgroup_table,
)
from radscreen.evaluation.formatting import to_html
from radscreen.utils.tables import write_csv, write_text

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f2f2f2}h2{border-bottom:2px solid #ddd;padding-bottom:4px}img{max-width:32%;margin:4px}
.note{color:#666;font-size:0.9em}"""
METRIC_NAMES = {"mae": "MAE", "rmse": "RMSE", "r2": "R²", "within4": "share within ±4", "within9": "share within ±9",
                "mean_error": "error mean (pred − true)", "sd_error": "error SD", "pearson": "Pearson r"}


@dataclass(frozen=True)
class ReportOptions:
    threshold_method: str | float = "youden"  # youden | sensitivity | a number such as 0.35 | fixed (= 0.5)
    target_sensitivity: float = 0.9
    subgroups: tuple[str, ...] = ("sex",)
    n_boot: int = 1000
    seed: int = 0


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}">'


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _config_summary(run: Run) -> pd.DataFrame:
    c = run.config
    data = c.get("data", {}) or {}
    backbone = c.get("backbone", {}) or {}
    model = c.get("model", {}) or {}
    items = {"run": run.name, "folder": str(run.directory), "backbone": backbone.get("name"),
             "tasks": ", ".join(f"{t.name} ({t.kind}, {t.loss})" for t in run.tasks.values()),
             "image size": data.get("image_size"), "manifest": data.get("manifest"),
             "transfer from": model.get("init_from"), "fusion": (model.get("fusion") or {}).get("inputs"),
             "seed": c.get("seed")}
    items.update({f"{split} images": len(frame) for split, frame in run.predictions.items()})
    return pd.DataFrame({"setting": list(items), "value": [str(v) for v in items.values()]})


def _named_metrics(table: pd.DataFrame) -> pd.DataFrame:
    """The metric table with readable metric names (the CSV keeps the keys)."""
    return table.assign(metric=table["metric"].map(lambda m: METRIC_NAMES.get(m, m)))


def _split_heading(frame: pd.DataFrame, task_name: str, split: str) -> str:
    rows = frame[frame[f"{task_name}_target"].notna()]
    patients = f", {rows['patient_id'].nunique()} patients" if "patient_id" in rows else ""
    return f"<h3>{html.escape(split)}: {len(rows)} images{patients}</h3>"


def build_report(run_dir: str | Path | Run, out_dir: str | Path | None = None,
                 options: ReportOptions = ReportOptions()) -> Path:
    """Write report.html (and the tables as CSV, figures as PNG) into out_dir (default RUN/report); every file is
    written atomically. `run_dir` is a run folder or a Run from `load_run`."""
    run = run_dir if isinstance(run_dir, Run) else load_run(run_dir)
    out = Path(out_dir) if out_dir else run.directory / "report"
    (out / "figures").mkdir(parents=True, exist_ok=True)
    sections = [f"<h1>radscreen report: {html.escape(run.name)}</h1>",
                "<h2>Run</h2>", to_html(_config_summary(run))]
    for task in run.tasks.values():
        sections.append(f"<h2>Task {html.escape(task.name)} ({task.kind}, column {html.escape(task.column)})</h2>")
        threshold = 0.5
        if task.kind == "binary":
            chosen = operating_threshold(run, task, options.threshold_method, options.target_sensitivity)
            threshold = chosen.value
            sections.append(_note(f"Operating threshold {chosen.how}; applied unchanged below."))
        for split in EVAL_SPLITS:
            frame = run.predictions.get(split)
            if frame is None or f"{task.name}_target" not in frame or labelled(frame, task).empty:
                continue
            table = metrics_with_ci(frame, task, threshold, options.n_boot, options.seed)
            groups = subgroup_table(frame, task, threshold, options.subgroups)
            write_csv(table, out / f"metrics_{task.name}_{split}.csv")
            write_csv(groups, out / f"subgroups_{task.name}_{split}.csv")
            figures = plots.task_figures(frame, task, out / "figures", split, threshold)
            sections += [_split_heading(frame, task.name, split), to_html(_named_metrics(table)),
                         _note(f"95 % intervals: bootstrap over patients ({options.n_boot} resamples)." if
                               options.n_boot else "No intervals (--boot 0).")]
            if task.kind == "binary":
                counts = confusion_counts(frame, task, threshold)
                write_csv(counts, out / f"confusion_{task.name}_{split}.csv")
                sections += ["<h4>Confusion counts at the operating threshold</h4>", to_html(counts)]
            sections += ["<h4>Subgroups</h4>", to_html(groups)]
            skipped = missing_subgroups(frame, options.subgroups)
            if skipped:
                sections.append(_note(f"Not in the {split} predictions, so not broken down: {', '.join(skipped)}."))
            sections.append("<div>" + "".join(_img(p) for p in figures) + "</div>")
    cams = sorted((run.directory / "cam").glob("*average*.png")) if (run.directory / "cam").exists() else []
    if cams:
        sections += ["<h2>Class-activation maps</h2>", "<div>" + "".join(_img(p) for p in cams[:6]) + "</div>"]
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>radscreen: {html.escape(run.name)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>")
    return write_text(page, out / "report.html")
