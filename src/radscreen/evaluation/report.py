"""One self-contained HTML report per run: metric tables with CIs, subgroups with CIs, the operating point and
calibration (reliability before / after, ECE and Brier score), embedded figures, config summary."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from radscreen.evaluation.analysis import (
    ReportOptions,
    Run,
    TaskTables,
    calibrated_column,
    evaluation_tables,
    labelled,
    load_run,
    missing_subgroups,
)
from radscreen.evaluation.formatting import METRIC_NAMES, to_html, with_intervals
from radscreen.evaluation.screening import describe_calibration
from radscreen.tasks import Task
from radscreen.utils.tables import write_csv, write_text

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f2f2f2}h2{border-bottom:2px solid #ddd;padding-bottom:4px}img{max-width:32%;margin:4px}
.note{color:#666;font-size:0.9em}"""
__all__ = ["ReportOptions", "build_report"]  # ReportOptions lives in analysis, shared with the model card


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
             "tasks": ", ".join(f"{t.name} ({t.label()})" for t in run.tasks.values()),
             "image size": data.get("image_size"), "manifest": data.get("manifest"),
             "transfer from": model.get("init_from"), "fusion": (model.get("fusion") or {}).get("inputs"),
             "seed": c.get("seed")}
    items.update({f"{split} images": len(frame) for split, frame in run.predictions.items()})
    return pd.DataFrame({"setting": list(items), "value": [str(v) for v in items.values()]})


def _named_metrics(table: pd.DataFrame) -> pd.DataFrame:
    """The metric table with readable metric names (the CSV keeps the keys)."""
    return table.assign(metric=table["metric"].map(lambda m: METRIC_NAMES.get(m, m)))


def _split_heading(frame: pd.DataFrame, task: Task, split: str) -> str:
    rows = labelled(frame, task)
    patients = f", {rows['patient_id'].nunique()} patients" if "patient_id" in rows else ""
    return f"<h3>{html.escape(split)}: {len(rows)} images{patients}</h3>"


def _operating_point(run: Run, tables: TaskTables, task_name: str) -> list[str]:
    """The binary task's threshold and, when the run saved one, its operating point and calibration."""
    out = [_note(f"Operating threshold {tables.threshold.how}; applied unchanged below."),
           _note("Thresholded metrics use the calibrated probabilities when the predictions have them; the AUC "
                 "ranks the raw ones.")]
    saved = run.operating_point.tasks.get(task_name) if run.operating_point else None
    if saved is not None:
        items = {"threshold": f"{saved.threshold:.4f}", "chosen by": saved.method,
                 "validation images": saved.n_validation, "calibration": describe_calibration(saved.calibration),
                 "source": run.operating_point.source}
        out += ["<h3>Operating point (operating_point.json)</h3>",
                to_html(pd.DataFrame({"setting": list(items), "value": [str(v) for v in items.values()]}))]
        if abs(saved.threshold - tables.threshold.value) > 1e-12:
            out.append(_note(f"This report's threshold ({tables.threshold.value:.4f}) is not the run's saved one "
                             f"({saved.threshold:.4f}): it was asked for another method."))
    return out


def build_report(run_dir: str | Path | Run, out_dir: str | Path | None = None,
                 options: ReportOptions = ReportOptions(), tables: Mapping[str, TaskTables] | None = None) -> Path:
    """Write report.html (and the tables as CSV, figures as PNG) into out_dir (default RUN/report); every file is
    written atomically. `run_dir` is a run folder or a Run from `load_run`; `tables` the run's
    `evaluation_tables` when they are already computed (eval.py shares them with the model card)."""
    run = run_dir if isinstance(run_dir, Run) else load_run(run_dir)
    tables = tables if tables is not None else evaluation_tables(run, options)
    out = Path(out_dir) if out_dir else run.directory / "report"
    (out / "figures").mkdir(parents=True, exist_ok=True)
    sections = [f"<h1>radscreen report: {html.escape(run.name)}</h1>",
                "<h2>Run</h2>", to_html(_config_summary(run))]
    card = run.directory / "model_card.md"
    if card.is_file():
        sections.append(_note(f"Model card: {card}"))
    for task in run.tasks.values():
        sections.append(f"<h2>Task {html.escape(task.name)} ({task.kind}, column {html.escape(task.column)})</h2>")
        task_tables = tables[task.name]
        threshold = task_tables.threshold.value if task_tables.threshold else 0.5
        if task.thresholded:
            sections += _operating_point(run, task_tables, task.name)
        for split, table in task_tables.metrics.items():
            frame = run.predictions[split]
            groups = task_tables.subgroups[split]
            write_csv(table, out / f"metrics_{task.name}_{split}.csv")
            write_csv(groups, out / f"subgroups_{task.name}_{split}.csv")
            figures = task.figures(frame, out / "figures" / f"{task.name}_{split}", f"{task.name}, {split}", threshold)
            sections += [_split_heading(frame, task, split), to_html(_named_metrics(table)),
                         _note(f"95 % intervals: bootstrap over patients ({options.n_boot} resamples)." if
                               options.n_boot else "No intervals (--boot 0).")]
            if task.thresholded and calibrated_column(task) not in frame:
                sections.append(_note("No calibrated probabilities in these predictions: thresholds and ECE / "
                                      "Brier score are on the raw ones."))
            if split in task_tables.confusion:
                counts = task_tables.confusion[split]
                write_csv(counts, out / f"confusion_{task.name}_{split}.csv")
                sections += ["<h4>Confusion counts at the operating threshold</h4>", to_html(counts)]
            sections += ["<h4>Subgroups</h4>", to_html(with_intervals(groups))]
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
