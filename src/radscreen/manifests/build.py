"""Build a manifest from a DICOM folder: scan → de-duplicate → clinical join → write, with rejects.

Every output is written atomically; when no image is taken, the rejects report is still written (nothing scanned
is lost) but no manifest is, and NoImagesError says why with the counts.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from radscreen.errors import UserError
from radscreen.manifests.clinical import ClinicalColumns, join_nearest, prepare_clinical, read_clinical
from radscreen.manifests.scan import ScanOptions, ScanSummary, check_folder, drop_duplicates, scan_folder
from radscreen.manifests.schema import beside, conform, write_image_root
from radscreen.utils.tables import atomic_output, check_output_path, write_csv

NO_CLINICAL_REASON = "no clinical record within the date window"
NOT_DICOM_REASON = "not DICOM"


class NoImagesError(UserError):
    """Nothing was taken from the input, so no manifest was written (the rejects report was)."""


@dataclass(frozen=True)
class ClinicalJoin:
    """A clinical CSV to join and how."""

    path: str
    window_days: float = 92.0  # the thesis paired DXA within 3 months
    require: bool = False  # reject images with no record in the window
    columns: ClinicalColumns = ClinicalColumns()


def default_rejects_path(out: str | os.PathLike) -> Path:
    """`<name>.rejects.csv` beside the manifest."""
    return beside(out, ".rejects.csv")


def clinical_rejects_path(out: str | os.PathLike) -> Path:
    """`<name>.clinical_rejects.csv` beside the manifest: clinical rows not used, by CSV line, with the reason."""
    return beside(out, ".clinical_rejects.csv")


def reason_counts(rejected: Counter) -> str:
    """'3 wrong view (LAT), 1 not DICOM': the reasons, most frequent first."""
    return ", ".join(f"{count} {reason}" for reason, count in rejected.most_common())


def nothing_taken_message(what: str, source: str | os.PathLike, count: int, units: tuple[str, str],
                          rejected: Counter, rejects: str | os.PathLike) -> str:
    """'no {what} taken from {source}: {count} {unit}, all rejected (counts); see {rejects}' (no counts for 0);
    `units` is (singular, plural)."""
    head = f"no {what} taken from {source}: {count} {units[count != 1]}"
    return f"{head}, all rejected ({reason_counts(rejected)}); see {rejects}" if count else head


def no_dicom_message(root: str | os.PathLike, files: int, rejected: Counter, rejects: str | os.PathLike) -> str:
    """Why a DICOM folder gave no manifest row, with the counts."""
    if files and set(rejected) == {NOT_DICOM_REASON}:
        return f"no DICOM images taken from {root}: {files} file{'s' * (files != 1)}, none DICOM; see {rejects}"
    return nothing_taken_message("DICOM images", root, files, ("file", "files"), rejected, rejects)


def _dedupe_and_join(manifest: pd.DataFrame, dedupe: bool, clinical: ClinicalJoin | None,
                     table: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The scanned rows after de-duplication and the clinical join: (rows kept, rejects with path and reason)."""
    rejects = [pd.DataFrame(columns=["path", "reason"])]
    if manifest.empty:
        return manifest, rejects[0]
    if dedupe:
        manifest, duplicates = drop_duplicates(manifest)
        rejects.append(duplicates)
    if clinical is not None:
        manifest = join_nearest(manifest, table, clinical.window_days)
        if clinical.require:
            unmatched = manifest["dxa_date"].isna()
            rejects.append(pd.DataFrame({"path": manifest.loc[unmatched, "path"], "reason": NO_CLINICAL_REASON}))
            manifest = manifest.loc[~unmatched]
    return manifest, pd.concat([r for r in rejects if len(r)] or rejects[:1], ignore_index=True)


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
    """Scan options.root and write the manifest (and its rejects report); return both in memory.

    UserError before the scan for a missing folder, an output in a missing folder or an unusable clinical table;
    NoImagesError after it when no image is taken (the rejects report is written, the manifest is not)."""
    out = check_output_path(out, "manifest")
    rejects = check_output_path(rejects or default_rejects_path(out), "rejects report")
    check_folder(options.root, "DICOM folder")
    table = clinical_rows_rejected = None
    if clinical is not None:  # checked before the scan: a wrong column fails at once, not after an hour of headers
        table, clinical_rows_rejected = prepare_clinical(read_clinical(clinical.path, clinical.columns),
                                                         options.salt, clinical.columns, source=clinical.path)
    with atomic_output(rejects) as rejects_partial, tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        rows_csv = Path(tmp) / "rows.csv"
        summary = scan_folder(options, rows_csv, rejects_partial, workers=workers, show_progress=show_progress)
        manifest = pd.read_csv(rows_csv, dtype={"study_date": "string", "path": "string"},
                               keep_default_na=False, na_values=[""])
        manifest, extra = _dedupe_and_join(manifest, dedupe, clinical, table)
        extra.to_csv(rejects_partial, mode="a", header=False, index=False)
        summary.rejected.update(extra["reason"].tolist())
    if clinical is not None:
        summary.clinical_rejected = clinical_rows_rejected
        if len(clinical_rows_rejected):
            write_csv(clinical_rows_rejected, clinical_rejects_path(out))
        else:
            clinical_rejects_path(out).unlink(missing_ok=True)  # no stale list from an earlier build
    summary.taken = len(manifest)
    if manifest.empty:
        raise NoImagesError(no_dicom_message(options.root, summary.files, summary.rejected, rejects))
    manifest = conform(manifest.sort_values("path", kind="stable").reset_index(drop=True))
    write_csv(manifest, out)
    write_image_root(out, options.root)
    return manifest, summary
