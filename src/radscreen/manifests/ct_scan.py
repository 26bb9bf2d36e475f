"""CT studies → manifest rows: one row per DICOM series folder, or per NIfTI file listed in a CSV.

BodyPartExamined is kept in the `body_part` column; it filters only when asked (`body_parts`), because CT series
often leave it empty or name the widest region scanned (a chest-abdomen-pelvis series that holds the chest).
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pydicom
import SimpleITK as sitk

from radscreen.errors import UserError
from radscreen.io.volume import VolumeReadError, is_volume_file, series_files
from radscreen.manifests.labels import LabelError, age_sex_rejects, normalise_sex
from radscreen.manifests.pseudonym import pseudonymise
from radscreen.manifests.scan import body_part_code, body_part_reason, drop_duplicates, header_demographics
from radscreen.manifests.schema import conform
from radscreen.utils.parallel import map_with_progress

HEADER_TAGS = ["PatientID", "PatientBirthDate", "PatientAge", "PatientSex", "StudyDate", "SeriesInstanceUID",
               "Modality", "BodyPartExamined", "SliceThickness", "PixelSpacing", "Rows", "Columns"]
REJECT_COLUMNS = ["path", "reason"]
VOLUMES_COLUMNS = ("path", "patient_id", "age_years", "sex")
DUPLICATE_SERIES = "duplicate series (same SeriesInstanceUID as another folder)"
DUPLICATE_VOLUME = "duplicate volume (same file as an earlier row)"


@dataclass(frozen=True)
class CTScanOptions:
    root: str
    salt: str
    age_min: float | None = None
    age_max: float | None = None
    cohort: str = ""
    body_parts: tuple[str, ...] = ()  # BodyPartExamined filter, upper case; () accepts every body part
    allow_missing_body_part: bool = True


def series_folders(root: str | os.PathLike) -> list[str]:
    """Folders under root that directly hold DICOM files (candidate series), sorted."""
    folders = []
    for folder, _, files in os.walk(root):
        if any(not f.startswith(".") and not is_volume_file(f) for f in files):
            folders.append(folder)
    return sorted(folders)


def scan_series(folder: str, options: CTScanOptions) -> tuple[str, dict | None, str | None]:
    """One series folder → (folder, row, None) or (folder, None, reason); raw identifiers stay here."""
    try:
        files = series_files(folder)
        header = pydicom.dcmread(files[0], stop_before_pixels=True, specific_tags=HEADER_TAGS)
    except VolumeReadError as exc:
        return folder, None, str(exc)
    except Exception:  # noqa: BLE001 - unreadable header: one reason, never the exception text
        return folder, None, "unreadable DICOM header"
    if str(header.get("Modality", "")).upper() != "CT":
        return folder, None, "wrong modality (not CT)"
    text = lambda keyword: str(header.get(keyword, "") or "").strip()  # noqa: E731
    wrong_part = body_part_reason(text("BodyPartExamined"), options.body_parts, options.allow_missing_body_part)
    if wrong_part:
        return folder, None, wrong_part
    try:
        found = header_demographics(text("PatientID"), text("PatientBirthDate"), text("StudyDate"),
                                    text("PatientAge"), text("PatientSex"), options.age_min, options.age_max)
    except LabelError as exc:
        return folder, None, str(exc)
    relative = Path(os.path.relpath(folder, options.root)).as_posix()
    return folder, {
        "image_id": pseudonymise(text("SeriesInstanceUID") or relative, options.salt, prefix="i"),
        "patient_id": pseudonymise(text("PatientID"), options.salt),
        "path": relative, "modality": "CT", "view": "",
        "study_date": found.study_date.isoformat() if found.study_date else "",
        "age_years": round(found.age_years, 4), "sex": found.sex, "cohort": options.cohort,
        "body_part": body_part_code(text("BodyPartExamined")),
        "n_slices": len(files), "rows": int(header.get("Rows", 0) or 0), "columns": int(header.get("Columns", 0) or 0),
    }, None


def scan_ct_folder(options: CTScanOptions, workers: int | None = None,
                   show_progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every series folder under options.root → (manifest, rejects); a series found in two folders is taken
    once (the first folder by path)."""
    folders = series_folders(options.root)
    worker = functools.partial(scan_series, options=options)
    rows, rejects = [], []
    for folder, row, reason in map_with_progress(worker, folders, total=len(folders), workers=workers,
                                                 description="reading CT series", chunksize=1,
                                                 show_progress=show_progress):
        if row is None:
            rejects.append({"path": Path(os.path.relpath(folder, options.root)).as_posix(), "reason": reason})
        else:
            rows.append(row)
    rejects = pd.DataFrame(rejects, columns=REJECT_COLUMNS)
    if not rows:
        return pd.DataFrame(rows), rejects
    manifest, duplicates = drop_duplicates(pd.DataFrame(rows), reason=DUPLICATE_SERIES)
    rejects = pd.concat([rejects, duplicates], ignore_index=True) if len(duplicates) else rejects
    return conform(manifest), rejects


def import_nifti(table: pd.DataFrame, root: str | os.PathLike, salt: str, cohort: str = "",
                 age_min: float | None = None, age_max: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of a CSV (path, patient_id, age_years, sex[, study_date]) describing NIfTI/MHA volumes under root →
    (manifest, rejects). Files are checked by reading their header only; a file listed twice is taken once."""
    missing = [c for c in VOLUMES_COLUMNS if c not in table]
    if missing:
        raise UserError(f"the volumes CSV lacks column(s): {', '.join(missing)}")
    rows, rejects, seen = [], [], set()
    for record in table.to_dict("records"):
        path, reason = str(record["path"]), None
        age = pd.to_numeric(record["age_years"], errors="coerce")
        sex = normalise_sex(record["sex"])
        if not (Path(root) / path).is_file() or not is_volume_file(path):
            reason = "volume file not found"
        elif path in seen:
            reason = DUPLICATE_VOLUME
        else:
            reason = next((text for text, applies in age_sex_rejects(age, sex, age_min, age_max).items() if applies),
                          None)
        if reason is None:
            reader = sitk.ImageFileReader()
            reader.SetFileName(str(Path(root) / path))
            try:
                reader.ReadImageInformation()
            except RuntimeError:
                reason = "volume could not be read"
        if reason:
            rejects.append({"path": path, "reason": reason})
            continue
        seen.add(path)
        rows.append({"image_id": pseudonymise(path, salt, prefix="i"),
                     "patient_id": pseudonymise(record["patient_id"], salt),
                     "path": path, "modality": "CT", "age_years": float(age), "sex": sex,
                     "study_date": record.get("study_date", ""), "cohort": cohort})
    manifest = conform(pd.DataFrame(rows)) if rows else pd.DataFrame(rows)
    return manifest, pd.DataFrame(rejects, columns=REJECT_COLUMNS)


def count_reasons(rejects: pd.DataFrame) -> Counter:
    return Counter(rejects["reason"].tolist())
