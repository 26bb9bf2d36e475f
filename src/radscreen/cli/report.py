"""Reports of train.py / eval.py runs: tables with patient-bootstrap CIs, subgroups, figures, one HTML each.

    radscreen-report RUN_DIR [RUN_DIR ...] [--threshold saved|youden|sensitivity|0.35] [--sensitivity 0.9]
        [--subgroups sex cohort] [--boot 1000] [--out DIR]

Each run's report is written to RUN_DIR/report/ (report.html, the tables as CSV, figures as PNG).

With several runs, the comparison of all of them (comparison.csv, comparison.md) is written inside the first run
folder, RUN_A/comparison/ (replacing an earlier comparison against RUN_A), or into --out DIR; never into the
current folder. For binary tasks it holds DeLong's paired test against the first run, on the images both runs
scored (joined on image_id): n_shared images, of n_first in the first run and n in the other, and both AUCs on
them; runs that share no image, or disagree on a shared image's label, are an error.

--threshold (binary tasks): saved (default) is the run's operating point (operating_point.json, written by
train.py / eval.py: the threshold chosen on the calibrated validation probabilities), or Youden's J for a run
without one; youden (Youden's J) or sensitivity (the highest threshold reaching --sensitivity) are chosen on the
run's validation predictions (calibrated ones when the run has them) and applied unchanged to test / external; a
number such as 0.35 is applied as given; `fixed` is the same as 0.5. Thresholds apply to the calibrated
probabilities when the predictions hold them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from radscreen.errors import UserError
from radscreen.evaluation.analysis import EVAL_SPLITS, ReportOptions, Run, load_run, run_threshold
from radscreen.evaluation.report import build_report
from radscreen.evaluation.sweeps import compare_runs, to_markdown
from radscreen.metrics.scores import parse_threshold
from radscreen.utils.cli import run_command
from radscreen.utils.console import console
from radscreen.utils.tables import check_output_folder, write_csv, write_text

DEFAULT_SUBGROUPS = ("sex",)


def check_subgroups(run: Run, columns: tuple[str, ...]) -> None:
    """UserError when a requested subgroup column is in none of the run's test / external predictions."""
    frames = [run.predictions[s] for s in EVAL_SPLITS if s in run.predictions]
    present = {c for frame in frames for c in frame.columns}
    missing = [c for c in columns if c not in present]
    if frames and missing:
        raise UserError(f"subgroup column(s) {', '.join(missing)} (--subgroups) are not in the test / external "
                        f"predictions of {run.directory}; they have: {', '.join(sorted(present))}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (train.py / eval.py outputs)")
    parser.add_argument("--threshold", default="saved",
                        help="saved (the run's operating point; default) | youden | sensitivity (chosen on "
                             "validation) | a number such as 0.35 | fixed (= 0.5)")
    parser.add_argument("--sensitivity", type=float, default=0.9, help="target sensitivity for --threshold sensitivity")
    parser.add_argument("--subgroups", nargs="*", default=None,
                        help=f"prediction columns to break metrics down by (default: {' '.join(DEFAULT_SUBGROUPS)} "
                             f"when present; age bands are always added)")
    parser.add_argument("--boot", type=int, default=1000, help="bootstrap resamples (0: no intervals)")
    parser.add_argument("--out", "--compare-out", dest="out", type=Path,
                        help="folder for the comparison of several runs (default: RUN_A/comparison)")
    args = parser.parse_args(argv)
    threshold = None if str(args.threshold).strip().lower() == "saved" else parse_threshold(args.threshold)
    if not 0 < args.sensitivity <= 1:
        raise UserError(f"--sensitivity {args.sensitivity} is not a sensitivity; give a number in (0, 1], e.g. 0.9")
    if args.boot < 0:
        raise UserError(f"--boot {args.boot} is negative; give a number of resamples (0: no intervals)")
    subgroups = DEFAULT_SUBGROUPS if args.subgroups is None else tuple(args.subgroups)
    runs = [load_run(folder) for folder in args.runs]  # every folder checked before anything is written
    for run in runs:
        check_subgroups(run, subgroups if args.subgroups else ())
        for task in (t for t in run.tasks.values() if t.thresholded):
            run_threshold(run, task, threshold, args.sensitivity)  # a threshold that cannot be chosen stops here
    if args.out and len(runs) == 1:
        console.print("[yellow]note: --out is the folder of the comparison of several runs; a single run's report "
                      f"goes to {runs[0].directory / 'report'}", soft_wrap=True, highlight=False)
    options = ReportOptions(threshold, args.sensitivity, subgroups, args.boot)
    table = compare_out = None
    if len(runs) > 1:  # before any report is written: runs that cannot be compared stop the command first
        compare_out = check_output_folder(args.out, "--out") if args.out else runs[0].directory / "comparison"
        table = compare_runs(runs, threshold, args.sensitivity)
    for run in runs:
        console.print(f"report: {build_report(run, options=options)}", soft_wrap=True, highlight=False)
    if table is not None:
        compare_out.mkdir(exist_ok=True)
        write_csv(table, compare_out / "comparison.csv")
        markdown = to_markdown(table)
        runs_list = "\n".join(f"- {run.directory}" for run in runs)
        write_text(f"Runs (DeLong p-values and n_shared against the first):\n\n{runs_list}\n\n{markdown}\n",
                   compare_out / "comparison.md")
        print(markdown)
        console.print(f"comparison: {compare_out}", soft_wrap=True, highlight=False)
    return 0


def run() -> None:
    """Entry point of radscreen-report."""
    run_command(main)
