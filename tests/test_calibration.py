"""Calibration parameters fitted on validation and applied anywhere from plain numbers (operating_point.json)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from radscreen.errors import UserError
from radscreen.evaluation.calibration import apply_calibration, fit_calibration
from radscreen.evaluation.operating_point import OperatingPoint, TaskOperatingPoint, load_operating_point


def overconfident(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from true probabilities; the model reports them with logits three times too large."""
    rng = np.random.default_rng(seed)
    true_logit = rng.normal(0, 1.5, n)
    y = (rng.random(n) < expit(true_logit)).astype(int)
    return expit(3 * true_logit), y


def nll(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def test_temperature_is_the_likelihood_optimum():
    p, y = overconfident()
    fitted = fit_calibration("temperature", p, y)
    grid = np.exp(np.linspace(-2, 2, 4001))
    best = grid[np.argmin([nll(expit(logit(p) / t), y) for t in grid])]
    assert fitted["temperature"] == pytest.approx(best, rel=2e-3)
    assert fitted["temperature"] == pytest.approx(3.0, rel=0.15)  # the simulated overconfidence, n = 2000
    assert nll(apply_calibration(fitted, p), y) < nll(p, y)


def test_platt_and_isotonic_equal_scikit_learn():
    p, y = overconfident(seed=1)
    fitted = fit_calibration("platt", p, y)
    model = LogisticRegression(C=np.inf).fit(logit(np.clip(p, 1e-7, 1 - 1e-7)).reshape(-1, 1), y)
    new = np.linspace(0.01, 0.99, 50)
    expected = model.predict_proba(logit(new).reshape(-1, 1))[:, 1]
    np.testing.assert_allclose(apply_calibration(fitted, new), expected, atol=1e-9)
    fitted = fit_calibration("isotonic", p, y)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, y)
    np.testing.assert_allclose(apply_calibration(fitted, new), iso.predict(new), atol=1e-12)


def test_none_and_wrong_inputs():
    p, y = overconfident(200)
    assert fit_calibration("none", p, y) is None
    np.testing.assert_array_equal(apply_calibration(None, p), p)
    with pytest.raises(UserError, match="calibration=beta is not a calibration method; choose one of none, "):
        fit_calibration("beta", p, y)
    with pytest.raises(UserError, match="needs both classes in the validation split"):
        fit_calibration("platt", p, np.zeros_like(y))


def test_operating_point_round_trip(tmp_path):
    point = OperatingPoint({"osteo": TaskOperatingPoint(0.31, "youden", {"method": "temperature",
                                                                           "temperature": 2.5}, 120)}, "validation")
    point.save(tmp_path)
    assert load_operating_point(tmp_path) == point
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(UserError, match="cannot be read"):
        load_operating_point(tmp_path / "bad.json")
