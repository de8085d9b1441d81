"""How good 3-class probabilities are: every number JSON-able, computed with scikit-learn.

Classes are 0 / 1 / 2 = down / flat / up (label -1 / 0 / +1). Besides accuracy and
macro-F1: per-class precision and recall, log-loss and the multiclass Brier score
(sum over classes of the squared error, mean over rows), each with its skill against
the class-prior baseline (a model that always predicts the prior): skill = 1 -
score / score_of_prior, so 0 is "no better than the prior" and 1 is perfect. The prior
is the train labels' class frequencies when given, else those of `y_true`. Top-label
calibration error: rows binned by their highest probability, the row-weighted mean
|accuracy - confidence| over the bins. Accuracy, F1, precision, recall and the confusion
matrix score the decision of `decide` (probability over base rate), not a plain argmax.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)

LABELS = [0, 1, 2]
CLASS_NAMES = ("down", "flat", "up")
PRIOR_FLOOR = 1e-6  # a class absent from the prior still gets this probability
CALIBRATION_BINS = 10


def _check(y_true: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape != (len(y_true), len(LABELS)):
        raise ValueError(f"proba must have shape ({len(y_true)}, 3), got {proba.shape}")
    if len(y_true) == 0:
        raise ValueError("no rows to evaluate")
    if not np.isin(y_true, LABELS).all():
        raise ValueError("y_true must hold class indices 0, 1, 2")
    return y_true, proba


def class_prior(y: np.ndarray) -> np.ndarray:
    """Class frequencies of `y` (3,), each at least PRIOR_FLOOR, summing to 1."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=len(LABELS)).astype(float)
    prior = np.maximum(counts / max(counts.sum(), 1.0), PRIOR_FLOOR)
    return prior / prior.sum()


def top_label_calibration_error(
    y_true: np.ndarray, proba: np.ndarray, n_bins: int = CALIBRATION_BINS
) -> float:
    """Expected calibration error of the top label with `n_bins` equal-width bins."""
    y_true, proba = _check(y_true, proba)
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(np.float64)
    bins = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        in_bin = bins == b
        total += in_bin.sum() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(total / len(y_true))


def reliability_curve(
    y_true: np.ndarray, proba: np.ndarray, n_bins: int = CALIBRATION_BINS
) -> dict[str, list]:
    """The top label's reliability diagram: per non-empty bin of the highest
    probability, its mean confidence, the accuracy of its rows and their count."""
    y_true, proba = _check(y_true, proba)
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(np.float64)
    bins = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    out: dict[str, list] = {"confidence": [], "accuracy": [], "count": []}
    for b in np.unique(bins):
        in_bin = bins == b
        out["confidence"].append(float(confidence[in_bin].mean()))
        out["accuracy"].append(float(correct[in_bin].mean()))
        out["count"].append(int(in_bin.sum()))
    return out


def decide(proba: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """The class each row is called: the one whose probability most exceeds its base
    rate (argmax of proba / prior). With calibrated probabilities of a rare class this
    is the balanced decision (the one a model trained with balanced class weights
    makes); a plain argmax would call nearly every row the frequent class."""
    return (np.asarray(proba) / np.asarray(prior)).argmax(axis=1)


def chance_macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The expected macro-F1 of calls made independently of the labels with the class
    frequencies of `y_pred`: what a decision that learned nothing scores."""
    pi = np.bincount(np.asarray(y_true), minlength=len(LABELS)) / len(y_true)
    q = np.bincount(np.asarray(y_pred), minlength=len(LABELS)) / len(y_pred)
    return float(np.mean(np.where(pi + q > 0, 2 * pi * q / np.maximum(pi + q, 1e-12), 0.0)))


def _skill(score: float, baseline: float) -> float | None:
    return float(1.0 - score / baseline) if baseline > 0 else None


def classification_report(
    y_true: np.ndarray, proba: np.ndarray, prior: np.ndarray | None = None
) -> dict[str, Any]:
    """Every classification metric of (n, 3) probabilities (see the module docstring)."""
    y_true, proba = _check(y_true, proba)
    prior = class_prior(y_true) if prior is None else np.asarray(prior, dtype=np.float64)
    prior = np.maximum(prior, PRIOR_FLOOR)
    prior = prior / prior.sum()
    prior_proba = np.broadcast_to(prior, proba.shape)
    y_pred = decide(proba, prior)
    precision, recall, _, support = precision_recall_fscore_support(
        y_true, y_pred, labels=LABELS, zero_division=0
    )
    ll = float(log_loss(y_true, proba, labels=LABELS))
    ll_prior = float(log_loss(y_true, prior_proba, labels=LABELS))
    brier = float(brier_score_loss(y_true, proba, labels=LABELS, scale_by_half=False))
    brier_prior = float(brier_score_loss(y_true, prior_proba, labels=LABELS, scale_by_half=False))
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=LABELS, average="macro", zero_division=0)
        ),
        "precision": {c: float(v) for c, v in zip(CLASS_NAMES, precision, strict=True)},
        "recall": {c: float(v) for c, v in zip(CLASS_NAMES, recall, strict=True)},
        "support": {c: int(v) for c, v in zip(CLASS_NAMES, support, strict=True)},
        "log_loss": ll,
        "log_loss_prior": ll_prior,
        "log_loss_skill": _skill(ll, ll_prior),
        "brier": brier,
        "brier_prior": brier_prior,
        "brier_skill": _skill(brier, brier_prior),
        "calibration_error": top_label_calibration_error(y_true, proba),
        "reliability": reliability_curve(y_true, proba),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=LABELS).tolist(),
        "prior": [float(p) for p in prior],
    }
