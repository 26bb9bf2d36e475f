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
    load_run,
    metrics_with_ci,
    subgroup_table,
    validation_threshold,
)

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f2f2f2}h2{border-bottom:2px solid #ddd;padding-bottom:4px}img{max-width:32%;margin:4px}
.note{color:#666;font-size:0.9em}"""


@dataclass(frozen=True)
class ReportOptions:
    threshold_method: str = "youden"  # youden | sensitivity | fixed (0.5)
    target_sensitivity: float = 0.9
    subgroups: tuple[str, ...] = ("sex",)
    n_boot: int = 1000
    seed: int = 0


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}">'


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


def build_report(run_dir: str | Path, out_dir: str | Path | None = None,
                 options: ReportOptions = ReportOptions()) -> Path:
    """Write report.html (and the tables as CSV, figures as PNG) into out_dir (default RUN/report)."""
    run = load_run(run_dir)
    out = Path(out_dir) if out_dir else run.directory / "report"
    (out / "figures").mkdir(parents=True, exist_ok=True)
    sections = [f"<h1>radscreen report: {html.escape(run.name)}</h1>",
                "<h2>Run</h2>", _config_summary(run).to_html(index=False)]
    for task in run.tasks.values():
        threshold = validation_threshold(run, task, options.threshold_method, options.target_sensitivity)
        sections.append(f"<h2>Task {html.escape(task.name)} ({task.kind}, column {html.escape(task.column)})</h2>")
        if task.kind == "binary":
            sections.append(f'<p class="note">Operating threshold {threshold:.4f}, chosen on the validation split '
                            f"({options.threshold_method}) and applied unchanged below.</p>")
        for split in EVAL_SPLITS:
            frame = run.predictions.get(split)
            if frame is None or f"{task.name}_target" not in frame or frame[f"{task.name}_target"].notna().sum() == 0:
                continue
            table = metrics_with_ci(frame, task, threshold, options.n_boot, options.seed)
            groups = subgroup_table(frame, task, threshold, options.subgroups)
            table.to_csv(out / f"metrics_{task.name}_{split}.csv", index=False)
            groups.to_csv(out / f"subgroups_{task.name}_{split}.csv", index=False)
            figures = plots.task_figures(frame, task, out / "figures", split, threshold)
            sections += [f"<h3>{split}: {int(frame[f'{task.name}_target'].notna().sum())} images, "
                         f"{frame.loc[frame[f'{task.name}_target'].notna(), 'patient_id'].nunique()} patients</h3>",
                         table.to_html(index=False, float_format="%.4f"),
                         '<p class="note">95 % intervals: bootstrap over patients '
                         f"({options.n_boot} resamples).</p>",
                         "<h4>Subgroups</h4>", groups.to_html(index=False, float_format="%.4f"),
                         "<div>" + "".join(_img(p) for p in figures) + "</div>"]
    cams = sorted((run.directory / "cam").glob("*average*.png")) if (run.directory / "cam").exists() else []
    if cams:
        sections += ["<h2>Class-activation maps</h2>", "<div>" + "".join(_img(p) for p in cams[:6]) + "</div>"]
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>radscreen: {html.escape(run.name)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>")
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
