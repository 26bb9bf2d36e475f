"""Join a clinical table (DXA T-scores, labs) to manifest rows by patient and nearest date."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from radscreen.errors import UserError
from radscreen.manifests.labels import NORMAL_MIN_T, OSTEOPOROSIS_MAX_T
from radscreen.manifests.pseudonym import pseudonymise
from radscreen.utils.tables import read_table

T_SCORE_COLUMNS = ("t_score_ls", "t_score_fn", "t_score_th")
T_SCORE_RANGE = (-6.0, 6.0)  # DXA T-scores outside it are entry errors (units, sign, a Z-score column)


class ClinicalTableError(UserError, ValueError):
    """A clinical table that cannot be joined as configured (a missing column): one line for the user."""


@dataclass(frozen=True)
class ClinicalColumns:
    """Names of the clinical CSV's columns (the defaults follow data_manifests/templates/clinical.csv)."""

    patient_id: str = "patient_id"
    date: str = "date"
    t_scores: Mapping[str, str] = field(
        default_factory=lambda: {"t_score_ls": "t_score_ls", "t_score_fn": "t_score_fn",
                                 "t_score_th": "t_score_th"}
    )


def who_classes(t_score_min: pd.Series) -> pd.Series:
    """Vectorised WHO rule (labels.who_class) on a Series of lowest T-scores; missing stays missing."""
    classes = np.select(
        [t_score_min <= OSTEOPOROSIS_MAX_T, t_score_min < NORMAL_MIN_T, t_score_min >= NORMAL_MIN_T],
        ["osteoporosis", "osteopenia", "normal"],
        default=None,
    )
    return pd.Series(classes, index=t_score_min.index, dtype="string")


def add_bmd_labels(manifest: pd.DataFrame) -> pd.DataFrame:
    """Set t_score_min (lowest available T-score) and bmd_class (WHO) from the three T-score columns."""
    out = manifest.copy()
    present = [c for c in T_SCORE_COLUMNS if c in out.columns]
    out["t_score_min"] = out[present].astype("float64").min(axis=1, skipna=True) if present else np.nan
    out["bmd_class"] = who_classes(out["t_score_min"])
    return out


def read_clinical(path: str, columns: ClinicalColumns = ClinicalColumns()) -> pd.DataFrame:
    """The clinical CSV, its patient column read as text (an ID such as 000123 keeps its zeros, so it matches the
    DICOM PatientID); UserError (one line) when it is missing, a folder, empty, not comma-separated or has no rows."""
    table = read_table(path, "clinical table", dtype={columns.patient_id: "string"}, low_memory=False)
    if table.empty:
        raise ClinicalTableError(f"clinical table {path} has a header but no rows")
    return table


def check_columns(table: pd.DataFrame, columns: ClinicalColumns = ClinicalColumns(), source: str = "") -> None:
    """Every configured column must be in the table; a missing one is named with the table's closest column."""
    wanted = [columns.patient_id, columns.date, *columns.t_scores.values()]
    missing = [c for c in wanted if c not in table.columns]
    if not missing:
        return
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, [str(c) for c in table.columns], n=1, cutoff=0.6)
        hints.append(f"'{name}' (did you mean '{close[0]}'?)" if close else f"'{name}'")
    where = f"clinical table {source}" if source else "clinical table"
    raise ClinicalTableError(f"{where} lacks column(s) {', '.join(hints)}; rename them in the CSV or set "
                             "clinical.columns in conf/scan/dicom.yaml")


def parse_dates(values: pd.Series) -> pd.Series:
    """ISO or DICOM dates (any mix) as datetimes; NaT where a value does not parse."""
    return pd.to_datetime(values, errors="coerce", format="mixed")


def clinical_rejects(table: pd.DataFrame, columns: ClinicalColumns = ClinicalColumns(),
                     dates: pd.Series | None = None) -> pd.DataFrame:
    """Rows that cannot be used, with the reason: `row` is the CSV line (the header is line 1); no identifier.
    `dates`: the date column already parsed (parse_dates), when the caller has it."""
    table = table.reset_index(drop=True)
    dates = parse_dates(table[columns.date]) if dates is None else dates.reset_index(drop=True)
    reasons = pd.Series("", index=table.index, dtype="object")

    def flag(mask: pd.Series, reason: str) -> None:
        reasons[mask & (reasons == "")] = reason

    ids = table[columns.patient_id]
    flag(ids.isna() | (ids.astype(str).str.strip() == ""), "missing patient id")
    flag(table[columns.date].isna(), "missing date")
    flag(dates.isna(), "date does not parse")
    low, high = T_SCORE_RANGE
    for column in columns.t_scores.values():
        values = pd.to_numeric(table[column], errors="coerce")
        flag(table[column].notna() & values.isna(), f"{column} is not a number")
        flag((values < low) | (values > high), f"{column} outside {low:g}…{high:+g}")
    bad = (reasons != "").to_numpy()
    return pd.DataFrame({"row": np.flatnonzero(bad) + 2, "reason": reasons.to_numpy()[bad]})


def prepare_clinical(table: pd.DataFrame, salt: str, columns: ClinicalColumns = ClinicalColumns(),
                     source: str = "") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check the columns, set aside unusable rows (clinical_rejects), pseudonymise the patient column, parse dates
    and rename T-scores to the schema; raw IDs are dropped. Returns (usable rows, rejected rows with reasons)."""
    check_columns(table, columns, source)
    table = table.reset_index(drop=True)  # rows are CSV lines: positions, whatever the frame's index
    dates = parse_dates(table[columns.date])
    rejects = clinical_rejects(table, columns, dates)
    keep = np.ones(len(table), dtype=bool)
    keep[rejects["row"].to_numpy() - 2] = False
    out = table[keep].rename(columns={src: dst for dst, src in columns.t_scores.items()})
    ids = out.pop(columns.patient_id)
    out.insert(0, "patient_id", [pseudonymise(v, salt) for v in ids])
    out.pop(columns.date)
    out["dxa_date"] = dates[keep]
    for column in T_SCORE_COLUMNS:
        out[column] = pd.to_numeric(out[column], errors="coerce") if column in out else np.nan
    return out.reset_index(drop=True), rejects


def join_nearest(manifest: pd.DataFrame, clinical: pd.DataFrame, window_days: float) -> pd.DataFrame:
    """Attach to each image the same patient's clinical row nearest in date within ±window_days.

    Images with no study date or no record in the window keep empty clinical columns. Adds
    dxa_date and dxa_days_from_study (clinical date − study date, in days), then the WHO labels.
    """
    left = manifest.drop(columns=[c for c in clinical.columns if c != "patient_id" and c in manifest.columns])
    left = left.assign(_order=np.arange(len(left)), _date=pd.to_datetime(left["study_date"], errors="coerce"))
    dated = left.dropna(subset=["_date"]).sort_values("_date")
    right = clinical.assign(_date=clinical["dxa_date"]).sort_values("_date")
    right["patient_id"] = right["patient_id"].astype(dated["patient_id"].dtype)
    joined = pd.merge_asof(
        dated, right, on="_date", by="patient_id", direction="nearest",
        tolerance=pd.Timedelta(days=window_days),
    )
    undated = left[left["_date"].isna()]
    out = pd.concat([joined, undated], ignore_index=True).sort_values("_order")
    out["dxa_days_from_study"] = (out["dxa_date"] - out["_date"]).dt.days.astype("Int64")
    out["dxa_date"] = out["dxa_date"].dt.strftime("%Y-%m-%d")
    out = out.drop(columns=["_order", "_date"]).reset_index(drop=True)
    return add_bmd_labels(out)
