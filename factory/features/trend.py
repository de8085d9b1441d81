"""Trend features: distances to moving averages and EMA slopes in ATR units, ADX,
linear-regression slope and fit, position in the trailing high-low range."""

from __future__ import annotations

import itertools

import numpy as np

from factory.features.common import (
    Bars,
    Features,
    ema,
    range_position,
    roll_max,
    roll_mean,
    roll_min,
    roll_std,
    safe_div,
    shift,
    wilder,
)
from factory.features.indicators import true_range

SMA_WINDOWS = (50, 100)
EMA_SPANS = (9, 21, 55)
SLOPE_LAG = 3
ADX_WINDOW = 14
LINREG_WINDOW = 20
POS_WINDOWS = (20, 60, 120)
EXTREME_WINDOW = 60
WARMUP = max(max(SMA_WINDOWS), max(EMA_SPANS) + SLOPE_LAG, 2 * ADX_WINDOW + 1, max(POS_WINDOWS))


def _adx(b: Bars) -> dict[str, np.ndarray]:
    """ADX and the DI difference, both in [0, 1] / [-1, 1]; 0 when nothing moved."""
    up = b.high - shift(b.high, 1)
    down = shift(b.low, 1) - b.low
    plus_dm = np.where((up > down) & (up > 0), up, 0.0)
    minus_dm = np.where((down > up) & (down > 0), down, 0.0)
    plus_dm[0] = minus_dm[0] = np.nan
    tr = true_range(b.high, b.low, b.close)
    tr[0] = np.nan
    tr_s = wilder(tr, ADX_WINDOW)
    plus_di = safe_div(wilder(plus_dm, ADX_WINDOW), tr_s)
    minus_di = safe_div(wilder(minus_dm, ADX_WINDOW), tr_s)
    dx = safe_div(np.abs(plus_di - minus_di), plus_di + minus_di)
    return {"trend_adx": wilder(dx, ADX_WINDOW), "trend_di_diff": plus_di - minus_di}


def _linreg(b: Bars, n: int) -> dict[str, np.ndarray]:
    """Least-squares slope of close over the last n bars (ATR per bar) and its R^2.

    Computed tap by tap (sum_j x_j * y[t-n+1+j]) so each row's value is exact and
    depends on its own window only.
    """
    x = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    sxx = float(np.sum(x * x))
    y = b.close
    num = np.zeros_like(y)
    for j in range(max(0, n - len(y)), n):
        lag = n - 1 - j
        num[lag:] += x[j] * (y[: len(y) - lag] - y[lag:])
    num[: n - 1] = np.nan
    slope = num / sxx
    syy = n * roll_std(y, n) ** 2
    r2 = np.clip(safe_div(slope * slope * sxx, syy), 0.0, 1.0)
    return {f"trend_linreg_slope_{n}": safe_div(slope, b.atr), f"trend_linreg_r2_{n}": r2}


def features(b: Bars) -> Features:
    c = b.close
    for w in SMA_WINDOWS:
        yield f"trend_sma_dist_{w}", safe_div(c - roll_mean(c, w), b.atr)
    emas = {s: ema(c, s) for s in EMA_SPANS}
    for s, e in emas.items():
        yield f"trend_ema_dist_{s}", safe_div(c - e, b.atr)
        yield f"trend_ema_slope_{s}", safe_div(e - shift(e, SLOPE_LAG), b.atr)
    for fast, slow in itertools.pairwise(EMA_SPANS):
        yield f"trend_ema_cross_{fast}_{slow}", safe_div(emas[fast] - emas[slow], b.atr)
    yield from _adx(b).items()
    yield from _linreg(b, LINREG_WINDOW).items()
    for w in POS_WINDOWS:
        yield f"trend_pos_{w}", range_position(c, b.high, b.low, w)
    yield "trend_dist_high", safe_div(roll_max(b.high, EXTREME_WINDOW) - c, b.atr)
    yield "trend_dist_low", safe_div(c - roll_min(b.low, EXTREME_WINDOW), b.atr)
