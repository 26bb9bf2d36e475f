"""Tables as people read them (Markdown, HTML, console): counts as integers, p-values with 3 significant
digits, other numbers with 4 decimals. The CSV files keep the full values."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

COUNT_COLUMNS = frozenset({"n", "tp", "fp", "tn", "fn", "support", "runs", "images", "patients", "count"})
MISSING = "–"
METRIC_NAMES = {"mae": "MAE", "rmse": "RMSE", "r2": "R²", "within4": "share within ±4", "within9": "share within ±9",
                "mean_error": "error mean (pred − true)", "sd_error": "error SD", "pearson": "Pearson r",
                "auroc": "AUC", "ppv": "PPV", "npv": "NPV", "f1": "F1", "ece": "ECE", "brier": "Brier score",
                "ece_calibrated": "ECE, calibrated", "brier_calibrated": "Brier score, calibrated"}


def is_count_column(name: object) -> bool:
    """Columns holding counts: n, TP/FP/TN/FN, support, runs, images, patients, and any `n_…` column."""
    text = str(name).lower()
    return text in COUNT_COLUMNS or text.startswith("n_")


def is_p_value_column(name: object) -> bool:
    """Columns holding p-values (`p_value`, `delong_p_vs_first`, …)."""
    text = str(name).lower()
    return text == "p" or "p_value" in text or text.startswith("delong_p")


def _count(value: object) -> str:
    return MISSING if pd.isna(value) else str(int(round(float(value))))


def _number(value: object, spec: str) -> str:
    return MISSING if pd.isna(value) else format(float(value), spec)


def display_table(table: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """A copy of `table` with every numeric column rendered as text: counts as integers (114, not 114.0000),
    p-values as 3 significant digits, other numbers with `digits` decimals; missing values as '–'."""
    out = table.copy()
    for column in out.columns:
        values = out[column]
        if not (pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)):
            out[column] = values.map(lambda v: MISSING if v is None or (isinstance(v, float) and np.isnan(v))
                                     else str(v))
        elif is_count_column(column) or pd.api.types.is_integer_dtype(values):
            out[column] = values.map(_count)
        elif is_p_value_column(column):
            out[column] = values.map(lambda v: _number(v, ".3g"))
        else:
            out[column] = values.map(lambda v: _number(v, f".{digits}f"))
    return out


def interval_text(value: object, low: object, high: object, digits: int = 4) -> str:
    """'0.8123 (0.7012–0.9011)': a value with its interval ('–' for what is missing; the value alone without one)."""
    if pd.isna(value):
        return MISSING
    text = format(float(value), f".{digits}f")
    if pd.isna(low) or pd.isna(high):
        return text
    return f"{text} ({float(low):.{digits}f}–{float(high):.{digits}f})"


def mean_sd_text(mean: object, sd: object, digits: int = 3) -> str:
    """'6.000 ± 1.000': a mean with its standard deviation ('–' without a mean; the mean alone without an SD, as
    for a single value)."""
    if pd.isna(mean):
        return MISSING
    text = format(float(mean), f".{digits}f")
    if pd.isna(sd):
        return text
    return f"{text} ± {float(sd):.{digits}f}"


def with_intervals(table: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """A wide table whose columns `<m>`, `<m>_ci_low`, `<m>_ci_high` become one text column `<m>` reading
    'value (low–high)' (subgroup tables); other columns unchanged. A table without interval columns is returned
    as it is."""
    out = table.copy()
    for column in table.columns:
        low, high = f"{column}_ci_low", f"{column}_ci_high"
        if low in table and high in table:
            out[column] = [interval_text(v, lo, hi, digits) for v, lo, hi in zip(table[column], table[low],
                                                                                     table[high])]
            out = out.drop(columns=[low, high])
    return out


def _alignment(table: pd.DataFrame) -> tuple[str, ...]:
    return tuple("right" if pd.api.types.is_numeric_dtype(table[c]) else "left" for c in table.columns)


def to_markdown(table: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table of `display_table(table)` (numbers right-aligned)."""
    if table.empty:
        return "(no rows)"
    return display_table(table, digits).to_markdown(index=False, disable_numparse=True, colalign=_alignment(table))


def to_html(table: pd.DataFrame, digits: int = 4) -> str:
    """An HTML table of `display_table(table)` (the report's CSS right-aligns cells)."""
    if table.empty:
        return '<p class="note">(no rows)</p>'
    return display_table(table, digits).to_html(index=False, escape=True, na_rep=html.escape(MISSING))
