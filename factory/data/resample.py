"""Bars of a coarser timeframe built from 1-minute bars, and when each is complete.

A bar is labelled by its start time. A bar [s, s + P) is complete, and so usable by
a decision bar that starts at t and lasts `tf`, only when s + P <= t + tf.

All timestamps are handled at nanosecond resolution (pandas 3 may default to
another unit: `.as_unit("ns")` before `.asi8`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

OHLCV = ["open", "high", "low", "close", "volume"]


def resample_bars(bars: pd.DataFrame, minutes: int) -> pd.DataFrame:
    """OHLCV bars of `minutes` minutes from sorted, unique bars (bins aligned to the epoch).

    Only bins that hold at least one input bar exist (gaps stay gaps). The column
    `n_bars` counts the input bars in each bin.
    """
    if minutes == 1 and "n_bars" not in bars:
        out = bars[OHLCV].copy()
        out["n_bars"] = np.ones(len(out), dtype=np.int32)
        return out
    ts = bars.index.as_unit("ns").asi8
    period = np.int64(minutes) * 60 * 1_000_000_000
    bins = ts - np.mod(ts, period)
    starts = np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]])
    ends = np.r_[starts[1:], len(ts)] - 1
    o = bars["open"].to_numpy()
    h = bars["high"].to_numpy()
    lo = bars["low"].to_numpy()
    c = bars["close"].to_numpy()
    v = bars["volume"].to_numpy()
    index = pd.DatetimeIndex(bins[starts].astype("datetime64[ns]")).tz_localize("UTC")
    index.name = bars.index.name
    return pd.DataFrame(
        {
            "open": o[starts],
            "high": np.maximum.reduceat(h, starts),
            "low": np.minimum.reduceat(lo, starts),
            "close": c[ends],
            "volume": np.add.reduceat(v, starts),
            "n_bars": (ends - starts + 1).astype(np.int32),
        },
        index=index,
    )


def completed_asof(
    htf: pd.DataFrame, htf_minutes: int, decision_index: pd.DatetimeIndex, tf_minutes: int
) -> pd.DataFrame:
    """For each decision bar, the row of the newest *completed* higher-timeframe bar.

    Rows before the first completed bar are NaN. The result has `decision_index`.
    """
    available_ns = (
        htf.index.as_unit("ns").asi8 + np.int64(htf_minutes - tf_minutes) * 60 * 1_000_000_000
    )
    pos = np.searchsorted(available_ns, decision_index.as_unit("ns").asi8, side="right") - 1
    values = htf.to_numpy(dtype=np.float64)
    out = np.full((len(decision_index), values.shape[1]), np.nan)
    ok = pos >= 0
    out[ok] = values[pos[ok]]
    return pd.DataFrame(out, index=decision_index, columns=htf.columns)
