#!/usr/bin/env python
"""Summarise a Hydra multirun: one row per setting, mean ± SD over seeds (or folds), Markdown and CSV.

    python scripts/summarize.py MULTIRUN_DIR [--metrics test/age_mae test/age_r2] [--over seed]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from radscreen.evaluation.sweeps import collect_jobs, summarize_jobs, to_markdown
from radscreen.utils.console import console


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("multirun", type=Path)
    parser.add_argument("--metrics", nargs="*", help="metric keys (default: every val/test/external metric)")
    parser.add_argument("--over", nargs="*", default=["seed"], help="overrides averaged over (seed, data.split.fold)")
    args = parser.parse_args(argv)
    try:
        summary = summarize_jobs(collect_jobs(args.multirun), args.metrics, tuple(args.over))
    except (FileNotFoundError, KeyError) as exc:
        console.print(f"[red]error: {exc}")
        return 2
    summary.to_csv(args.multirun / "summary.csv", index=False)
    markdown = to_markdown(summary)
    (args.multirun / "summary.md").write_text(markdown + "\n")
    print(markdown)
    console.print(f"written: {args.multirun / 'summary.md'} and summary.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
