#!/usr/bin/env python
"""Which checkpoint each selection rule picks, from the per-epoch validation metrics of runs (their CSV logs),
and the test metrics of the runs whose checkpoints were chosen by each rule.

    python benchmarks/checkpoint_selection.py RUN [RUN ...]      # runs of one binary task, logger=csv
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd


def validation_history(run: Path, task: str) -> pd.DataFrame:
    """One row per epoch: val loss, AUROC, sensitivity, specificity of `task`."""
    frame = pd.concat(pd.read_csv(p) for p in sorted(run.glob("csv/**/metrics.csv")))
    columns = {f"val/{task}_{k}": k for k in ("loss", "auroc", "sensitivity", "specificity")}
    return (frame.dropna(subset=[f"val/{task}_auroc"]).groupby("epoch")[list(columns)].last()
            .rename(columns=columns))


def pick(history: pd.DataFrame, rule: str) -> int:
    """The epoch a ModelCheckpoint with this monitor keeps (the first of equal scores)."""
    return int(history["auroc"].idxmax() if rule == "auroc" else history["loss"].idxmin())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--task", default="osteo")
    args = parser.parse_args()
    rows = []
    for run in args.runs:
        history = validation_history(run, args.task)
        metrics = json.loads((run / "metrics.json").read_text())
        for rule in ("auroc", "loss"):
            epoch = pick(history, rule)
            rows.append({"run": run.name, "monitor": f"val/{args.task}_{rule}", "epoch": epoch,
                         **{f"val_{k}": history.loc[epoch, k] for k in history.columns},
                         "run_monitor": metrics.get("monitor"),
                         **({f"test_{k}": metrics["metrics"].get(f"test/{args.task}_{k}") for k in
                             ("auroc", "sensitivity", "specificity")}
                            if metrics.get("monitor") == f"val/{args.task}_{rule}" else {})})
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
