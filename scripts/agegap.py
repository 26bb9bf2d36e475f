#!/usr/bin/env python
"""Age-gap analysis: old- / well- / young-predicted subjects against clinical variables (thesis §3.3.4).

    python scripts/agegap.py RUN/predictions_test.csv --manifest data_manifests/site.csv \
        --categorical sex bmd_class --continuous age_years weight_kg t_score_min [--margin 5] [--out DIR]

Clinical variables come from the manifest (joined on image_id): its clinical columns were joined from the
DXA / clinical table when the manifest was built.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from radscreen.evaluation.agegap import age_gap_groups, categorical_table, continuous_table, density_plots
from radscreen.evaluation.sweeps import to_markdown
from radscreen.utils.console import console


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("predictions", type=Path)
    parser.add_argument("--manifest", type=Path, help="manifest with the clinical columns (joined on image_id)")
    parser.add_argument("--task", default="age", help="regression task name in the predictions CSV")
    parser.add_argument("--categorical", nargs="*", default=["sex", "bmd_class"])
    parser.add_argument("--continuous", nargs="*", default=["age_years", "t_score_min"])
    parser.add_argument("--margin", type=float, default=5.0, help="years of gap that make old/young-predicted")
    parser.add_argument("--out", type=Path, help="output folder (default: beside the predictions)")
    args = parser.parse_args(argv)
    frame = pd.read_csv(args.predictions)
    if args.manifest:
        manifest = pd.read_csv(args.manifest, low_memory=False)
        extra = [c for c in manifest.columns if c not in frame.columns or c == "image_id"]
        frame = frame.merge(manifest[extra], on="image_id", how="left")
    missing = [c for c in [f"{args.task}_pred", f"{args.task}_target", *args.categorical, *args.continuous]
               if c not in frame]
    if missing:
        console.print(f"[red]error: column(s) {missing} not found (pass --manifest for clinical columns)")
        return 2
    frame["age_gap_group"] = age_gap_groups(frame[f"{args.task}_pred"], frame[f"{args.task}_target"], args.margin)
    out = args.out or args.predictions.parent / "agegap"
    out.mkdir(parents=True, exist_ok=True)
    categorical, continuous = categorical_table(frame, args.categorical), continuous_table(frame, args.continuous)
    categorical.to_csv(out / "categorical.csv", index=False)
    continuous.to_csv(out / "continuous.csv", index=False)
    density_plots(frame, args.continuous, out)
    counts = frame["age_gap_group"].value_counts().reindex(frame["age_gap_group"].cat.categories)
    text = f"{counts.to_string()}\n\n{to_markdown(categorical)}\n\n{to_markdown(continuous)}\n"
    (out / "agegap.md").write_text(text)
    print(text)
    console.print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
