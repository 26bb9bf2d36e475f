"""Age-gap analysis: old- / well- / young-predicted subjects against clinical variables (thesis §3.3.4).

    radscreen-agegap RUN/predictions_test.csv --manifest data_manifests/site.csv \
        --categorical sex bmd_class --continuous age_years weight_kg t_score_min [--margin 5] [--out DIR] \
        [--correction linear|none] [--validation RUN/predictions_val.csv]

The gap is predicted − true age. By default (--correction linear) it is bias-corrected as brain-age studies do:
the line gap = a + b·age is fitted on the validation predictions (predictions_val.csv beside the predictions
given, or --validation PATH) and subtracted from the gap of the predictions given, which removes regression to
the mean (the young predicted old, the old predicted young). --correction none keeps the raw gap. Every table,
figure title and output says which gap was used.

Clinical variables come from the manifest (joined on image_id): its clinical columns were joined from the
DXA / clinical table when the manifest was built. Outputs (default: an agegap/ folder beside the predictions):
agegap.md, categorical.csv, continuous.csv, gap_summary.csv, gaps.csv (one row per image), correction.json and
one density plot per continuous variable.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from radscreen.errors import UserError
from radscreen.evaluation.agegap import (
    RAW,
    GapCorrection,
    add_age_gap,
    categorical_table,
    continuous_table,
    density_plots,
    fit_gap_correction,
    gap_summary,
    group_counts,
)
from radscreen.evaluation.sweeps import to_markdown
from radscreen.utils.cli import run_command
from radscreen.utils.console import console
from radscreen.utils.tables import check_output_folder, read_table, write_csv, write_text


def read_inputs(predictions: Path, manifest: Path | None, task: str) -> pd.DataFrame:
    """The predictions, with the manifest's other columns joined on image_id when a manifest is given."""
    required = [f"{task}_pred", f"{task}_target"] + (["image_id"] if manifest else [])
    frame = read_table(predictions, "predictions file", required, low_memory=False)
    for column in required[:2]:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = frame.loc[values.isna() & frame[column].notna(), column]
        if len(bad):
            raise UserError(f"column {column} of predictions file {predictions} holds {len(bad)} value(s) that are "
                            f"not numbers, e.g. '{bad.iloc[0]}'")
    if manifest is None:
        return frame
    table = read_table(manifest, "manifest", ["image_id"], low_memory=False)
    if table["image_id"].duplicated().any():
        raise UserError(f"manifest {manifest} lists {int(table['image_id'].duplicated().sum())} image_id(s) more "
                        f"than once; one row per image is needed to join it to the predictions")
    extra = [c for c in table.columns if c not in frame.columns or c == "image_id"]
    return frame.merge(table[extra], on="image_id", how="left")


def choose_correction(args: argparse.Namespace) -> tuple[GapCorrection, Path | None]:
    """RAW for --correction none; else the line fitted on the validation predictions (UserError without them),
    with the path of those predictions."""
    if args.correction == "none":
        if args.validation:
            console.print(f"[yellow]note: --validation {args.validation} is not used with --correction none",
                          soft_wrap=True, highlight=False)
        return RAW, None
    path = args.validation or args.predictions.parent / "predictions_val.csv"
    if not path.exists():
        raise UserError(f"validation predictions {path} do not exist; the bias correction is fitted on them: pass "
                        f"--validation PATH, or --correction none for the raw gap")
    validation = read_table(path, "validation predictions", [f"{args.task}_pred", f"{args.task}_target"],
                            low_memory=False)
    if path.resolve() == args.predictions.resolve():
        console.print("[yellow]note: the correction is fitted on the same predictions it is applied to",
                      highlight=False)
    return fit_gap_correction(validation[f"{args.task}_target"], validation[f"{args.task}_pred"]), path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("predictions", type=Path)
    parser.add_argument("--manifest", type=Path, help="manifest with the clinical columns (joined on image_id)")
    parser.add_argument("--task", default="age", help="regression task name in the predictions CSV")
    parser.add_argument("--categorical", nargs="*", default=["sex", "bmd_class"])
    parser.add_argument("--continuous", nargs="*", default=["age_years", "t_score_min"])
    parser.add_argument("--margin", type=float, default=5.0, help="years of gap that make old/young-predicted")
    parser.add_argument("--correction", choices=["linear", "none"], default="linear",
                        help="linear: bias-correct the gap with the line fitted on validation (default); none: raw")
    parser.add_argument("--validation", type=Path,
                        help="validation predictions to fit the correction on (default: predictions_val.csv beside)")
    parser.add_argument("--out", type=Path, help="output folder (default: agegap/ beside the predictions)")
    args = parser.parse_args(argv)
    if args.margin <= 0:
        raise UserError(f"--margin {args.margin:g} must be a positive number of years, e.g. 5")
    frame = read_inputs(args.predictions, args.manifest, args.task)
    missing = [c for c in [*args.categorical, *args.continuous] if c not in frame]
    if missing:
        source = f"predictions {args.predictions}" + (f" or manifest {args.manifest}" if args.manifest else "")
        hint = "" if args.manifest else " (pass --manifest for clinical columns)"
        raise UserError(f"column(s) {', '.join(missing)} not found in {source}{hint}")
    out = check_output_folder(args.out or args.predictions.parent / "agegap", "--out")
    correction, validation = choose_correction(args)
    rows = add_age_gap(frame, args.task, correction, args.margin)
    if rows.empty:
        raise UserError(f"predictions file {args.predictions} has no row with both {args.task}_pred and "
                        f"{args.task}_target")
    used = correction.describe()
    counts, summary = group_counts(rows), gap_summary(rows, args.task, correction)
    categorical = categorical_table(rows, args.categorical).assign(age_gap=used)
    continuous = continuous_table(rows, args.continuous).assign(age_gap=used)
    out.mkdir(exist_ok=True)
    for name, table in (("categorical", categorical), ("continuous", continuous), ("gap_summary", summary)):
        write_csv(table, out / f"{name}.csv")
    kept = [c for c in ("image_id", "patient_id", f"{args.task}_target", f"{args.task}_pred") if c in rows]
    write_csv(rows[[*kept, "age_gap_raw", "age_gap", "age_gap_group"]], out / "gaps.csv")
    write_text(json.dumps({"description": used, "intercept": correction.intercept, "slope": correction.slope,
                           "n": correction.n, "fitted_on": correction.fitted_on,
                           "validation_file": str(validation) if validation else None, "margin": args.margin}, indent=2)
               + "\n", out / "correction.json")
    density_plots(rows, args.continuous, out, correction=correction)
    text = (f"# Age gap: {used}; groups at ±{args.margin:g} y\n\n{to_markdown(counts)}\n\n{to_markdown(summary)}\n\n"
            f"{to_markdown(categorical.drop(columns='age_gap'))}\n\n{to_markdown(continuous.drop(columns='age_gap'))}\n")
    write_text(text, out / "agegap.md")
    print(text)
    console.print(f"age gap: {used}; written: {out}", soft_wrap=True, highlight=False)
    return 0


def run() -> None:
    """Entry point of radscreen-agegap."""
    run_command(main)
