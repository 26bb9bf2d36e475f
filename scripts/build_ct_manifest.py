#!/usr/bin/env python
"""Build a CT manifest: one row per study, from DICOM series folders or from NIfTI volumes listed in a CSV.

    python scripts/build_ct_manifest.py ROOT --out data_manifests/ct.csv [--age-min 18]
    python scripts/build_ct_manifest.py ROOT --volumes-csv ages.csv --out data_manifests/ct.csv

Each folder holding one axial DICOM series is a study; series with missing slices, uneven spacing or
non-axial orientation go to <out>.rejects.csv with their reason. Patient IDs are pseudonymised ($RADSCREEN_SALT).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from radscreen.manifests.build import default_rejects_path
from radscreen.manifests.ct_scan import CTScanOptions, count_reasons, import_nifti, scan_ct_folder
from radscreen.manifests.pseudonym import resolve_salt
from radscreen.utils.console import console, print_counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--volumes-csv", type=Path, help="CSV with path, patient_id, age_years, sex of NIfTI volumes")
    parser.add_argument("--salt")
    parser.add_argument("--cohort", default="")
    parser.add_argument("--age-min", type=float)
    parser.add_argument("--age-max", type=float)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        salt = resolve_salt(args.salt)
        if not args.root.is_dir():
            raise ValueError(f"{args.root} is not a folder")
        if args.volumes_csv:
            manifest, rejects = import_nifti(pd.read_csv(args.volumes_csv), args.root, salt, args.cohort)
        else:
            manifest, rejects = scan_ct_folder(CTScanOptions(str(args.root), salt, args.age_min, args.age_max,
                                                             args.cohort), args.workers, not args.quiet)
    except (ValueError, FileNotFoundError) as exc:
        console.print(f"[red]error: {exc}")
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    manifest.to_csv(args.out, index=False)
    rejects.to_csv(default_rejects_path(args.out), index=False)
    print_counts(f"CT manifest {args.out}", len(manifest), count_reasons(rejects))
    return 0


if __name__ == "__main__":
    sys.exit(main())
