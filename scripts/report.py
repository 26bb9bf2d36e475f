#!/usr/bin/env python
"""Reports of train.py / eval.py runs: tables with patient-bootstrap CIs, subgroups, figures, one HTML each.

    python scripts/report.py RUN_DIR [RUN_DIR ...] [--threshold youden|sensitivity|fixed] [--subgroups sex cohort]

With several runs, also writes a comparison table (with DeLong p-values against the first run) to --compare-out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from radscreen.evaluation.analysis import load_run
from radscreen.evaluation.report import ReportOptions, build_report
from radscreen.evaluation.sweeps import compare_runs, to_markdown
from radscreen.utils.console import console


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--threshold", default="youden", choices=["youden", "sensitivity", "fixed"])
    parser.add_argument("--sensitivity", type=float, default=0.9, help="target sensitivity for --threshold sensitivity")
    parser.add_argument("--subgroups", nargs="*", default=["sex"], help="manifest columns to break metrics down by")
    parser.add_argument("--boot", type=int, default=1000, help="bootstrap resamples (0: no intervals)")
    parser.add_argument("--compare-out", type=Path, default=Path("comparison"), help="folder for the comparison table")
    args = parser.parse_args(argv)
    options = ReportOptions(args.threshold, args.sensitivity, tuple(args.subgroups), args.boot)
    try:
        for run in args.runs:
            console.print(f"report: {build_report(run, options=options)}")
        if len(args.runs) > 1:
            table = compare_runs([load_run(r) for r in args.runs], args.threshold)
            args.compare_out.mkdir(parents=True, exist_ok=True)
            table.to_csv(args.compare_out / "comparison.csv", index=False)
            (args.compare_out / "comparison.md").write_text(to_markdown(table) + "\n")
            console.print(to_markdown(table))
    except (FileNotFoundError, ValueError) as exc:
        console.print(f"[red]error: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
