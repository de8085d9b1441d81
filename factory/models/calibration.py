"""From the probabilities a model learned to the market's probabilities.

Every model trains with balanced class weights (factory.training.training_data), which
is right for the decision but makes its probabilities those of a world where down,
flat and up are equally frequent. Two corrections, in this order:

1. **Prior shift** (always): with class weights w, the weighted training data has the
   class prior pi_k * w_k / sum(pi * w), so the market's probabilities are
   p_k proportional to q_k / w_k (q: what the model says). Nothing is fitted: w is
   recorded at fit.
2. **Calibration on validation rows** (the `calibration` parameter, fitted on the
   validation split only, never on test):
   - `temperature`: one temperature T on the log-probabilities (softmax(log p / T)),
     for deep models;
   - `sigmoid` (Platt) or `isotonic`: one-vs-rest maps of each class's probability,
     renormalised (scikit-learn's LogisticRegression and IsotonicRegression);
   - `none`: the prior shift alone.

A `Calibration` is JSON-able (`to_dict` / `from_dict`) and travels in the model's
bundle, so `factory predict` returns the same calibrated probabilities as the test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from factory.models.params import CALIBRATION_METHODS

METHODS = CALIBRATION_METHODS
EPS = 1e-12
N_CLASSES = 3


def prior_shift(proba: np.ndarray, class_weights: np.ndarray) -> np.ndarray:
    """The market's probabilities of a model trained with `class_weights`."""
    weights = np.asarray(class_weights, dtype=np.float64)
    if weights.shape != (proba.shape[1],) or not np.all(weights > 0):
        raise ValueError(f"class weights {weights.tolist()} must be {proba.shape[1]} positives")
    shifted = np.asarray(proba, dtype=np.float64) / weights
    return shifted / shifted.sum(axis=1, keepdims=True)


def _softmax_t(proba: np.ndarray, temperature: float) -> np.ndarray:
    logits = np.log(np.clip(proba, EPS, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def _log_loss(proba: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], EPS, 1.0))))


def fit_temperature(proba: np.ndarray, y: np.ndarray) -> float:
    """The temperature in [0.05, 20] that minimises the log-loss of `proba` on `y`."""
    from scipy.optimize import minimize_scalar

    found = minimize_scalar(
        lambda log_t: _log_loss(_softmax_t(proba, float(np.exp(log_t))), y),
        bounds=(np.log(0.05), np.log(20.0)),
        method="bounded",
    )
    return float(np.exp(found.x))


@dataclass(frozen=True)
class Calibration:
    """Prior shift by `class_weights`, then `method` with its fitted `state`."""

    class_weights: tuple[float, ...]
    method: str = "none"
    state: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(
        cls, raw_val: np.ndarray, y_val: np.ndarray, class_weights: np.ndarray, method: str
    ) -> Calibration:
        """Fit on the validation split's raw probabilities and labels only."""
        if method not in METHODS:
            raise ValueError(f"calibration {method!r} is not one of {', '.join(METHODS)}")
        weights = tuple(float(w) for w in class_weights)
        shifted = prior_shift(raw_val, np.asarray(weights))
        y_val = np.asarray(y_val, dtype=np.int64)
        if method == "none" or len(y_val) == 0:
            return cls(weights)
        if method == "temperature":
            return cls(weights, method, {"temperature": fit_temperature(shifted, y_val)})
        return cls(
            weights,
            method,
            {
                "maps": [
                    _fit_map(method, shifted[:, k], y_val == k) for k in range(shifted.shape[1])
                ]
            },
        )

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """The calibrated probabilities of a model's raw (n, 3) probabilities."""
        shifted = prior_shift(raw, np.asarray(self.class_weights))
        if self.method == "temperature":
            return _softmax_t(shifted, float(self.state["temperature"]))
        if self.method in ("sigmoid", "isotonic"):
            maps = self.state["maps"]
            cols = [_apply_map(self.method, maps[k], shifted[:, k]) for k in range(len(maps))]
            out = np.clip(np.column_stack(cols), EPS, None)
            return out / out.sum(axis=1, keepdims=True)
        return shifted

    def to_dict(self) -> dict[str, Any]:
        return {
            "class_weights": list(self.class_weights),
            "method": self.method,
            "state": self.state,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        unknown = sorted(set(data) - {"class_weights", "method", "state"})
        if unknown or data.get("method") not in METHODS:
            raise ValueError(f"calibration record {sorted(data)} is not one this code reads")
        return cls(
            tuple(float(w) for w in data["class_weights"]),
            data["method"],
            dict(data.get("state") or {}),
        )


def _fit_map(method: str, p: np.ndarray, hit: np.ndarray) -> dict[str, list[float]]:
    """One class's map from probability to calibrated probability, JSON-able."""
    if method == "sigmoid":
        from sklearn.linear_model import LogisticRegression

        if hit.all() or not hit.any():
            return {
                "coef": [0.0],
                "intercept": [float(np.log((hit.mean() + EPS) / (1 - hit.mean() + EPS)))],
            }
        x = _logit(p).reshape(-1, 1)
        fitted = LogisticRegression(C=1e6).fit(x, hit.astype(int))
        return {"coef": [float(fitted.coef_[0, 0])], "intercept": [float(fitted.intercept_[0])]}
    from sklearn.isotonic import IsotonicRegression

    fitted = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, hit)
    return {"x": fitted.X_thresholds_.tolist(), "y": fitted.y_thresholds_.tolist()}


def _apply_map(method: str, state: dict[str, list[float]], p: np.ndarray) -> np.ndarray:
    if method == "sigmoid":
        z = state["coef"][0] * _logit(p) + state["intercept"][0]
        return 1.0 / (1.0 + np.exp(-z))
    return np.interp(p, state["x"], state["y"])


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))
