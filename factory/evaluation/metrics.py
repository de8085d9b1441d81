"""Classification metrics of 3-class probabilities, and a fingerprint of predictions."""

from __future__ import annotations

import hashlib

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, log_loss

LABELS = [0, 1, 2]


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """accuracy, macro_f1 and log_loss (labels 0, 1, 2) of (n, 3) probabilities."""
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape != (len(y_true), len(LABELS)):
        raise ValueError(f"proba must have shape ({len(y_true)}, 3), got {proba.shape}")
    y_pred = proba.argmax(axis=1)
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=LABELS, average="macro", zero_division=0)
        ),
        "log_loss": float(log_loss(y_true, proba, labels=LABELS)),
    }


def predictions_sha256(proba: np.ndarray) -> str:
    """sha256 of the probabilities as float64 C-contiguous bytes."""
    return hashlib.sha256(np.ascontiguousarray(proba, dtype=np.float64).tobytes()).hexdigest()
