"""Volatility features: ATR, range-based estimators (Parkinson, Garman-Klass,
Rogers-Satchell, Yang-Zhang) and realized volatility, all as fractions of price."""

from __future__ import annotations

import numpy as np

from factory.features.common import (
    Bars,
    Features,
    roll_mean,
    roll_std,
    roll_var,
    safe_div,
    shift,
)
from factory.features.indicators import atr

ATR_LONG = 50
RV_WINDOWS = (10, 30, 60)
RANGE_WINDOW = 20
RANGE_Z_WINDOW = 60
WARMUP = max(ATR_LONG, max(RV_WINDOWS) + 1, RANGE_Z_WINDOW, RANGE_WINDOW + 1)
_LN2 = np.log(2.0)


def _range_estimators(b: Bars, n: int) -> dict[str, np.ndarray]:
    hl = np.log(b.high / b.low)
    co = np.log(b.close / b.open)
    ho, lo_ = np.log(b.high / b.open), np.log(b.low / b.open)
    hc, lc = np.log(b.high / b.close), np.log(b.low / b.close)
    rs = hc * ho + lc * lo_
    gk = 0.5 * hl * hl - (2.0 * _LN2 - 1.0) * co * co
    overnight = np.log(b.open) - shift(b.logc, 1)
    k = 0.34 / (1.34 + (n + 1) / (n - 1))
    rs_mean = roll_mean(rs, n)
    yz = roll_var(overnight, n) + k * roll_var(co, n) + (1.0 - k) * rs_mean
    return {
        f"vol_parkinson_{n}": np.sqrt(roll_mean(hl * hl, n) / (4.0 * _LN2)),
        f"vol_gk_{n}": np.sqrt(np.maximum(roll_mean(gk, n), 0.0)),
        f"vol_rs_{n}": np.sqrt(np.maximum(rs_mean, 0.0)),
        f"vol_yz_{n}": np.sqrt(np.maximum(yz, 0.0)),
    }


def features(b: Bars) -> Features:
    atr_long = atr(b.high, b.low, b.close, ATR_LONG)
    yield "vol_atr_14", b.atr / b.close
    yield f"vol_atr_{ATR_LONG}", atr_long / b.close
    yield "vol_atr_ratio", safe_div(b.atr, atr_long, fill=1.0)
    rv = {w: roll_std(b.r1, w) for w in RV_WINDOWS}
    yield from ((f"vol_rv_{w}", x) for w, x in rv.items())
    yield "vol_rv_ratio", safe_div(rv[min(RV_WINDOWS)], rv[max(RV_WINDOWS)], fill=1.0)
    yield from _range_estimators(b, RANGE_WINDOW).items()
    hl = np.log(b.high / b.low)
    yield "vol_range_z", safe_div(hl - roll_mean(hl, RANGE_Z_WINDOW), roll_std(hl, RANGE_Z_WINDOW))
