"""Momentum features: RSI, MACD, stochastic %K/%D, ROC, Williams %R, TSI."""

from __future__ import annotations

import numpy as np

from factory.features.common import (
    Bars,
    Features,
    ema,
    range_position,
    roll_mean,
    rsi_unit,
    safe_div,
    shift,
)

RSI_WINDOWS = (7, 14, 28)
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
STOCH_K, STOCH_D = 14, 3
ROC_LAGS = (14, 30)
WILLR_WINDOW = 28
TSI_LONG, TSI_SHORT = 25, 13
UP_WINDOW = 20
WARMUP = max(
    MACD_SLOW + MACD_SIGNAL,
    STOCH_K + STOCH_D,
    max(ROC_LAGS),
    WILLR_WINDOW,
    TSI_LONG + TSI_SHORT,
    max(RSI_WINDOWS) + 1,
    UP_WINDOW + 1,
)


def _macd(b: Bars) -> dict[str, np.ndarray]:
    line = (ema(b.close, MACD_FAST) - ema(b.close, MACD_SLOW)) / b.close
    signal = ema(line, MACD_SIGNAL)
    return {"mom_macd": line, "mom_macd_signal": signal, "mom_macd_hist": line - signal}


def _tsi(b: Bars) -> np.ndarray:
    """True strength index in [-1, 1] (0 when price did not move)."""
    d = b.close - shift(b.close, 1)
    num = ema(ema(d, TSI_LONG), TSI_SHORT)
    den = ema(ema(np.abs(d), TSI_LONG), TSI_SHORT)
    return safe_div(num, den)


def features(b: Bars) -> Features:
    for w in RSI_WINDOWS:
        yield f"mom_rsi_{w}", rsi_unit(b.close, w)
    yield from _macd(b).items()
    k = range_position(b.close, b.high, b.low, STOCH_K)
    yield f"mom_stoch_k_{STOCH_K}", k
    yield f"mom_stoch_d_{STOCH_D}", roll_mean(k, STOCH_D)
    for lag in ROC_LAGS:
        yield f"mom_roc_{lag}", b.close / shift(b.close, lag) - 1.0
    yield f"mom_willr_{WILLR_WINDOW}", -0.5 - range_position(b.close, b.high, b.low, WILLR_WINDOW)
    yield "mom_tsi", _tsi(b)
    yield f"mom_up_frac_{UP_WINDOW}", roll_mean(np.sign(b.r1), UP_WINDOW)
