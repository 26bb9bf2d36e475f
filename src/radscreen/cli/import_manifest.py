"""Import a public CXR dataset's metadata into the manifest schema, with a rejects report.

    radscreen-import-manifest DATASET METADATA_CSV --images-root DIR --out OUT.csv
    radscreen-import-manifest mimic mimic-cxr-2.0.0-metadata.csv --patients patients.csv \
        --admissions admissions.csv [--chexpert mimic-cxr-2.0.0-chexpert.csv] [--jpg] --images-root DIR --out OUT.csv

DATASET is one of the subcommands `--help` lists (nih, chexpert, padchest, ...); `DATASET --help` gives its options.

With --images-root, every listed image is looked up under DIR (by its listed path or the end of it); images not
there go to the rejects as 'image file not found'. When no image is taken, the rejects report is written, the
manifest is not, and the command exits with code 2 saying why. Outputs are written atomically.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from radscreen.errors import UserError
from radscreen.manifests import mimic
from radscreen.manifests.build import NoImagesError, default_rejects_path
from radscreen.manifests.importers import ADAPTERS, DATASET_NAMES, import_metadata, nothing_imported_message
from radscreen.manifests.pseudonym import SALT_ENV, resolve_salt
from radscreen.manifests.scan import check_folder, normalise_codes
from radscreen.manifests.schema import write_image_root
from radscreen.utils.cli import run_command
from radscreen.utils.console import console, print_counts
from radscreen.utils.tables import check_output_path, write_csv


@dataclass(frozen=True)
class Dataset:
    """One subcommand: its help line, how it turns the parsed command line and the options every dataset shares
    into (manifest, rejects), and the options only it takes."""

    help: str
    read: Callable[[argparse.Namespace, dict], tuple[pd.DataFrame, pd.DataFrame]]
    add_options: Callable[[argparse.ArgumentParser], None] = lambda parser: None


def read_listed(args: argparse.Namespace, options: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A dataset whose metadata CSV alone lists its images (the adapters of radscreen.manifests.importers)."""
    return import_metadata(args.dataset, args.metadata_csv, **options)


def read_mimic(args: argparse.Namespace, options: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """MIMIC-CXR's metadata CSV joined with MIMIC-IV's patients / admissions tables (radscreen.manifests.mimic)."""
    return mimic.importer(args)(args.metadata_csv, **options)


# The subcommands. A dataset that needs more than its metadata CSV is one entry here, with its options and reader.
DATASETS: dict[str, Dataset] = {
    **{name: Dataset(f"{DATASET_NAMES.get(name, name)} metadata CSV", read_listed) for name in ADAPTERS},
    mimic.DATASET: Dataset("MIMIC-CXR metadata CSV with MIMIC-IV hosp patients.csv and admissions.csv", read_mimic,
                           mimic.add_arguments),
}


def add_shared_options(parser: argparse.ArgumentParser) -> None:
    """The metadata CSV and the options of every dataset."""
    parser.add_argument("metadata_csv", type=Path)
    parser.add_argument("--images-root", type=Path, help="folder holding the images; files are checked")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rejects", type=Path, help="rejects CSV (default: <out>.rejects.csv)")
    parser.add_argument("--salt", help=f"pseudonymisation salt (default: ${SALT_ENV})")
    parser.add_argument("--cohort", help="cohort column value (default: the dataset name)")
    parser.add_argument("--view", nargs="*", help="accepted views, e.g. PA (default: all)")
    parser.add_argument("--age-min", type=float)
    parser.add_argument("--age-max", type=float)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    datasets = parser.add_subparsers(dest="dataset", required=True, metavar="DATASET",
                                     help=", ".join(sorted(DATASETS)) + " (DATASET --help: its options)")
    for name, dataset in sorted(DATASETS.items()):
        subcommand = datasets.add_parser(name, help=dataset.help, description=f"Import the {dataset.help}.")
        add_shared_options(subcommand)
        dataset.add_options(subcommand)
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
    manifest, rejects = DATASETS[args.dataset].read(args, {
        "salt": salt, "images_root": args.images_root, "views": normalise_codes(args.view),
        "age_min": args.age_min, "age_max": args.age_max, **({"cohort": args.cohort} if args.cohort else {}),
    })
    write_csv(rejects, rejects_path)
    if manifest.empty:
        raise NoImagesError(nothing_imported_message(args.metadata_csv, args.images_root, rejects, rejects_path))
    write_csv(manifest, out)
    if args.images_root is not None:
        write_image_root(out, args.images_root)
    print_counts(f"{args.dataset} → {out}", len(manifest), Counter(rejects["reason"].tolist()))
    console.print(f"manifest: {out}\nrejects:  {rejects_path}", soft_wrap=True)
    return 0


def run() -> None:
    """Entry point of radscreen-import-manifest."""
    run_command(main)
