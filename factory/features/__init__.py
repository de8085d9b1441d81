"""The causal feature builder: >= 60 scale-free float32 features per decision bar.

Families (column prefixes): returns `ret_`, volatility `vol_`, momentum `mom_`,
volume `volu_`, trend `trend_`, time of day `tod_`, multi-timeframe `mtf_`.

Causality: the row of decision bar t depends only on decision bars <= t (and the
1-minute bars inside them) and on higher-timeframe bars completed by the end of t.
Only the first `warmup_bars(tf_minutes)` rows may hold NaN; later values are finite.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from factory.data.resample import resample_bars
from factory.features import (
    momentum,
    multitimeframe,
    returns,
    timeofday,
    trend,
    volatility,
    volume,
)
from factory.features.common import Bars, Features

FAMILIES = ("ret", "vol", "mom", "volu", "trend", "tod", "mtf")
SESSION_COLUMNS = (
    "et_minute_of_day",
    "et_weekday",
    "minutes_into_session",
    "minutes_to_close",
    "is_early_close",
    "in_rth",
)
OWN_WARMUP = max(
    returns.WARMUP,
    volatility.WARMUP,
    momentum.WARMUP,
    volume.WARMUP,
    trend.WARMUP,
    timeofday.WARMUP,
)

__all__ = ["FAMILIES", "build_features", "feature_names", "warmup_bars"]


def warmup_bars(tf_minutes: int) -> int:
    """How many leading decision rows may hold NaN (an upper bound, gaps included)."""
    return max(OWN_WARMUP, multitimeframe.warmup(tf_minutes))


def _columns(
    bars_1m: pd.DataFrame, decision: pd.DataFrame, tf_minutes: int, sessions: pd.DataFrame
) -> Features:
    """Every feature column in output order, one float64 array at a time."""
    bars = Bars.from_frame(decision)
    yield from returns.features(bars)
    yield from volatility.features(bars)
    yield from momentum.features(bars)
    yield from volume.features(bars)
    yield from trend.features(bars)
    yield from timeofday.features(sessions, decision, tf_minutes)
    yield from multitimeframe.features(bars_1m, decision, tf_minutes)


@functools.lru_cache(maxsize=64)
def feature_names(tf_minutes: int) -> tuple[str, ...]:
    """The output columns for decision bars of `tf_minutes`, in order.

    Found by a dry run of the same code on a few flat bars, so it cannot drift.
    """
    index = pd.date_range("2024-01-08", periods=4 * tf_minutes, freq="1min", tz="UTC")
    flat = np.ones(len(index))
    bars = pd.DataFrame(
        {"open": flat, "high": flat, "low": flat, "close": flat, "volume": 0.0 * flat},
        index=index,
    )
    decision = resample_bars(bars, tf_minutes)
    sessions = pd.DataFrame(0, index=decision.index, columns=list(SESSION_COLUMNS))
    return tuple(name for name, _ in _columns(bars, decision, tf_minutes, sessions))


def _check_inputs(decision: pd.DataFrame, tf_minutes: int, sessions: pd.DataFrame) -> None:
    if tf_minutes < 1:
        raise ValueError(f"tf_minutes must be >= 1, got {tf_minutes}")
    if not sessions.index.equals(decision.index):
        raise ValueError("sessions must be aligned to decision.index (session_frame(index))")
    missing = [c for c in SESSION_COLUMNS if c not in sessions]
    if missing:
        raise ValueError(
            f"sessions lacks columns {missing} (use factory.data.sessions.session_frame)"
        )


def build_features(
    bars_1m: pd.DataFrame, decision: pd.DataFrame, tf_minutes: int, sessions: pd.DataFrame
) -> pd.DataFrame:
    """Features of each decision bar; index == decision.index, all columns float32.

    Columns are written straight into one preallocated float32 block, so besides the
    output only one family's float64 temporaries are alive at a time.
    """
    _check_inputs(decision, tf_minutes, sessions)
    names = feature_names(tf_minutes)
    block = np.empty((len(names), len(decision)), dtype=np.float32)
    produced = 0
    for i, (name, values) in enumerate(_columns(bars_1m, decision, tf_minutes, sessions)):
        if i >= len(names) or name != names[i]:
            raise RuntimeError(f"feature {i} is {name!r}, expected per feature_names()")
        block[i] = values
        produced = i + 1
    if produced != len(names):
        raise RuntimeError(f"{produced} features built, feature_names() lists {len(names)}")
    return pd.DataFrame(block.T, index=decision.index, columns=list(names), copy=False)
