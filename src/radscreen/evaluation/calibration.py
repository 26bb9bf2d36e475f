"""Calibration of a binary task's probabilities, fitted on the validation split and stored as plain numbers
(operating_point.json), so predict.py applies exactly what eval.py fitted.

temperature: p' = sigmoid(logit(p) / T), T by maximum likelihood (scipy); platt: p' = sigmoid(a·logit(p) + b)
(scikit-learn's LogisticRegression, no regularisation); isotonic: scikit-learn's IsotonicRegression, stored as its
breakpoints and applied by linear interpolation between them (what IsotonicRegression.predict does).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, logit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from radscreen.errors import UserError

METHODS = ("none", "temperature", "platt", "isotonic")
EPS = 1e-7


def _logits(probabilities: np.ndarray) -> np.ndarray:
    return logit(np.clip(np.asarray(probabilities, dtype=float), EPS, 1 - EPS))


def fit_calibration(method: str, probabilities: np.ndarray, targets: np.ndarray) -> dict | None:
    """Parameters of `method` fitted on validation probabilities and 0/1 targets (None for 'none')."""
    if method not in METHODS:
        raise UserError(f"calibration={method} is not a calibration method; choose one of {', '.join(METHODS)}")
    if method == "none":
        return None
    y = np.asarray(targets, dtype=float)
    if len(np.unique(y)) < 2:
        raise UserError(f"calibration={method} needs both classes in the validation split")
    z = _logits(probabilities)
    if method == "temperature":
        def nll(log_t: float) -> float:
            p = np.clip(expit(z / np.exp(log_t)), EPS, 1 - EPS)
            return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

        found = minimize_scalar(nll, bounds=(-5.0, 5.0), method="bounded")
        return {"method": method, "temperature": float(np.exp(found.x))}
    if method == "platt":
        model = LogisticRegression(C=np.inf).fit(z.reshape(-1, 1), y)  # unregularised
        return {"method": method, "slope": float(model.coef_[0, 0]), "intercept": float(model.intercept_[0])}
    model = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(probabilities, y)
    return {"method": method, "x": model.X_thresholds_.tolist(), "y": model.y_thresholds_.tolist()}


def apply_calibration(parameters: dict | None, probabilities: np.ndarray) -> np.ndarray:
    """Calibrated probabilities from parameters written by fit_calibration (unchanged for None)."""
    p = np.asarray(probabilities, dtype=float)
    if not parameters:
        return p
    method = parameters.get("method")
    if method == "temperature":
        return expit(_logits(p) / parameters["temperature"])
    if method == "platt":
        return expit(parameters["slope"] * _logits(p) + parameters["intercept"])
    if method == "isotonic":
        return np.interp(p, parameters["x"], parameters["y"])
    raise UserError(f"unknown calibration method '{method}' in the operating point")
