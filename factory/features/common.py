"""Shared pieces of the feature families: the bar arrays and causal, zero-safe helpers.

Every helper here is causal: the value at row t depends on rows <= t only (trailing
rolling windows, adjust=False exponential smoothing, backward shifts).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from factory.features.indicators import atr

ATR_WINDOW = 14
OHLCV = ("open", "high", "low", "close", "volume")

# A family yields (column name, float64 values) one column at a time.
Features = Iterator[tuple[str, np.ndarray]]


@dataclass(frozen=True)
class Bars:
    """The decision bars as float64 arrays, plus a few series every family uses."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    logc: np.ndarray  # log close
    r1: np.ndarray  # one-bar log return (NaN on the first row)
    atr: np.ndarray  # ATR(14), price units

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Bars:
        o, h, lo, c, v = (frame[k].to_numpy(dtype=np.float64) for k in OHLCV)
        logc = np.log(c)
        return cls(o, h, lo, c, v, logc, logc - shift(logc, 1), atr(h, lo, c, ATR_WINDOW))


def shift(x: np.ndarray, k: int) -> np.ndarray:
    """x delayed by k >= 1 rows (the first k rows are NaN)."""
    out = np.empty_like(x, dtype=np.float64)
    out[:k] = np.nan
    out[k:] = x[:-k]
    return out


def safe_div(num: np.ndarray, den: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """num / den, with `fill` where den == 0 (NaN inputs stay NaN: that is warmup)."""
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(num, dtype=np.float64) / den
    out[den == 0] = fill
    return out


def fill_after(x: np.ndarray, start: int, value: float = 0.0) -> np.ndarray:
    """x with non-finite values at rows >= start (past the warmup) replaced by `value`."""
    if not x.flags.writeable:
        x = x.copy()
    tail = x[start:]
    tail[~np.isfinite(tail)] = value
    return x


def _roll(x: np.ndarray, window: int):
    return pd.Series(x, copy=False).rolling(window, min_periods=window)


def roll_mean(x: np.ndarray, window: int) -> np.ndarray:
    return _roll(x, window).mean().to_numpy()


def roll_sum(x: np.ndarray, window: int) -> np.ndarray:
    return _roll(x, window).sum().to_numpy()


def roll_std(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing population standard deviation (ddof=0)."""
    return _roll(x, window).std(ddof=0).to_numpy()


def roll_var(x: np.ndarray, window: int) -> np.ndarray:
    return _roll(x, window).var(ddof=1).to_numpy()


def roll_max(x: np.ndarray, window: int) -> np.ndarray:
    return _roll(x, window).max().to_numpy()


def roll_min(x: np.ndarray, window: int) -> np.ndarray:
    return _roll(x, window).min().to_numpy()


def ema(x: np.ndarray, span: int) -> np.ndarray:
    """Exponential moving average (alpha = 2 / (span + 1)); NaN until `span` values were seen."""
    s = pd.Series(x, copy=False)
    return s.ewm(span=span, adjust=False, min_periods=span).mean().to_numpy()


def wilder(x: np.ndarray, window: int) -> np.ndarray:
    """Wilder smoothing (alpha = 1 / window); NaN until `window` values were seen."""
    s = pd.Series(x, copy=False)
    return s.ewm(alpha=1.0 / window, adjust=False, min_periods=window).mean().to_numpy()


def rsi_unit(close: np.ndarray, window: int) -> np.ndarray:
    """Wilder's RSI rescaled to [-1, 1] (0 when the window holds no move at all)."""
    d = close - shift(close, 1)
    up = wilder(np.maximum(d, 0.0), window)
    down = wilder(np.maximum(-d, 0.0), window)
    return 2.0 * safe_div(up, up + down, fill=0.5) - 1.0


def range_position(close: np.ndarray, high: np.ndarray, low: np.ndarray, window: int):
    """Where close lies in the trailing high-low range, in [-0.5, 0.5] (0 for a flat range)."""
    hh = roll_max(high, window)
    ll = roll_min(low, window)
    return safe_div(close - ll, hh - ll, fill=0.5) - 0.5
