"""Bars that no market prints: non-finite prices, absurd spikes, and holes in the series.

A spike is a bar one of whose prices lies more than 50 % above (or below half of) the
median close of the bars around it (5 either side): a jump that reverts within a few
minutes. A lasting move of that size moves the median with it and is kept. This is
cleaning of raw input before any feature is computed (it looks a few bars ahead to
see the reversal); the features themselves still use data up to each bar only.

A long gap is a hole between two consecutive bars longer than the longest market
closure (a holiday weekend: Thursday 17:00 to Sunday 18:00 New York, 73 h).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SPIKE_UP = 1.5  # a price over 150 % of the local median close
SPIKE_DOWN = 0.5  # or under 50 % of it
SPIKE_WINDOW = 11  # bars, centred: 5 either side
LONG_GAP = pd.Timedelta(hours=74)
MOST = 0.5  # more than this share of bad rows: the file is refused, not fixed


def non_finite_rows(prices: np.ndarray) -> np.ndarray:
    """Rows (of an n x 4 price array) with an infinite price (NaN is counted elsewhere)."""
    return np.isinf(prices).any(axis=1)


def spike_rows(prices: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Rows with a price far from the median close of the bars around them (finite input)."""
    if len(close) < 3:
        return np.zeros(len(close), dtype=bool)
    ref = (
        pd.Series(close)
        .rolling(SPIKE_WINDOW, center=True, min_periods=1)
        .median()
        .to_numpy(dtype=np.float64)
    )
    with np.errstate(over="ignore", invalid="ignore"):
        high = prices.max(axis=1) > SPIKE_UP * ref
        low = prices.min(axis=1) < SPIKE_DOWN * ref
    return high | low


def long_gaps(index: pd.DatetimeIndex) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """(last bar before, first bar after) of each hole longer than LONG_GAP (sorted index)."""
    if len(index) < 2:
        return []
    ns = index.as_unit("ns").asi8
    at = np.flatnonzero(np.diff(ns) > LONG_GAP.value)
    return [(index[i], index[i + 1]) for i in at]


def gap_warning(gaps: list[tuple[pd.Timestamp, pd.Timestamp]]) -> str:
    """One line about the long gaps (the longest named)."""
    start, end = max(gaps, key=lambda g: g[1] - g[0])
    days = (end - start) / pd.Timedelta(days=1)
    return (
        f"{len(gaps)} gap(s) longer than a weekend in the bars (the longest {days:.1f} days, "
        f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC); no label spans one (rows whose "
        "horizon crosses a gap are not used): give a continuous file if the data exists"
    )
