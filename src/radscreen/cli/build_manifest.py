"""Build a manifest from a folder of DICOM files (headers only), with a rejects report.

    radscreen-build-manifest DICOM_DIR --out data_manifests/mysite.csv [--clinical dxa.csv]

Defaults come from conf/scan/dicom.yaml (or --config, whose missing keys keep those defaults); options override
them. A user's mistake (missing folder, output in a missing folder, unusable clinical table, no image taken) is one
line on stderr and exit code 2; outputs are written atomically.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from radscreen.errors import UserError
from radscreen.manifests.build import ClinicalJoin, build_manifest, clinical_rejects_path, default_rejects_path
from radscreen.manifests.clinical import ClinicalColumns
from radscreen.manifests.labels import BMD_CLASSES
from radscreen.manifests.pseudonym import resolve_salt
from radscreen.manifests.scan import ScanOptions, normalise_codes
from radscreen.utils.cli import run_command
from radscreen.utils.console import console, print_counts
from radscreen.utils.project_root import config_dir
from radscreen.utils.tables import check_input_file

DEFAULT_CONFIG = config_dir() / "scan" / "dicom.yaml"


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
    parser.add_argument("--body-part", nargs="*", help="accepted BodyPartExamined values, e.g. CHEST (none: any)")
    parser.add_argument("--require-body-part", action="store_true", default=None,
                        help="reject files without BodyPartExamined (default: conf allow_missing_body_part)")
    parser.add_argument("--age-min", type=float)
    parser.add_argument("--age-max", type=float)
    parser.add_argument("--window-days", type=float, help="clinical date window, ± days")
    parser.add_argument("--require-clinical", action="store_true", default=None)
    parser.add_argument("--no-dedupe", action="store_true")
    parser.add_argument("--workers", type=int)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def _load_yaml(path: Path) -> DictConfig:
    check_input_file(path, "scan config")
    try:
        cfg = OmegaConf.load(path)
    except Exception as exc:  # noqa: BLE001 - YAML and OmegaConf raise many types
        raise UserError(f"scan config {path} is not valid YAML ({type(exc).__name__})") from None
    if not isinstance(cfg, DictConfig):
        raise UserError(f"scan config {path} is not a mapping of keys to values")
    return cfg


def load_config(path: Path) -> DictConfig:
    """The scan config: a user's --config with the keys it lacks (top level and under clinical) taken from
    conf/scan/dicom.yaml, so that a file written before a key existed still works."""
    defaults = _load_yaml(DEFAULT_CONFIG)
    if path.resolve() == DEFAULT_CONFIG:
        return defaults
    cfg = _load_yaml(path)
    for key, value in defaults.items():
        if key not in cfg:
            cfg[key] = value
    for key, value in defaults.clinical.items():
        if key not in cfg.clinical:
            cfg.clinical[key] = value
    return cfg


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = load_config(args.config)
    salt = resolve_salt(args.salt or cfg.salt, cfg.salt_env)
    pick = lambda cli, conf: conf if cli is None else cli  # noqa: E731
    options = ScanOptions(
        root=str(args.dicom_dir),
        salt=salt,
        modalities=normalise_codes(pick(args.modality, cfg.modalities)),
        views=normalise_codes(pick(args.view, cfg.views)),
        body_parts=normalise_codes(pick(args.body_part, cfg.body_parts)),
        allow_missing_body_part=not args.require_body_part and bool(cfg.allow_missing_body_part),
        age_min=pick(args.age_min, cfg.age_min),
        age_max=pick(args.age_max, cfg.age_max),
        cohort=pick(args.cohort, cfg.cohort) or "",
    )
    clinical = None
    if args.clinical:
        columns = OmegaConf.to_container(cfg.clinical.columns)
        try:
            columns = ClinicalColumns(**columns)
        except TypeError:
            raise UserError(f"clinical.columns in {args.config} takes only the keys patient_id, date and t_scores; "
                            f"it has {', '.join(map(str, columns))}") from None
        clinical = ClinicalJoin(
            path=str(args.clinical),
            window_days=pick(args.window_days, cfg.clinical.window_days),
            require=pick(args.require_clinical, cfg.clinical.require),
            columns=columns,
        )
    rejects = args.rejects or default_rejects_path(args.out)
    manifest, summary = build_manifest(
        options, args.out, rejects=rejects, clinical=clinical,
        dedupe=cfg.dedupe and not args.no_dedupe, workers=pick(args.workers, cfg.workers),
        show_progress=not args.quiet,
    )
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


def run() -> None:
    """Entry point of radscreen-build-manifest."""
    run_command(main)
