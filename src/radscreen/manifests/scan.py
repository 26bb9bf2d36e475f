"""DICOM folder → manifest rows + rejects, reading headers only, on a process pool."""

from __future__ import annotations

import csv
import functools
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from radscreen.errors import UserError
from radscreen.io.dicom import DicomHeader, DicomReadError, read_header
from radscreen.manifests import labels
from radscreen.manifests.labels import LabelError
from radscreen.manifests.pseudonym import pseudonymise
from radscreen.manifests.schema import COLUMN_NAMES, DICOM_EXTRA_COLUMNS
from radscreen.utils.parallel import map_with_progress

REJECT_COLUMNS = ("path", "reason")
DUPLICATE_REASON = "duplicate image (same SOPInstanceUID as another file)"
COLOUR_REASON = "not greyscale (SamplesPerPixel > 1: RGB or YBR)"
MULTIFRAME_REASON = "multi-frame image (NumberOfFrames > 1)"
_SAFE_CODE = re.compile(r"^[A-Z0-9_]{1,16}$")


@dataclass(frozen=True)
class ScanOptions:
    """What to take from a DICOM folder. Empty filter lists accept everything."""

    root: str
    salt: str
    modalities: tuple[str, ...] = ("CR", "DX")
    views: tuple[str, ...] = ("PA",)
    age_min: float | None = None
    age_max: float | None = None
    cohort: str = ""
    body_parts: tuple[str, ...] = ("CHEST",)  # BodyPartExamined, upper case
    allow_missing_body_part: bool = True  # many sites leave BodyPartExamined empty on chest films


@dataclass
class ScanSummary:
    """Counts of a scan, for the console and for tests."""

    taken: int = 0
    rejected: Counter = field(default_factory=Counter)
    files: int = 0  # files scanned (taken or rejected by the scan itself)
    raw_id_in_path: int = 0
    clinical_rejected: pd.DataFrame | None = None  # clinical rows not used (CSV line, reason), after a join


def _safe_code(value: str) -> str:
    """A header code (modality, view) fit for a reason string, or 'other' when it looks free-text."""
    return value if _SAFE_CODE.match(value) else ("missing" if not value else "other")


def body_part_code(value: str) -> str:
    """BodyPartExamined as written to the manifest: the upper-case code, '' when absent, 'other' for free text."""
    value = value.strip().upper()
    return _safe_code(value) if value else ""


def body_part_reason(value: str, allowed: Sequence[str], allow_missing: bool = True) -> str | None:
    """The reject reason for a BodyPartExamined value, or None when it is accepted (`allowed` empty: any)."""
    code = body_part_code(value)
    if not code:
        return None if allow_missing or not allowed else "missing body part"
    if allowed and code not in allowed:
        return f"wrong body part ({code})"
    return None


@dataclass(frozen=True)
class Demographics:
    """What a header says about the patient, validated: age in years, sex M/F, study date (or None)."""

    age_years: float
    sex: str
    study_date: object


def header_demographics(patient_id: str, birth_date: str, study_date: str, patient_age: str, patient_sex: str,
                        age_min: float | None = None, age_max: float | None = None) -> Demographics:
    """Validated demographics from DICOM header strings; LabelError with a fixed reason otherwise.

    Age = StudyDate − PatientBirthDate, else PatientAge ('058Y'); shared by the CXR and CT manifest builders.
    """
    if not patient_id:
        raise LabelError("missing PatientID")
    sex = labels.normalise_sex(patient_sex)
    if sex is None:
        raise LabelError(labels.UNKNOWN_SEX)
    try:
        birth = labels.parse_dicom_date(birth_date)
    except LabelError as exc:
        raise LabelError("impossible birth date") from exc
    try:
        study = labels.parse_dicom_date(study_date)
    except LabelError as exc:
        raise LabelError("impossible study date") from exc
    if birth is not None and study is not None:
        age = labels.age_from_dates(birth, study)
    else:
        age = labels.parse_dicom_age(patient_age)
        if age is None:
            raise LabelError("missing birth date" if birth is None else "missing study date")
    if labels.age_sex_rejects(age, sex, age_min, age_max)[labels.AGE_OUT_OF_RANGE]:
        raise LabelError(labels.AGE_OUT_OF_RANGE)
    return Demographics(age, sex, study)


def pixel_format_reason(header: DicomHeader) -> str | None:
    """Why the pixels cannot be a radiograph (colour samples, several frames), or None."""
    if header.samples_per_pixel > 1:
        return COLOUR_REASON
    if header.frames > 1:
        return MULTIFRAME_REASON
    return None


def header_reason(header: DicomHeader, options: ScanOptions) -> str | None:
    """Why a radiograph's header is not taken (pixel format, modality, body part, view; in that order), or None."""
    not_radiograph = pixel_format_reason(header)
    if not_radiograph:
        return not_radiograph
    if options.modalities and header.modality not in options.modalities:
        return f"wrong modality ({_safe_code(header.modality)})"
    wrong_part = body_part_reason(header.body_part, options.body_parts, options.allow_missing_body_part)
    if wrong_part:
        return wrong_part
    view = labels.normalise_view(header.view_position)
    if options.views and view not in options.views:
        return f"wrong view ({view or _safe_code(header.view_position.upper())})"
    return None


def scan_file(path: str, options: ScanOptions) -> tuple[dict | None, str | None]:
    """One file → (manifest row, None) or (None, reason). Raw identifiers never leave this function."""
    try:
        header = read_header(path)
    except DicomReadError as exc:
        return None, str(exc)
    reason = header_reason(header, options)
    if reason:
        return None, reason
    modality, view = header.modality, labels.normalise_view(header.view_position)
    try:
        found = header_demographics(header.patient_id, header.birth_date, header.study_date, header.patient_age,
                                    header.patient_sex, options.age_min, options.age_max)
    except LabelError as exc:
        return None, str(exc)
    relative = os.path.relpath(path, options.root)
    image_key = header.sop_instance_uid or relative
    row = {
        "image_id": pseudonymise(image_key, options.salt, prefix="i"),
        "patient_id": pseudonymise(header.patient_id, options.salt),
        "path": Path(relative).as_posix(),
        "modality": modality,
        "view": view or "",
        "study_date": found.study_date.isoformat() if found.study_date else "",
        "age_years": round(found.age_years, 4),
        "sex": found.sex,
        "cohort": options.cohort,
        "body_part": body_part_code(header.body_part),
        "rows": header.rows,
        "columns": header.columns,
        "photometric": header.photometric,
        "transfer_syntax": header.transfer_syntax,
        "bits_stored": header.bits_stored,
        "_raw_id_in_path": header.patient_id in relative,
    }
    return row, None


def _scan_file_with_path(path: str, options: ScanOptions) -> tuple[str, dict | None, str | None]:
    row, reason = scan_file(path, options)
    return path, row, reason


def iter_files(root: str | os.PathLike) -> Iterator[str]:
    """Every regular file below root, depth first, in sorted order, without listing the folder up front."""
    stack = [os.fspath(root)]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            entries = sorted(entries, key=lambda e: e.name)
        subfolders = []
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                subfolders.append(entry.path)
            elif entry.is_file() and not entry.name.startswith("."):
                yield entry.path
        stack.extend(reversed(subfolders))


def check_folder(path: str | os.PathLike, what: str) -> Path:
    """`path` as a Path when it is a readable folder; else UserError saying what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{what} {path} does not exist")
    if not path.is_dir():
        raise UserError(f"{what} {path} is a file, not a folder; give the folder that holds the images")
    if not os.access(path, os.R_OK | os.X_OK):
        raise UserError(f"{what} {path} cannot be read (permission denied)")
    return path


def count_files(root: str | os.PathLike) -> int:
    """Number of files iter_files will yield (one cheap directory walk, for the progress bar)."""
    return sum(1 for _ in iter_files(root))


def scan_folder(
    options: ScanOptions,
    rows_csv: str | os.PathLike,
    rejects_csv: str | os.PathLike,
    *,
    workers: int | None = None,
    show_progress: bool = True,
) -> ScanSummary:
    """Scan every file under options.root; stream taken rows to rows_csv and rejects to rejects_csv.

    Rows and rejects are written as results arrive, so memory does not grow with the folder and a
    crash leaves everything scanned so far on disk. Rejected paths are relative to the root.
    """
    summary = ScanSummary()
    row_columns = [c for c in COLUMN_NAMES if c not in ("t_score_ls", "t_score_fn", "t_score_th",
                                                          "t_score_min", "bmd_class", "split", "fold")]
    row_columns += [c for c in DICOM_EXTRA_COLUMNS if not c.startswith("dxa")]
    worker = functools.partial(_scan_file_with_path, options=options)
    with open(rows_csv, "w", newline="") as rows_fp, open(rejects_csv, "w", newline="") as rej_fp:
        row_writer = csv.DictWriter(rows_fp, fieldnames=row_columns, extrasaction="ignore")
        rej_writer = csv.writer(rej_fp)
        row_writer.writeheader()
        rej_writer.writerow(REJECT_COLUMNS)
        results = map_with_progress(
            worker, iter_files(options.root), total=count_files(options.root), workers=workers,
            description="reading DICOM headers", show_progress=show_progress, chunksize=None,
        )
        for path, row, reason in results:
            summary.files += 1
            if row is None:
                summary.rejected[reason] += 1
                rej_writer.writerow((Path(os.path.relpath(path, options.root)).as_posix(), reason))
                continue
            summary.taken += 1
            summary.raw_id_in_path += bool(row.pop("_raw_id_in_path"))
            row_writer.writerow(row)
    return summary


def drop_duplicates(manifest: pd.DataFrame, reason: str = DUPLICATE_REASON) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep the first file (by path) of each image_id; return (kept, rejects of the others)."""
    ordered = manifest.sort_values("path", kind="stable")
    duplicated = ordered.duplicated("image_id", keep="first")
    rejects = pd.DataFrame({"path": ordered.loc[duplicated, "path"], "reason": reason})
    return ordered.loc[~duplicated].reset_index(drop=True), rejects.reset_index(drop=True)


def normalise_codes(values: Sequence[str] | None) -> tuple[str, ...]:
    """A filter list from config/CLI as upper-case codes (a tuple); None or [] gives (), which accepts everything."""
    return tuple(str(v).upper() for v in values) if values else ()
