"""Build a CT manifest: one row per study, from DICOM series folders or from NIfTI volumes listed in a CSV.

    radscreen-build-ct-manifest ROOT --out data_manifests/ct.csv [--age-min 18] [--body-part CHEST]
    radscreen-build-ct-manifest ROOT --volumes-csv ages.csv --out data_manifests/ct.csv

Each folder holding one axial DICOM series is a study; series with missing slices, uneven spacing or
non-axial orientation go to <out>.rejects.csv with their reason. Patient IDs are pseudonymised ($RADSCREEN_SALT).
When no study is taken, the rejects report is written, the manifest is not, and the command exits with code 2.
Outputs are written atomically.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from radscreen.errors import UserError
from radscreen.manifests.build import NoImagesError, default_rejects_path, nothing_taken_message
from radscreen.manifests.ct_scan import VOLUMES_COLUMNS, CTScanOptions, count_reasons, import_nifti, scan_ct_folder
from radscreen.manifests.pseudonym import resolve_salt
from radscreen.manifests.scan import check_folder, normalise_codes
from radscreen.manifests.schema import write_image_root
from radscreen.utils.cli import run_command
from radscreen.utils.console import print_counts
from radscreen.utils.tables import check_output_path, read_table, write_csv


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--volumes-csv", type=Path, help="CSV with path, patient_id, age_years, sex of NIfTI volumes")
    parser.add_argument("--salt")
    parser.add_argument("--cohort", default="")
    parser.add_argument("--age-min", type=float)
    parser.add_argument("--age-max", type=float)
    parser.add_argument("--body-part", nargs="*", help="accepted BodyPartExamined values, e.g. CHEST (default: any)")
    parser.add_argument("--require-body-part", action="store_true", help="reject series without BodyPartExamined")
    parser.add_argument("--workers", type=int)
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


def read_volumes(path: Path) -> pd.DataFrame:
    """The volumes CSV (patient IDs as text), or UserError (missing, folder, empty, delimiter, columns, no rows)."""
    table = read_table(path, "volumes CSV", required=VOLUMES_COLUMNS, dtype={"patient_id": "string"})
    if table.empty:
        raise UserError(f"volumes CSV {path} has a header but no rows")
    return table


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    salt = resolve_salt(args.salt)
    out = check_output_path(args.out, "manifest")
    rejects_path = check_output_path(default_rejects_path(out), "rejects report")
    check_folder(args.root, "CT root")
    if args.volumes_csv:
        table = read_volumes(args.volumes_csv)
        if out.exists() and out.samefile(args.volumes_csv):
            raise UserError(f"the manifest {out} would overwrite the volumes CSV; give another --out")
        manifest, rejects = import_nifti(table, args.root, salt, args.cohort, args.age_min, args.age_max)
        what, source, count, units = "CT volumes", args.volumes_csv, len(table), ("row", "rows")
    else:
        options = CTScanOptions(str(args.root), salt, args.age_min, args.age_max, args.cohort,
                                body_parts=normalise_codes(args.body_part),
                                allow_missing_body_part=not args.require_body_part)
        manifest, rejects = scan_ct_folder(options, args.workers, not args.quiet)
        what, source, count = "CT series", args.root, len(rejects) + len(manifest)
        units = ("folder holding files", "folders holding files")
    write_csv(rejects, rejects_path)
    if manifest.empty:
        raise NoImagesError(nothing_taken_message(what, source, count, units, count_reasons(rejects), rejects_path))
    write_csv(manifest, out)
    write_image_root(out, args.root)
    print_counts(f"CT manifest {out}", len(manifest), count_reasons(rejects))
    return 0


def run() -> None:
    """Entry point of radscreen-build-ct-manifest."""
    run_command(main)
