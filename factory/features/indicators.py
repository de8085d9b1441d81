"""Indicator primitives shared by features and labels (one code path for both)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Wilder's true range; the first bar has no previous close and uses high - low."""
    prev_close = np.r_[np.nan, close[:-1]]
    tr = np.fmax(high - low, np.fmax(np.abs(high - prev_close), np.abs(low - prev_close)))
    return tr


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> np.ndarray:
    """Average true range (Wilder smoothing, alpha = 1/window); NaN for the first window-1 bars.

    Causal: the value at bar t depends on bars <= t only.
    """
    tr = pd.Series(true_range(high, low, close))
    out = tr.ewm(alpha=1.0 / window, adjust=False, min_periods=window).mean().to_numpy()
    return out
