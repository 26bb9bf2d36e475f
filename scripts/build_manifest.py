#!/usr/bin/env python
"""Build a manifest from a folder of DICOM files (headers only), with a rejects report.

    python scripts/build_manifest.py DICOM_DIR --out data_manifests/mysite.csv [--clinical dxa.csv]

Defaults come from conf/scan/dicom.yaml (or --config); options override them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omegaconf import OmegaConf

from radscreen.manifests.build import ClinicalJoin, build_manifest, clinical_rejects_path, default_rejects_path
from radscreen.manifests.clinical import ClinicalColumns, ClinicalTableError
from radscreen.manifests.labels import BMD_CLASSES
from radscreen.manifests.pseudonym import resolve_salt
from radscreen.manifests.scan import ScanOptions, filter_by_values
from radscreen.utils.console import console, print_counts, print_error

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "conf" / "scan" / "dicom.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dicom_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="manifest CSV to write")
    parser.add_argument("--rejects", type=Path, help="rejects CSV (default: <out>.rejects.csv)")
    parser.add_argument("--clinical", type=Path, help="clinical CSV with patient id, date and T-scores")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--salt", help="pseudonymisation salt (default: environment variable)")
    parser.add_argument("--cohort")
    parser.add_argument("--modality", nargs="*", help="accepted modalities, e.g. CR DX (none: any)")
    parser.add_argument("--view", nargs="*", help="accepted views, e.g. PA (none: any)")
    parser.add_argument("--age-min", type=float)
    parser.add_argument("--age-max", type=float)
    parser.add_argument("--window-days", type=float, help="clinical date window, ± days")
    parser.add_argument("--require-clinical", action="store_true", default=None)
    parser.add_argument("--no-dedupe", action="store_true")
    parser.add_argument("--workers", type=int)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = OmegaConf.load(args.config)
    if not args.dicom_dir.is_dir():
        console.print(f"[red]error: {args.dicom_dir} is not a folder")
        return 2
    try:
        salt = resolve_salt(args.salt or cfg.salt, cfg.salt_env)
    except ValueError as exc:
        console.print(f"[red]error: {exc}")
        return 2
    pick = lambda cli, conf: conf if cli is None else cli  # noqa: E731
    options = ScanOptions(
        root=str(args.dicom_dir),
        salt=salt,
        modalities=filter_by_values(pick(args.modality, cfg.modalities)),
        views=filter_by_values(pick(args.view, cfg.views)),
        age_min=pick(args.age_min, cfg.age_min),
        age_max=pick(args.age_max, cfg.age_max),
        cohort=pick(args.cohort, cfg.cohort) or "",
    )
    clinical = None
    if args.clinical:
        columns = OmegaConf.to_container(cfg.clinical.columns)
        clinical = ClinicalJoin(
            path=str(args.clinical),
            window_days=pick(args.window_days, cfg.clinical.window_days),
            require=pick(args.require_clinical, cfg.clinical.require),
            columns=ClinicalColumns(**columns),
        )
    rejects = args.rejects or default_rejects_path(args.out)
    try:
        manifest, summary = build_manifest(
            options, args.out, rejects=rejects, clinical=clinical,
            dedupe=cfg.dedupe and not args.no_dedupe, workers=pick(args.workers, cfg.workers),
            show_progress=not args.quiet,
        )
    except ClinicalTableError as exc:
        print_error(str(exc))
        return 2
    notes = []
    if summary.raw_id_in_path:
        notes.append(f"{summary.raw_id_in_path} file paths contain the raw PatientID: the manifest's path "
                     "column then identifies patients; export with anonymised folder names.")
    if clinical is not None:
        notes.append(f"{int(manifest['bmd_class'].notna().sum())} images have a DXA within "
                     f"±{clinical.window_days:g} days")
        counts = manifest["bmd_class"].value_counts()
        notes.append("WHO classes: " + ", ".join(f"{int(counts.get(c, 0))} {c}" for c in BMD_CLASSES)
                     + f", {int(manifest['bmd_class'].isna().sum())} without")
        rows = summary.clinical_rejected
        if rows is not None and len(rows):
            reasons = ", ".join(f"{n} {reason}" for reason, n in rows["reason"].value_counts().items())
            notes.append(f"{len(rows)} clinical row(s) not used ({reasons}): {clinical_rejects_path(args.out)}")
    print_counts(f"manifest {args.out}", summary.taken, summary.rejected, notes)
    console.print(f"manifest: {args.out}\nrejects:  {rejects}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
