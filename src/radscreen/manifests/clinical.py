"""Join a clinical table (DXA T-scores, labs) to manifest rows by patient and nearest date."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from radscreen.manifests.labels import NORMAL_MIN_T, OSTEOPOROSIS_MAX_T
from radscreen.manifests.pseudonym import pseudonymise

T_SCORE_COLUMNS = ("t_score_ls", "t_score_fn", "t_score_th")


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


def prepare_clinical(table: pd.DataFrame, salt: str, columns: ClinicalColumns = ClinicalColumns()) -> pd.DataFrame:
    """Pseudonymise the patient column, parse dates, rename T-scores to the schema; raw IDs are dropped."""
    missing = [c for c in (columns.patient_id, columns.date) if c not in table.columns]
    if missing:
        raise ValueError(f"clinical table lacks column(s): {', '.join(missing)}")
    out = table.rename(columns={src: dst for dst, src in columns.t_scores.items()})
    ids = out.pop(columns.patient_id)
    out.insert(0, "patient_id", [pseudonymise(v, salt) if pd.notna(v) and str(v).strip() else pd.NA
                                 for v in ids])
    out["dxa_date"] = pd.to_datetime(out.pop(columns.date), errors="coerce", format="mixed")
    for column in T_SCORE_COLUMNS:
        out[column] = pd.to_numeric(out[column], errors="coerce") if column in out else np.nan
    return out.dropna(subset=["patient_id", "dxa_date"]).reset_index(drop=True)


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
