from datetime import date

import numpy as np
import pandas as pd
import pytest

from radscreen.manifests import labels
from radscreen.manifests.clinical import who_classes
from radscreen.manifests.pseudonym import pseudonymise, resolve_salt


def test_age_from_known_dates():
    # 60 years minus one day: 21914 days / 365.2425
    assert labels.age_from_dates(date(1960, 3, 15), date(2020, 3, 14)) == pytest.approx(21914 / 365.2425)
    assert labels.age_from_dates(date(2000, 1, 1), date(2000, 1, 1)) == 0.0


@pytest.mark.parametrize("birth,study,reason", [
    (date(2021, 1, 1), date(2020, 1, 1), "after study date"),
    (date(1850, 1, 1), date(2020, 1, 1), "over 120"),
])
def test_impossible_ages_are_rejected(birth, study, reason):
    with pytest.raises(labels.LabelError, match=reason):
        labels.age_from_dates(birth, study)


@pytest.mark.parametrize("text,years", [("058Y", 58.0), ("006M", 0.5), ("052W", 364 / 365.2425),
                                        ("003D", 3 / 365.2425), ("", None), ("58", None), ("130Y", None)])
def test_dicom_age_strings(text, years):
    assert labels.parse_dicom_age(text) == (pytest.approx(years) if years is not None else None)


def test_dates_parse_and_fail_clearly():
    assert labels.parse_dicom_date("19600315") == date(1960, 3, 15)
    assert labels.parse_dicom_date("1960.03.15") == date(1960, 3, 15)
    assert labels.parse_dicom_date("") is None
    with pytest.raises(labels.LabelError):
        labels.parse_dicom_date("19600231")


@pytest.mark.parametrize("raw,view", [("PA", "PA"), ("POSTEROANTERIOR", "PA"), (" postero-anterior ", "PA"),
                                      ("ANTEROPOSTERIOR", "AP"), ("AP SUPINE", "AP"), ("LL", "LAT"),
                                      ("LATERAL", "LAT"), ("", None), ("OBLIQUE", None)])
def test_view_normalisation(raw, view):
    assert labels.normalise_view(raw) == view


def test_sex_normalisation():
    assert [labels.normalise_sex(v) for v in ["M", "f", "Female", "O", "", None]] == ["M", "F", "F", None, None, None]


@pytest.mark.parametrize("t,cls", [(-2.5, "osteoporosis"), (-3.1, "osteoporosis"), (-2.49, "osteopenia"),
                                   (-1.01, "osteopenia"), (-1.0, "normal"), (0.5, "normal"), (None, None)])
def test_who_rule_scalar_and_vectorised_agree(t, cls):
    assert labels.who_class(t) == cls
    vector = who_classes(pd.Series([np.nan if t is None else t]))
    assert (None if pd.isna(vector.iloc[0]) else vector.iloc[0]) == cls


def test_lowest_t_score_ignores_missing():
    assert labels.lowest_t_score(-0.5, None, float("nan"), -2.7) == -2.7
    assert labels.lowest_t_score(None, float("nan")) is None


def test_pseudonyms_are_stable_salted_and_opaque():
    a = pseudonymise("PAT001", "s1")
    assert a == pseudonymise("PAT001", "s1")
    assert a != pseudonymise("PAT001", "s2")
    assert a != pseudonymise("PAT002", "s1")
    assert "PAT001" not in a and len(a) == 17


def test_missing_salt_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("RADSCREEN_SALT", raising=False)
    with pytest.raises(ValueError, match="RADSCREEN_SALT"):
        resolve_salt(None)
