"""The manifest schema: one row per image, the same columns whatever the source."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from radscreen.errors import UserError
from radscreen.utils.tables import read_table, write_csv, write_text


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # pandas dtype the column is read as
    unit: str
    description: str


COLUMNS: tuple[Column, ...] = (
    Column("image_id", "string", "-", "pseudonym of the image (salted hash of SOPInstanceUID, else of the path)"),
    Column("patient_id", "string", "-", "pseudonym of the patient (salted HMAC-SHA256 of PatientID)"),
    Column("path", "string", "-", "image file path, relative to the manifest's image root"),
    Column("modality", "string", "-", "CR, DX or CT (DICOM Modality)"),
    Column("view", "string", "-", "PA, AP or LAT (ViewPosition, long spellings normalised)"),
    Column("study_date", "string", "ISO date", "StudyDate (else AcquisitionDate / ContentDate) as YYYY-MM-DD"),
    Column("age_years", "float64", "years", "(StudyDate - PatientBirthDate) / 365.2425 d; else PatientAge"),
    Column("sex", "string", "-", "M or F (PatientSex); other values are rejected"),
    Column("t_score_ls", "float64", "SD", "DXA T-score, lumbar spine (clinical join)"),
    Column("t_score_fn", "float64", "SD", "DXA T-score, femoral neck (clinical join)"),
    Column("t_score_th", "float64", "SD", "DXA T-score, total hip (clinical join)"),
    Column("t_score_min", "float64", "SD", "lowest available of the three T-scores"),
    Column("bmd_class", "string", "-", "WHO class of t_score_min: normal / osteopenia / osteoporosis"),
    Column("split", "string", "-", "train / val / test / external (split step)"),
    Column("fold", "Int64", "-", "cross-validation fold 0..K-1 (split step with --folds)"),
    Column("cohort", "string", "-", "source of the row: site name or public dataset"),
)
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
REQUIRED: tuple[str, ...] = ("image_id", "patient_id", "path")
DTYPES: dict[str, str] = {c.name: c.dtype for c in COLUMNS}

# Technical columns the DICOM scan adds after the schema columns.
DICOM_EXTRA_COLUMNS: tuple[str, ...] = (
    "body_part", "rows", "columns", "photometric", "transfer_syntax", "bits_stored", "dxa_date", "dxa_days_from_study",
)


def conform(df: pd.DataFrame) -> pd.DataFrame:
    """Add missing schema columns (empty), cast to the schema dtypes, put schema columns first.

    Extra columns (clinical variables, technical header fields) are kept after the schema ones.
    """
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"manifest lacks required column(s): {', '.join(missing)}")
    out = df.copy()
    for column in COLUMNS:
        if column.name not in out.columns:
            out[column.name] = pd.Series(index=out.index, dtype=column.dtype)
        else:
            out[column.name] = out[column.name].astype(column.dtype)
    extras = [c for c in out.columns if c not in COLUMN_NAMES]
    return out[list(COLUMN_NAMES) + extras]


def read_manifest(path: str, what: str = "manifest") -> pd.DataFrame:
    """Read a manifest CSV with the schema's dtypes (empty cells stay missing, never sentinels).

    UserError (one line) when the file is missing, not a comma-separated table, lacks a required column, has no
    rows or lists an image twice."""
    df = read_table(path, what, required=REQUIRED,
                    dtype={c.name: c.dtype for c in COLUMNS if c.dtype != "float64"},
                    keep_default_na=True, low_memory=False)
    if df.empty:
        raise UserError(f"{what} {path} has a header but no rows")
    duplicated = df["image_id"].duplicated(keep="first")
    if duplicated.any():
        rows = ", ".join(str(i + 2) for i in df.index[duplicated][:5])  # +2: the header is line 1
        raise UserError(f"{what} {path} lists {int(duplicated.sum())} image_id(s) more than once (lines {rows}); "
                        "each image must appear once (rebuild it, or drop the repeated rows)")
    return conform(df)


def write_manifest(df: pd.DataFrame, path: str) -> None:
    """Write a manifest CSV in schema order (atomically: a failed write leaves no half file)."""
    write_csv(conform(df), path)


SOURCE_SUFFIX = ".source.json"


def beside(manifest: str | os.PathLike, suffix: str) -> Path:
    """`<name><suffix>` in the manifest's folder (`<name>.csv` → `<name>.rejects.csv`)."""
    manifest = Path(manifest)
    return manifest.with_name(manifest.name.removesuffix(".csv") + suffix)


def write_image_root(manifest: str | os.PathLike, image_root: str | os.PathLike) -> Path:
    """Record beside a manifest the folder its paths are relative to (`<name>.source.json`), so training needs no
    data.image_root while the images stay where the manifest was built."""
    record = {"image_root": str(Path(image_root).resolve())}
    return write_text(json.dumps(record, indent=2) + "\n", beside(manifest, SOURCE_SUFFIX))


def recorded_image_root(manifest: str | os.PathLike) -> str | None:
    """The image folder recorded beside a manifest by the tool that built it, or None."""
    source = beside(manifest, SOURCE_SUFFIX)
    if not source.is_file():
        return None
    try:
        return json.loads(source.read_text())["image_root"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{source} is not a manifest source record (delete it, or set data.image_root)") from None
