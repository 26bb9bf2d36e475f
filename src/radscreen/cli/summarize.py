"""Summarise a Hydra multirun: one row per setting, mean ± SD over seeds (or folds), Markdown and CSV.

    radscreen-summarize MULTIRUN_DIR [--metrics test/age_mae test/age_r2] [--over seed]

Job folders marked FAILED (a run that ended with an error) are left out, and the command says how many. Writes
MULTIRUN_DIR/summary.md and summary.csv.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from radscreen.evaluation.sweeps import find_jobs, summarize_jobs, to_markdown
from radscreen.utils.cli import run_command
from radscreen.utils.console import console
from radscreen.utils.tables import write_csv, write_text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("multirun", type=Path)
    parser.add_argument("--metrics", nargs="*", help="metric keys (default: every val/test/external metric)")
    parser.add_argument("--over", nargs="*", default=["seed"], help="overrides averaged over (seed, data.split.fold)")
    args = parser.parse_args(argv)
    jobs = find_jobs(args.multirun)
    summary = summarize_jobs(jobs.table, args.metrics, tuple(args.over))
    skipped = ""
    if jobs.failed:
        skipped = (f"skipped {len(jobs.failed)} failed job(s) (FAILED marker): "
                   f"{', '.join(job.name for job in jobs.failed)}")
        console.print(f"[yellow]{skipped}", soft_wrap=True, highlight=False)
    write_csv(summary, args.multirun / "summary.csv")
    markdown = to_markdown(summary)
    write_text(markdown + "\n" + (f"\n{skipped[0].upper()}{skipped[1:]}.\n" if skipped else ""),
               args.multirun / "summary.md")
    print(markdown)
    console.print(f"written: {args.multirun / 'summary.md'} and summary.csv ({len(jobs.table)} jobs)",
                  soft_wrap=True, highlight=False)
    return 0


def run() -> None:
    """Entry point of radscreen-summarize."""
    run_command(main)
