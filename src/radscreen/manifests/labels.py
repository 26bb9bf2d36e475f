"""Pure label rules: age from dates, WHO classes from T-scores, normalised sex and view."""

from __future__ import annotations

import math
import re
from datetime import date, datetime

import pandas as pd

DAYS_PER_YEAR = 365.2425  # mean Gregorian year
MAX_PLAUSIBLE_AGE = 120.0
MISSING_AGE, IMPOSSIBLE_AGE, UNKNOWN_SEX, AGE_OUT_OF_RANGE = ("missing age", "impossible age", "unknown sex",
                                                              "age out of range")

# WHO thresholds on the lowest T-score (DESIGN.md "Labels")
OSTEOPOROSIS_MAX_T = -2.5
NORMAL_MIN_T = -1.0
BMD_CLASSES = ("normal", "osteopenia", "osteoporosis")

_VIEW_ALIASES = {
    "PA": "PA",
    "POSTEROANTERIOR": "PA",
    "POSTERO-ANTERIOR": "PA",
    "POSTERO ANTERIOR": "PA",
    "AP": "AP",
    "ANTEROPOSTERIOR": "AP",
    "ANTERO-POSTERIOR": "AP",
    "ANTERO POSTERIOR": "AP",
    "AP SUPINE": "AP",
    "AP_SUPINE": "AP",
    "LAT": "LAT",
    "LL": "LAT",
    "RL": "LAT",
    "LATERAL": "LAT",
    "LEFT LATERAL": "LAT",
    "RIGHT LATERAL": "LAT",
    "L": "LAT",
}

_SEX_ALIASES = {"M": "M", "MALE": "M", "F": "F", "FEMALE": "F"}

_DICOM_AGE = re.compile(r"^\s*(\d{1,3})\s*([DWMY])\s*$", re.IGNORECASE)
_AGE_UNIT_YEARS = {"D": 1 / DAYS_PER_YEAR, "W": 7 / DAYS_PER_YEAR, "M": 1 / 12, "Y": 1.0}


class LabelError(ValueError):
    """A header or table value that cannot give a label; its message is a fixed, non-identifying reason."""


def parse_dicom_date(value: object) -> date | None:
    """Parse a DICOM DA value ("YYYYMMDD", also "YYYY.MM.DD" of old ACR-NEMA files) or an ISO date.

    Returns None for empty values; raises LabelError for values that are not a real calendar date.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if not text or text.lower() == "nan":
        return None
    text = text.replace(".", "").replace("-", "").replace("/", "")[:8]
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError as exc:
        raise LabelError("impossible date") from exc


def age_from_dates(birth: date, study: date) -> float:
    """Age in years (fractional, days / 365.2425) at the study date; LabelError if impossible."""
    days = (study - birth).days
    if days < 0:
        raise LabelError("impossible birth date (after study date)")
    years = days / DAYS_PER_YEAR
    if years > MAX_PLAUSIBLE_AGE:
        raise LabelError("impossible birth date (age over 120 y)")
    return years


def parse_dicom_age(value: object) -> float | None:
    """Parse a DICOM AS value ("058Y", "006M", "010W", "003D") to years; None when empty or malformed."""
    if value is None:
        return None
    match = _DICOM_AGE.match(str(value))
    if not match:
        return None
    years = int(match.group(1)) * _AGE_UNIT_YEARS[match.group(2).upper()]
    return years if years <= MAX_PLAUSIBLE_AGE else None


def normalise_sex(value: object) -> str | None:
    """'M' or 'F' from DICOM PatientSex or dataset spellings ('Male', 'female'); None otherwise ('O', '')."""
    if value is None:
        return None
    return _SEX_ALIASES.get(str(value).strip().upper())


def age_sex_rejects(age_years, sex, age_min: float | None = None, age_max: float | None = None) -> dict[str, object]:
    """The age and sex reject rules, in the order they apply: {reason: where it applies}, a boolean Series for
    Series inputs (one entry per row) and a bool for single values. `age_years` is in years (NaN when missing),
    `sex` as normalise_sex gives it (None or NA when unknown). Missing age; impossible age (not in (0, 120]
    years); unknown sex; age out of range (outside [age_min, age_max], either bound optional)."""
    low = -math.inf if age_min is None else age_min
    high = math.inf if age_max is None else age_max
    return {MISSING_AGE: pd.isna(age_years),
            IMPOSSIBLE_AGE: (age_years <= 0) | (age_years > MAX_PLAUSIBLE_AGE),
            UNKNOWN_SEX: pd.isna(sex),
            AGE_OUT_OF_RANGE: (age_years < low) | (age_years > high)}


def normalise_view(value: object) -> str | None:
    """'PA', 'AP' or 'LAT' from ViewPosition spellings ('POSTEROANTERIOR', 'AP SUPINE', 'LL'...); None otherwise."""
    if value is None:
        return None
    text = re.sub(r"\s+", " ", str(value).strip().upper())
    return _VIEW_ALIASES.get(text)


def lowest_t_score(*t_scores: float | None) -> float | None:
    """Lowest of the available T-scores (NaN and None ignored); None when none is available."""
    present = [float(t) for t in t_scores if t is not None and not math.isnan(float(t))]
    return min(present) if present else None


def who_class(t_score_min: float | None) -> str | None:
    """WHO class of the lowest T-score: <= -2.5 osteoporosis, (-2.5, -1.0) osteopenia, >= -1.0 normal."""
    if t_score_min is None or math.isnan(t_score_min):
        return None
    if t_score_min <= OSTEOPOROSIS_MAX_T:
        return "osteoporosis"
    if t_score_min < NORMAL_MIN_T:
        return "osteopenia"
    return "normal"
