#!/usr/bin/env python
"""Import a public CXR dataset's metadata into the manifest schema, with a rejects report.

    python scripts/import_manifest.py {nih,chexpert,padchest} METADATA_CSV --images-root DIR --out OUT.csv
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from radscreen.manifests.build import default_rejects_path
from radscreen.manifests.importers import ADAPTERS, import_metadata
from radscreen.manifests.pseudonym import SALT_ENV, resolve_salt
from radscreen.manifests.scan import filter_by_values
from radscreen.utils.console import console, print_counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=sorted(ADAPTERS))
    parser.add_argument("metadata_csv", type=Path)
    parser.add_argument("--images-root", type=Path, help="folder holding the images; files are checked")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rejects", type=Path)
    parser.add_argument("--salt", help=f"pseudonymisation salt (default: ${SALT_ENV})")
    parser.add_argument("--cohort", help="cohort column value (default: the dataset name)")
    parser.add_argument("--view", nargs="*", help="accepted views, e.g. PA (default: all)")
    parser.add_argument("--age-min", type=float)
    parser.add_argument("--age-max", type=float)
    args = parser.parse_args(argv)
    try:
        salt = resolve_salt(args.salt)
        if args.images_root is not None and not args.images_root.is_dir():
            raise ValueError(f"images root {args.images_root} is not a folder")
        manifest, rejects = import_metadata(
            args.dataset, args.metadata_csv, salt=salt, images_root=args.images_root,
            views=filter_by_values(args.view), age_min=args.age_min, age_max=args.age_max,
            **({"cohort": args.cohort} if args.cohort else {}),
        )
    except (ValueError, FileNotFoundError) as exc:
        console.print(f"[red]error: {exc}")
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rejects_path = args.rejects or default_rejects_path(args.out)
    manifest.to_csv(args.out, index=False)
    rejects.to_csv(rejects_path, index=False)
    print_counts(f"{args.dataset} → {args.out}", len(manifest), Counter(rejects["reason"].tolist()))
    console.print(f"manifest: {args.out}\nrejects:  {rejects_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
