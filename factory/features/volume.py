"""Volume features: relative volume, z-score, OBV slope, VWAP distance, MFI.

Zero-safe: with no volume at all (e.g. spot metals) every feature is a finite 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from factory.features.common import (
    Bars,
    Features,
    ema,
    fill_after,
    roll_mean,
    roll_std,
    roll_sum,
    safe_div,
    shift,
)

REL_WINDOWS = (20, 60)
Z_WINDOW = 60
TREND_FAST, TREND_SLOW = 10, 60
OBV_WINDOWS = (20, 60)
VWAP_WINDOWS = (20, 60)
MFI_WINDOW = 14
CORR_WINDOW = 30
FORCE_SPAN = 13
WARMUP = max(max(REL_WINDOWS), Z_WINDOW, TREND_SLOW, max(OBV_WINDOWS) + 1, max(VWAP_WINDOWS))
WARMUP = max(WARMUP, MFI_WINDOW + 1, CORR_WINDOW + 1, FORCE_SPAN + 1)


def _vwap_distance(b: Bars, typical: np.ndarray, window: int) -> np.ndarray:
    vsum = roll_sum(b.volume, window)
    vwap = safe_div(roll_sum(typical * b.volume, window), vsum)
    dist = safe_div(b.close - vwap, b.atr)
    dist[vsum == 0] = 0.0
    return dist


def _mfi(b: Bars, typical: np.ndarray) -> np.ndarray:
    """Money flow index rescaled to [-1, 1] (0 without volume or movement)."""
    d = typical - shift(typical, 1)
    flow = typical * b.volume
    pos = roll_sum(np.where(d > 0, flow, 0.0), MFI_WINDOW)
    neg = roll_sum(np.where(d < 0, flow, 0.0), MFI_WINDOW)
    mfi = 2.0 * safe_div(pos, pos + neg, fill=0.5) - 1.0
    mfi[:MFI_WINDOW] = np.nan
    return mfi


def features(b: Bars) -> Features:
    v = b.volume
    means = {w: roll_mean(v, w) for w in {*REL_WINDOWS, Z_WINDOW, TREND_FAST, TREND_SLOW}}
    for w in REL_WINDOWS:
        yield f"volu_rel_{w}", safe_div(v, means[w])
    yield f"volu_z_{Z_WINDOW}", safe_div(v - means[Z_WINDOW], roll_std(v, Z_WINDOW))
    yield "volu_trend", safe_div(means[TREND_FAST], means[TREND_SLOW], fill=1.0)
    signed = np.sign(b.r1) * v
    for w in OBV_WINDOWS:
        yield f"volu_obv_slope_{w}", safe_div(roll_sum(signed, w), roll_sum(v, w))
    typical = (b.high + b.low + b.close) / 3.0
    for w in VWAP_WINDOWS:
        yield f"volu_vwap_dist_{w}", _vwap_distance(b, typical, w)
    yield f"volu_mfi_{MFI_WINDOW}", _mfi(b, typical)
    corr = pd.Series(np.abs(b.r1), copy=False).rolling(CORR_WINDOW, min_periods=CORR_WINDOW)
    pv = corr.corr(pd.Series(v, copy=False)).to_numpy()
    yield f"volu_pv_corr_{CORR_WINDOW}", np.clip(fill_after(pv, CORR_WINDOW + 1), -1.0, 1.0)
    yield "volu_vw_ret", safe_div(ema(b.r1 * v, FORCE_SPAN), ema(v, FORCE_SPAN))
