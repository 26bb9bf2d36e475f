#!/usr/bin/env python
"""Import a public CXR dataset's metadata into the manifest schema, with a rejects report.

    python scripts/import_manifest.py {nih,chexpert,padchest} METADATA_CSV --images-root DIR --out OUT.csv
    python scripts/import_manifest.py mimic mimic-cxr-2.0.0-metadata.csv --patients patients.csv \
        --admissions admissions.csv [--chexpert mimic-cxr-2.0.0-chexpert.csv] [--jpg] --images-root DIR --out OUT.csv

With --images-root, every listed image is looked up under DIR (by its listed path or the end of it); images not
there go to the rejects as 'image file not found'. When no image is taken, the rejects report is written, the
manifest is not, and the command exits with code 2 saying why. Outputs are written atomically.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from radscreen.errors import UserError
from radscreen.manifests import mimic
from radscreen.manifests.build import NoImagesError, default_rejects_path
from radscreen.manifests.importers import ADAPTERS, nothing_imported_message
from radscreen.manifests.pseudonym import SALT_ENV, resolve_salt
from radscreen.manifests.scan import check_folder, filter_by_values
from radscreen.manifests.schema import write_image_root
from radscreen.utils.cli import run_command
from radscreen.utils.console import console, print_counts
from radscreen.utils.tables import check_output_path, write_csv


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=sorted([*ADAPTERS, mimic.DATASET]))
    parser.add_argument("metadata_csv", type=Path)
    parser.add_argument("--images-root", type=Path, help="folder holding the images; files are checked")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rejects", type=Path, help="rejects CSV (default: <out>.rejects.csv)")
    parser.add_argument("--salt", help=f"pseudonymisation salt (default: ${SALT_ENV})")
    parser.add_argument("--cohort", help="cohort column value (default: the dataset name)")
    parser.add_argument("--view", nargs="*", help="accepted views, e.g. PA (default: all)")
    parser.add_argument("--age-min", type=float)
    parser.add_argument("--age-max", type=float)
    mimic.add_arguments(parser)
    return parser.parse_args(argv)


def check_outputs(args: argparse.Namespace) -> tuple[Path, Path]:
    """(manifest, rejects) paths: their folders must exist and neither may be the metadata CSV itself."""
    out = check_output_path(args.out, "manifest")
    rejects = check_output_path(args.rejects or default_rejects_path(out), "rejects report")
    for path, what in ((out, "manifest"), (rejects, "rejects report")):
        if path.exists() and args.metadata_csv.exists() and path.samefile(args.metadata_csv):
            raise UserError(f"the {what} {path} would overwrite the metadata CSV; give another --out / --rejects")
    return out, rejects


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    salt = resolve_salt(args.salt)
    out, rejects_path = check_outputs(args)
    if args.images_root is not None:
        check_folder(args.images_root, "images root")
    manifest, rejects = mimic.importer(args)(
        args.metadata_csv, salt=salt, images_root=args.images_root,
        views=filter_by_values(args.view), age_min=args.age_min, age_max=args.age_max,
        **({"cohort": args.cohort} if args.cohort else {}),
    )
    write_csv(rejects, rejects_path)
    if manifest.empty:
        raise NoImagesError(nothing_imported_message(args.metadata_csv, args.images_root, rejects, rejects_path))
    write_csv(manifest, out)
    if args.images_root is not None:
        write_image_root(out, args.images_root)
    print_counts(f"{args.dataset} → {out}", len(manifest), Counter(rejects["reason"].tolist()))
    console.print(f"manifest: {out}\nrejects:  {rejects_path}", soft_wrap=True)
    return 0


if __name__ == "__main__":
    run_command(main)
