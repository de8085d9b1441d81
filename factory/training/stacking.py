"""Meta-learners of the stacking ensemble (JSON-able, no pickle).

- "logistic" (default): multinomial logistic regression with an L2 penalty on the
  members' log-probabilities (3 features per member);
- "greedy": Caruana's ensemble selection with replacement on log-loss: the weights are
  how often each member was picked into the average that minimises OOF log-loss.

factory.training.ensemble fits them; factory.bundle stores and loads them (`to_dict`,
`meta_from_dict`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from factory.errors import ConfigError
from factory.evaluation.scores import LABELS

EPS = 1e-6


def _normalize(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, None)
    return p / p.sum(axis=1, keepdims=True)


class LogisticStacker:
    """Multinomial logistic regression (L2, strength 1/C) on members' log-probabilities."""

    method = "logistic"

    def __init__(self, C: float = 1.0, max_iter: int = 1000) -> None:
        self.C = float(C)
        self.max_iter = int(max_iter)

    @staticmethod
    def _features(probas: list[np.ndarray]) -> np.ndarray:
        return np.hstack([np.log(_normalize(p)) for p in probas])

    def fit(self, probas: list[np.ndarray], y: np.ndarray) -> LogisticStacker:
        lr = LogisticRegression(C=self.C, max_iter=self.max_iter)
        lr.fit(self._features(probas), np.asarray(y, dtype=np.int64))
        coef = np.zeros((len(LABELS), lr.coef_.shape[1]))
        intercept = np.full(len(LABELS), -30.0)  # a class absent from y: ~0 probability
        classes = [int(c) for c in lr.classes_]
        if len(classes) == 2:  # binary: sklearn keeps one row, for the second class
            coef[classes[1]], intercept[classes[1]] = lr.coef_[0], lr.intercept_[0]
            coef[classes[0]], intercept[classes[0]] = 0.0, 0.0
        else:
            for row, c in enumerate(classes):
                coef[c], intercept[c] = lr.coef_[row], lr.intercept_[row]
        self.coef_, self.intercept_ = coef, intercept
        return self

    def predict_proba(self, probas: list[np.ndarray]) -> np.ndarray:
        z = self._features(probas) @ self.coef_.T + self.intercept_
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "C": self.C,
            "max_iter": self.max_iter,
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LogisticStacker:
        meta = cls(d["C"], d["max_iter"])
        meta.coef_ = np.asarray(d["coef"], dtype=np.float64)
        meta.intercept_ = np.asarray(d["intercept"], dtype=np.float64)
        return meta


class GreedySelection:
    """Ensemble selection with replacement (Caruana et al. 2004) on log-loss."""

    method = "greedy"

    def __init__(self, rounds: int = 50) -> None:
        self.rounds = int(rounds)

    def fit(self, probas: list[np.ndarray], y: np.ndarray) -> GreedySelection:
        probas = [_normalize(p) for p in probas]
        counts = np.zeros(len(probas), dtype=np.int64)
        total = np.zeros_like(probas[0])
        best_counts, best_score = None, np.inf
        for r in range(1, self.rounds + 1):
            scores = [log_loss(y, (total + p) / r, labels=LABELS) for p in probas]
            pick = int(np.argmin(scores))
            counts[pick] += 1
            total += probas[pick]
            if scores[pick] < best_score - 1e-12:
                best_score, best_counts = scores[pick], counts.copy()
        self.weights_ = best_counts / best_counts.sum()
        return self

    def predict_proba(self, probas: list[np.ndarray]) -> np.ndarray:
        out = sum(w * _normalize(p) for w, p in zip(self.weights_, probas, strict=True))
        return out / out.sum(axis=1, keepdims=True)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "rounds": self.rounds, "weights": self.weights_.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GreedySelection:
        meta = cls(d["rounds"])
        meta.weights_ = np.asarray(d["weights"], dtype=np.float64)
        return meta


META_LEARNERS = {"logistic": LogisticStacker, "greedy": GreedySelection}


def meta_learner(method: str, **params: Any):
    """An unfitted meta-learner of `method` ("logistic" or "greedy")."""
    if method not in META_LEARNERS:
        raise ConfigError(f"unknown ensemble method {method!r}; fix: use one of logistic, greedy")
    return META_LEARNERS[method](**params)


def meta_from_dict(d: dict[str, Any]):
    """A fitted meta-learner from its `to_dict`."""
    return META_LEARNERS[d["method"]].from_dict(d)
