"""Build a manifest from a DICOM folder: scan → de-duplicate → clinical join → write, with rejects."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from radscreen.manifests.clinical import ClinicalColumns, join_nearest, prepare_clinical
from radscreen.manifests.scan import ScanOptions, ScanSummary, drop_duplicates, scan_folder
from radscreen.manifests.schema import conform

NO_CLINICAL_REASON = "no clinical record within the date window"


@dataclass(frozen=True)
class ClinicalJoin:
    """A clinical CSV to join and how."""

    path: str
    window_days: float = 92.0  # the thesis paired DXA within 3 months
    require: bool = False  # reject images with no record in the window
    columns: ClinicalColumns = ClinicalColumns()


def _beside(out: str | os.PathLike, suffix: str) -> Path:
    """`<name><suffix>` in the manifest's folder (`<name>.csv` → `<name>.rejects.csv`)."""
    out = Path(out)
    return out.with_name(out.name.removesuffix(".csv") + suffix)


def default_rejects_path(out: str | os.PathLike) -> Path:
    """`<name>.rejects.csv` beside the manifest."""
    return _beside(out, ".rejects.csv")


def clinical_rejects_path(out: str | os.PathLike) -> Path:
    """`<name>.clinical_rejects.csv` beside the manifest: clinical rows not used, by CSV line, with the reason."""
    return _beside(out, ".clinical_rejects.csv")


def build_manifest(
    options: ScanOptions,
    out: str | os.PathLike,
    *,
    rejects: str | os.PathLike | None = None,
    clinical: ClinicalJoin | None = None,
    dedupe: bool = True,
    workers: int | None = None,
    show_progress: bool = True,
) -> tuple[pd.DataFrame, ScanSummary]:
    """Scan options.root and write the manifest (and its rejects report); return both in memory."""
    out = Path(out)
    table = clinical_rows_rejected = None
    if clinical is not None:  # checked before the scan: a wrong column fails at once, not after an hour of headers
        table, clinical_rows_rejected = prepare_clinical(pd.read_csv(clinical.path), options.salt,
                                                         clinical.columns, source=clinical.path)
    out.parent.mkdir(parents=True, exist_ok=True)
    rejects = Path(rejects) if rejects else default_rejects_path(out)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        rows_csv = Path(tmp) / "rows.csv"
        summary = scan_folder(options, rows_csv, rejects, workers=workers, show_progress=show_progress)
        manifest = pd.read_csv(rows_csv, dtype={"study_date": "string", "path": "string"},
                               keep_default_na=False, na_values=[""])
    extra_rejects = []
    if dedupe:
        manifest, duplicates = drop_duplicates(manifest)
        extra_rejects.append(duplicates)
    if clinical is not None:
        summary.clinical_rejected = clinical_rows_rejected
        if len(clinical_rows_rejected):
            clinical_rows_rejected.to_csv(clinical_rejects_path(out), index=False)
        else:
            clinical_rejects_path(out).unlink(missing_ok=True)  # no stale list from an earlier build
        manifest = join_nearest(manifest, table, clinical.window_days)
        if clinical.require:
            unmatched = manifest["dxa_date"].isna()
            extra_rejects.append(pd.DataFrame({"path": manifest.loc[unmatched, "path"],
                                               "reason": NO_CLINICAL_REASON}))
            manifest = manifest.loc[~unmatched]
    manifest = conform(manifest.sort_values("path", kind="stable").reset_index(drop=True))
    for extra in extra_rejects:
        if len(extra):
            extra.to_csv(rejects, mode="a", header=False, index=False)
            for reason, count in extra["reason"].value_counts().items():
                summary.rejected[reason] += int(count)
    summary.taken = len(manifest)
    manifest.to_csv(out, index=False)
    return manifest, summary
