"""model_card.md of an evaluation (train.py after fitting, eval.py), generated from the run folder alone.

Every statement is filled from the folder: its config (config_resolved.yaml / .hydra/config.yaml), metrics.json
(the data module's describe(): sizes, split settings, preprocessing, dropped images), selection.csv, the
predictions CSVs (age, sex and cohort of every image of every split), operating_point.json and the command that
ran. Metrics and subgroups come from `analysis.evaluation_tables`, the very tables the HTML report shows.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from radscreen.errors import ConfigError
from radscreen.evaluation.analysis import (
    EVAL_SPLITS,
    ReportOptions,
    Run,
    TaskTables,
    evaluation_tables,
    labelled,
    load_run,
)
from radscreen.evaluation.formatting import METRIC_NAMES, MISSING, interval_text, mean_sd_text, to_markdown
from radscreen.evaluation.screening import describe_calibration
from radscreen.runs import find_run_dir, saved_overrides
from radscreen.tasks import Task
from radscreen.utils.tables import write_text

CARD_FILE = "model_card.md"
SPLITS = ("train", "val", "test", "external")
SMALL_VALIDATION = 100  # images: below this, calibration, threshold and checkpoint choice are called unstable
SMALL_TEST = 100
SMALL_SUBGROUP = 30
FEW_POSITIVES = 10
SYNTHETIC_WORDS = ("synthetic", "phantom", "simulated")

def write_model_card(folder: str | Path, options: ReportOptions = ReportOptions(), command: str = "",
                     tables: Mapping[str, TaskTables] | None = None) -> Path:
    """Write FOLDER/model_card.md (atomically) for the evaluation whose outputs are in `folder`; `command` is the
    line that reproduces it, `tables` the run's evaluation_tables when already computed."""
    run = load_run(folder)
    tables = tables if tables is not None else evaluation_tables(run, options)
    record = _metrics_record(run.directory)
    card = ModelCard(run, tables, record, options, command)
    return write_text(card.render(), run.directory / CARD_FILE)


def _metrics_record(folder: Path) -> dict:
    path = folder / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines) if lines else f"- {MISSING}"


def _settings(items: Mapping[str, object]) -> str:
    """A two-column Markdown table of the settings that are set."""
    kept = {k: v for k, v in items.items() if v not in (None, "", [], {}, ())}
    if not kept:
        return "(none)"
    return to_markdown(pd.DataFrame({"setting": list(kept), "value": [_text(v) for v in kept.values()]}))


def _text(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_text(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class ModelCard:
    """The sections of a model card, each built from the run folder."""

    def __init__(self, run: Run, tables: Mapping[str, TaskTables], record: dict, options: ReportOptions,
                 command: str) -> None:
        self.run, self.tables, self.record, self.options, self.command = run, tables, record, options, command
        self.config = run.config
        self.data = record.get("data", {}) or {}
        self.frames = {s: run.predictions[s] for s in SPLITS if s in run.predictions}
        self.is_eval = bool(self.config.get("ckpt_path")) and "checkpoint" in record
        training = _training_folder(self.config.get("ckpt_path")) if self.is_eval else None
        self.training_record = _metrics_record(training) if training else record
        self.monitor = self.training_record.get("monitor") or self.config.get("monitor")

    # ----------------------------------------------------------------- facts
    @property
    def modality(self) -> str:
        target = str(((self.config.get("data") or {}).get("preprocess") or {}).get("_target_", ""))
        return "CT volumes (projected to 2-D)" if "CT" in target.rsplit(".", 1)[-1] else "chest radiographs"

    def cohorts(self) -> dict[str, int]:
        """Images per cohort value over all splits ('not recorded' for empty values)."""
        values = [frame["cohort"] if "cohort" in frame else pd.Series(np.nan, index=frame.index)
                  for frame in self.frames.values()]
        if not values:
            return {}
        counts = pd.concat(values).fillna("not recorded").astype(str).replace("", "not recorded").value_counts()
        return {str(k): int(v) for k, v in counts.items()}

    def synthetic_cohorts(self) -> list[str]:
        return [c for c in self.cohorts() if any(word in c.lower() for word in SYNTHETIC_WORDS)]

    def n_images(self, split: str) -> int:
        sizes = self.data.get("sizes") or {}
        if split in sizes:
            return int(sizes[split])
        return len(self.frames[split]) if split in self.frames else 0

    def train_ages(self) -> pd.Series:
        frame = self.frames.get("train")
        return frame["age_years"].dropna() if frame is not None and "age_years" in frame else pd.Series(dtype=float)

    def train_sexes(self) -> list[str]:
        frame = self.frames.get("train")
        return sorted(frame["sex"].dropna().astype(str).unique()) if frame is not None and "sex" in frame else []

    def binary_tasks(self) -> list[Task]:
        return [t for t in self.run.tasks.values() if t.thresholded]

    # ----------------------------------------------------------------- sections
    def render(self) -> str:
        parts = [self.header(), self.intended_use(), self.out_of_scope(), self.training_data(), self.preprocessing(),
                 self.model(), self.metrics(), self.subgroups(), self.operating_point(), self.limitations(),
                 self.reproduce()]
        return "\n\n".join(parts).rstrip() + "\n"

    def header(self) -> str:
        what = "eval.py evaluation of a trained checkpoint" if self.is_eval else "train.py run, evaluated after fitting"
        boot = (f"95 % intervals by bootstrap over patients ({self.options.n_boot} resamples, seed "
                f"{self.options.seed})" if self.options.n_boot else "no intervals (report.n_boot=0)")
        return (f"# Model card: {self.run.name}\n\n"
                f"A {what}, written from its run folder `{self.run.directory}`: config, metrics.json, selection.csv, "
                f"predictions_*.csv and operating_point.json. Metrics are computed on the predictions CSVs; {boot}.")

    def intended_use(self) -> str:
        lines = [f"Research on {self.modality}: " + "; ".join(t.describe() for t in self.run.tasks.values())
                 + "."]
        ages, sexes = self.train_ages(), self.train_sexes()
        if len(ages):
            lines.append(f"Inputs like the training images: {self.modality} preprocessed as below, of patients "
                         f"aged {ages.min():.0f}–{ages.max():.0f} years" +
                         (f", sex {' and '.join(sexes)}" if sexes else "") + ".")
        if self.binary_tasks():
            lines.append("A screener reads the calibrated probability (`<task>_pred_calibrated`) and the decision at "
                         "the saved operating point (operating_point.json; predict.py applies both).")
        return "## Intended use\n\n" + _bullets(lines)

    def out_of_scope(self) -> str:
        lines = ["Diagnosis or treatment decisions on their own: the model was not validated prospectively, and a "
                 "flag calls for the confirmatory test (e.g. DXA for osteoporosis)."]
        ages, sexes = self.train_ages(), self.train_sexes()
        if len(ages):
            lines.append(f"Patients outside the training ages ({ages.min():.0f}–{ages.max():.0f} years)" +
                         (f" or of another sex than {' and '.join(sexes)}" if len(sexes) == 1 else "") + ".")
        cohorts = [c for c in self.cohorts() if c != "not recorded"]
        where = f"cohort(s) {', '.join(cohorts)}" if cohorts else "the training manifest"
        lines.append(f"Images from other sites, devices, views or modalities than {where}" +
                     ("" if "external" in self.frames else ": no external set was evaluated") + ".")
        if self.binary_tasks():
            lines.append("Other thresholds, or these probabilities without their calibration: both belong to this "
                         "checkpoint and were fitted on its validation split.")
        return "## Out-of-scope use\n\n" + _bullets(lines)

    def split_table(self) -> pd.DataFrame:
        rows = []
        for split, frame in self.frames.items():
            row = {"split": split, "images": len(frame)}
            if "patient_id" in frame:
                row["patients"] = frame["patient_id"].nunique()
            if "age_years" in frame:
                age = frame["age_years"].dropna()
                row["age, mean ± SD (range)"] = (f"{mean_sd_text(age.mean(), age.std(ddof=1), 1)} ({age.min():.0f}–"
                                                 f"{age.max():.0f})" if len(age) > 1 else MISSING)
            if "sex" in frame:
                sex = frame["sex"].dropna().astype(str)
                row["female"] = f"{(sex == 'F').sum()} ({(sex == 'F').mean():.0%})" if len(sex) else MISSING
            for task in self.run.tasks.values():
                if f"{task.name}_target" not in frame:
                    continue
                rows_task = labelled(frame, task)
                row[f"{task.name} labelled"] = len(rows_task)
                if task.thresholded:
                    positive = int(rows_task[f"{task.name}_target"].sum())
                    row[f"{task.name} positive"] = f"{positive} ({positive / len(rows_task):.0%})" if len(rows_task) \
                        else MISSING
            rows.append(row)
        return pd.DataFrame(rows)

    def training_data(self) -> str:
        data_cfg = self.config.get("data") or {}
        cohorts = self.cohorts()
        lines = [f"Manifest: `{data_cfg.get('manifest', MISSING)}`" +
                 (f"; external manifest: `{data_cfg['external_manifest']}`" if data_cfg.get("external_manifest")
                  else "") + ".",
                 "Cohorts (images): " + (", ".join(f"{k} {v}" for k, v in cohorts.items()) or MISSING) + "."]
        split = self.data.get("split") or data_cfg.get("split") or {}
        dropped = pd.DataFrame(self.data.get("dropped") or [])
        text = ["## Training data", _bullets(lines), "Images per split (from the predictions CSVs; age in years):",
                to_markdown(self.split_table()), "Split settings:",
                _settings(split)]
        selection = self.run.directory / "selection.csv"
        if len(dropped):
            text += [f"Images dropped before use, per step and split ({selection.name} has the counts before and "
                     f"after):", to_markdown(dropped)]
        else:
            text.append("No image was dropped by filters, balancing, subsets or the cache.")
        return "\n\n".join(text)

    def preprocessing(self) -> str:
        preprocess = self.data.get("preprocess") or ((self.config.get("data") or {}).get("preprocess") or {})
        data_cfg = self.config.get("data") or {}
        augment = (self.config.get("augment") or {}).get("train")
        transforms = _transform_names(augment)
        items = {**{k: v for k, v in preprocess.items() if not str(k).startswith("_")},
                 "input channels": data_cfg.get("in_chans"), "cache key": self.data.get("cache"),
                 "training augmentation": ", ".join(transforms) if transforms else "none",
                 "at load time": "per-image z-score"}
        return "## Preprocessing\n\n" + _settings(items)

    def model(self) -> str:
        c = self.config
        backbone, model, head = c.get("backbone") or {}, c.get("model") or {}, c.get("head") or {}
        fusion = (model.get("fusion") or {}).get("inputs")
        tasks = "; ".join(f"{t.name} ({t.label()}, column {t.column})" for t in self.run.tasks.values())
        checkpoint = self.record.get("checkpoint") or self.record.get("best_checkpoint")
        items = {"backbone": backbone.get("name"), "backbone weights": backbone.get("weights"),
                 "head": head.get("kind"), "head hidden widths": head.get("hidden"), "fusion inputs": fusion or "none",
                 "initialised from": model.get("init_from"), "trainable blocks": model.get("trainable_blocks"),
                 "tasks": tasks, "checkpoint": checkpoint, "checkpoint chosen by": self.monitor,
                 "seed": c.get("seed"), "max epochs": (c.get("trainer") or {}).get("max_epochs")}
        return "## Model\n\n" + _settings(items)

    def _metric_table(self, table: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"metric": [METRIC_NAMES.get(m, m) for m in table["metric"]],
                             "value": table["value"].to_numpy(float),
                             "95 % CI": [f"{lo:.4f}–{hi:.4f}" if pd.notna(lo) and pd.notna(hi) else MISSING
                                         for lo, hi in zip(table["ci_low"], table["ci_high"])]})

    def _split_title(self, task: Task, split: str) -> str:
        rows = labelled(self.run.predictions[split], task)
        patients = f", {rows['patient_id'].nunique()} patients" if "patient_id" in rows else ""
        return f"### {task.name}, {split}: {len(rows)} images{patients}"

    def metrics(self) -> str:
        text = ["## Metrics (test and external sets, 95 % CIs)"]
        for task in self.run.tasks.values():
            tables = self.tables.get(task.name)
            if tables is None or not tables.metrics:
                text.append(f"Task {task.name}: no labelled test or external predictions.")
                continue
            for split, table in tables.metrics.items():
                text += [self._split_title(task, split), to_markdown(self._metric_table(table))]
            if tables.threshold is not None:
                text.append(f"Threshold {tables.threshold.how}; thresholded metrics on the calibrated probabilities "
                            f"when there are any, the AUC on the raw ones.")
        return "\n\n".join(text)

    def subgroups(self) -> str:
        text = ["## Subgroup metrics (sex, age band; 95 % CIs)"]
        for task in self.run.tasks.values():
            tables = self.tables.get(task.name)
            for split, groups in (tables.subgroups.items() if tables else []):
                if groups.empty:
                    continue
                names = [m for m in task.subgroup_metrics if m in groups]
                shown = pd.DataFrame({"subgroup": groups["subgroup"], "value": groups["value"], "n": groups["n"]})
                for m in names:
                    low, high = groups.get(f"{m}_ci_low"), groups.get(f"{m}_ci_high")
                    shown[METRIC_NAMES.get(m, m)] = [
                        interval_text(v, lo, hi) for v, lo, hi in
                        zip(groups[m], low if low is not None else [np.nan] * len(groups),
                            high if high is not None else [np.nan] * len(groups))]
                text += [f"### {task.name}, {split}", to_markdown(shown)]
        if len(text) == 1:
            text.append("No labelled test or external predictions.")
        return "\n\n".join(text)

    def operating_point(self) -> str:
        text = ["## Threshold and calibration"]
        point = self.run.operating_point
        configured = self.config.get("calibration")
        for task in self.binary_tasks():
            saved = point.tasks.get(task.name) if point else None
            if saved is None:
                text.append(f"Task {task.name}: no operating point saved in this folder.")
                continue
            items = {"threshold": f"{saved.threshold:.6g}", "chosen by": saved.method,
                     "validation images": saved.n_validation, "calibration": describe_calibration(saved.calibration),
                     "configured calibration": configured, "source": point.source,
                     "file": f"`{self.run.directory / 'operating_point.json'}`"}
            text += [f"### {task.name}", _settings(items)]
            rows = []
            tables = self.tables.get(task.name)
            for split, table in (tables.metrics.items() if tables else []):
                by_metric = table.set_index("metric")
                for name in ("ece", "brier"):
                    entry = {"split": split, "score": METRIC_NAMES[name]}
                    for label, key in (("before calibration", name), ("after calibration", f"{name}_calibrated")):
                        entry[label] = (interval_text(*by_metric.loc[key, ["value", "ci_low", "ci_high"]])
                                        if key in by_metric.index else MISSING)
                    rows.append(entry)
            if rows:
                text += ["ECE (15 equal-width bins) and Brier score, value (95 % CI):", to_markdown(pd.DataFrame(rows))]
        if len(text) == 1:
            text.append("No binary task: no threshold or calibration.")
        return "\n\n".join(text)

    def limitations(self) -> str:
        lines = []
        synthetic = self.synthetic_cohorts()
        if synthetic:
            lines.append(f"Trained and tested on synthetic data (cohort {', '.join(synthetic)}): phantoms say nothing "
                         f"about performance on real patients' images.")
        elif set(self.cohorts()) == {"not recorded"}:
            lines.append("The manifest records no cohort: where the images come from is not documented here.")
        n_val = self.n_images("val")
        if n_val == 0:
            lines.append("No validation split: no calibration was fitted and thresholds fall back to 0.5.")
        elif n_val < SMALL_VALIDATION:
            lines.append(f"The validation split holds {n_val} images (< {SMALL_VALIDATION}): the calibration, the "
                         f"threshold and the choice of checkpoint rest on few cases and may not hold on new data.")
        point = self.run.operating_point
        for task in self.binary_tasks():
            val = self.frames.get("val")
            if val is not None and f"{task.name}_target" in val:
                positives = int(labelled(val, task)[f"{task.name}_target"].sum())
                if positives < FEW_POSITIVES:
                    lines.append(f"Task {task.name}: {positives} positive validation images (< {FEW_POSITIVES}) fix "
                                 f"its calibration and threshold.")
            saved = point.tasks.get(task.name) if point else None
            configured = self.config.get("calibration")
            if saved is not None and saved.calibration is None and configured not in (None, "none"):
                lines.append(f"Task {task.name}: calibration={configured} was configured but could not be fitted "
                             f"(the validation split lacks labelled images of both classes); its probabilities are "
                             f"raw and its threshold is {saved.method} at {saved.threshold:g}.")
        if n_val and self.monitor:
            lines.append(f"The validation split chose the checkpoint during training (monitor {self.monitor}) and "
                         f"calibration and threshold were fitted on it: quote the test and external figures, not "
                         f"validation ones.")
        for split in EVAL_SPLITS:
            n = self.n_images(split)
            if split == "test" and 0 < n < SMALL_TEST:
                lines.append(f"The test split holds {n} images (< {SMALL_TEST}): intervals are wide.")
        if "external" not in self.frames:
            lines.append("No external test set: performance at other sites, on other devices or populations is "
                         "unknown.")
        balance = ((self.data.get("split") or {}).get("balance_by")) or []
        if balance:
            lines.append(f"Splits were balanced by {', '.join(balance)}: the prevalence in the test split is not the "
                         f"population's, so PPV and NPV do not carry over to screening.")
        filters = (self.data.get("split") or {}).get("filters") or {}
        if filters:
            lines.append(f"Images were filtered ({_text(filters)}): the model saw only that population.")
        if len(self.train_sexes()) == 1:
            lines.append(f"Training images are of one sex only ({self.train_sexes()[0]}).")
        small = self._small_subgroups()
        if small:
            lines.append(f"Subgroups with fewer than {SMALL_SUBGROUP} test images (intervals wide or missing): "
                         f"{', '.join(small)}.")
        for task in self.run.tasks.values():
            frame = self.frames.get("test")
            if frame is not None and f"{task.name}_target" in frame:
                missing = len(frame) - len(labelled(frame, task))
                if missing:
                    lines.append(f"Task {task.name}: {missing} test images have no label and are not scored.")
        if self.binary_tasks() and point and any(p.calibration for p in point.tasks.values()):
            lines.append("Calibration matches the validation split's population: where prevalence differs, "
                         "probabilities and PPV / NPV shift.")
        return "## Known limitations\n\n" + _bullets(lines)

    def _small_subgroups(self) -> list[str]:
        out = []
        for task in self.run.tasks.values():
            groups = self.tables[task.name].subgroups.get("test") if task.name in self.tables else None
            if groups is None or groups.empty:
                continue
            for _, row in groups[groups["n"] < SMALL_SUBGROUP].iterrows():
                label = f"{row['subgroup']} {row['value']} (n={int(row['n'])})"
                if label not in out:
                    out.append(label)
        return out

    def reproduce(self) -> str:
        lines = []
        if self.is_eval:
            train_command = _training_command(self.config.get("ckpt_path"))
            if train_command:
                lines += ["# the training run", train_command]
            lines += ["# this evaluation", self.command or MISSING]
        else:
            lines.append(self.command or MISSING)
        return ("## Reproduce\n\nFrom the project root (same manifest, cache settings and seed; a new run folder):"
                "\n\n```bash\n" + "\n".join(lines) + "\n```")


def _transform_names(augment: object) -> list[str]:
    """Names of the albumentations transforms in an augment config (nested Compose / OneOf flattened)."""
    if isinstance(augment, Mapping):
        name = str(augment.get("_target_", "")).rsplit(".", 1)[-1]
        inner = augment.get("transforms")
        if inner:
            names = [n for t in inner for n in _transform_names(t)]
            return names if name == "Compose" else [f"{name}({' | '.join(names)})"]
        return [name] if name else []
    if isinstance(augment, list):
        return [n for t in augment for n in _transform_names(t)]
    return []


def _training_folder(checkpoint: str | None) -> Path | None:
    """The train.py run folder holding `checkpoint` (None outside one)."""
    if not checkpoint:
        return None
    try:
        return find_run_dir(Path(checkpoint))
    except ConfigError:
        return None


def _training_command(checkpoint: str | None) -> str | None:
    """`python train.py <overrides>` of the training run holding `checkpoint` (its .hydra/overrides.yaml)."""
    folder = _training_folder(checkpoint)
    if folder is None:
        return None
    return " ".join(["python", "train.py", *(shlex.quote(str(o)) for o in saved_overrides(folder))])
