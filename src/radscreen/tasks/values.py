"""Manifest values compared as a user means them: 1, 1.0 and '1' alike; other values as strings."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def canonical(value: object) -> object:
    """1, 1.0 and '1' → 1; 0.5 and '0.5' → 0.5; anything else → its string."""
    try:
        number = float(value)
        return int(number) if number.is_integer() else number
    except (TypeError, ValueError):
        return str(value)


def matches(values: pd.Series, wanted: Sequence) -> pd.Series:
    """Boolean Series: the value is present and one of `wanted`."""
    keys = {canonical(w) for w in wanted}
    return values.map(lambda v: pd.notna(v) and canonical(v) in keys).astype(bool)
