"""Write patient-level split (and fold) columns into a manifest.

    radscreen-split-manifest IN.csv --out OUT.csv [--folds K] [--stratify sex bmd_class]
        [--fractions 0.7 0.1 0.2] [--balance bmd_class sex] [--seed 0]

No patient ever lands in two splits or two folds; the check runs before anything is written. The output is
written atomically (OUT may be the input); a user's mistake is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from radscreen.errors import UserError
from radscreen.manifests.schema import read_manifest, recorded_image_root, write_image_root, write_manifest
from radscreen.manifests.splits import SplitConfig, make_splits
from radscreen.utils.cli import run_command
from radscreen.utils.console import console
from radscreen.utils.tables import check_output_path


def check_columns(manifest: pd.DataFrame, option: str, columns: list[str], path: Path) -> None:
    """Every column an option names must be in the manifest; else UserError naming them."""
    missing = [c for c in columns if c not in manifest.columns]
    if missing:
        raise UserError(f"{option} names {', '.join(missing)}, which manifest {path} lacks; its columns: "
                        f"{', '.join(map(str, manifest.columns))}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--fractions", type=float, nargs=3, default=(0.7, 0.1, 0.2), metavar=("TRAIN", "VAL", "TEST"))
    parser.add_argument("--stratify", nargs="*", default=["sex"], help="columns to stratify by (patient level)")
    parser.add_argument("--folds", type=int, help="also assign K patient-level folds over train+val")
    parser.add_argument("--balance", nargs="*", default=[], help="down-sample to equal cells, e.g. bmd_class sex")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    check_output_path(args.out, "output manifest")
    manifest = read_manifest(str(args.manifest))
    check_columns(manifest, "--stratify", args.stratify, args.manifest)
    check_columns(manifest, "--balance", args.balance, args.manifest)
    config = SplitConfig(fractions=tuple(args.fractions), stratify=tuple(args.stratify), seed=args.seed,
                         folds=args.folds, balance_by=tuple(args.balance), use_existing=False)
    try:
        out = make_splits(manifest, config)
    except ValueError as exc:  # fractions, folds, unknown columns, a patient leak: the user's settings
        raise UserError(str(exc)) from None
    write_manifest(out, str(args.out))
    image_root = recorded_image_root(args.manifest)
    if image_root and args.out.resolve() != args.manifest.resolve():
        write_image_root(args.out, image_root)
    counts = out.groupby("split", observed=True).agg(images=("image_id", "size"), patients=("patient_id", "nunique"))
    console.print(counts.to_string())
    if args.folds:
        console.print(out.groupby("fold", observed=True)["patient_id"].nunique().rename("patients").to_string())
    console.print(f"written: {args.out} (no patient in two splits{' or folds' if args.folds else ''})")
    return 0


def run() -> None:
    """Entry point of radscreen-split-manifest."""
    run_command(main)
