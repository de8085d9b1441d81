"""A fingerprint of predictions: equal probabilities, equal sha256 (resume checks).

The classification scores themselves are factory.evaluation.scores'."""

from __future__ import annotations

import hashlib

import numpy as np


def predictions_sha256(proba: np.ndarray) -> str:
    """sha256 of the probabilities as float64 C-contiguous bytes."""
    return hashlib.sha256(np.ascontiguousarray(proba, dtype=np.float64).tobytes()).hexdigest()
