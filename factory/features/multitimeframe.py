"""Multi-timeframe features from 5m / 15m / 1h / 4h bars built from the 1-minute bars.

A decision bar only sees *completed* higher-timeframe (HTF) bars
(`factory.data.resample.completed_asof`); through gaps the last completed bar carries on.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from factory.data.resample import completed_asof, resample_bars
from factory.features.common import Features, ema, range_position, rsi_unit, safe_div, shift
from factory.features.indicators import atr

HTF_MINUTES = (5, 15, 60, 240)
HTF_WINDOW = 14
HTF_EMA = 10
HTF_BARS_NEEDED = HTF_WINDOW + 1  # the RSI needs one more bar than its window


def periods(tf_minutes: int) -> list[int]:
    """The HTF periods used for decision bars of `tf_minutes` (coarser ones only)."""
    return [p for p in HTF_MINUTES if p > tf_minutes]


def rows_per_htf_bar(htf_minutes: int, tf_minutes: int) -> int:
    """At most how many decision bars overlap one HTF bar."""
    return math.ceil(htf_minutes / tf_minutes) + (htf_minutes % tf_minutes != 0)


def warmup(tf_minutes: int) -> int:
    return max(
        (HTF_BARS_NEEDED * rows_per_htf_bar(p, tf_minutes) for p in periods(tf_minutes)),
        default=0,
    )


def label(htf_minutes: int) -> str:
    return f"{htf_minutes}m" if htf_minutes < 60 else f"{htf_minutes // 60}h"


def _htf_table(htf: pd.DataFrame) -> pd.DataFrame:
    """Per-HTF-bar values, computed on the HTF series itself (gaps are simply skipped)."""
    o, h, lo, c = (htf[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close"))
    htf_atr = atr(h, lo, c, HTF_WINDOW)
    return pd.DataFrame(
        {
            "ret": np.log(c) - np.log(shift(c, 1)),
            "range_atr": safe_div(h - lo, htf_atr),
            "rsi": rsi_unit(c, HTF_WINDOW),
            "pos": range_position(c, h, lo, HTF_WINDOW),
            "body": safe_div(c - o, h - lo),
            "close": c,
            "ema": ema(c, HTF_EMA),
            "atr": htf_atr,
        },
        index=htf.index,
    )


def features(bars_1m: pd.DataFrame, decision: pd.DataFrame, tf_minutes: int) -> Features:
    close = decision["close"].to_numpy(dtype=np.float64)
    for p in periods(tf_minutes):
        table = _htf_table(resample_bars(bars_1m, p))
        seen = completed_asof(table, p, decision.index, tf_minutes)
        name = f"mtf_{label(p)}"
        for col in ("ret", "range_atr", "rsi", "pos", "body"):
            yield f"{name}_{col}", seen[col].to_numpy()
        htf_atr = seen["atr"].to_numpy()
        yield f"{name}_close_dist", safe_div(close - seen["close"].to_numpy(), htf_atr)
        yield f"{name}_ema_dist", safe_div(close - seen["ema"].to_numpy(), htf_atr)
