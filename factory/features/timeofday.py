"""Time-of-day and session features (New York clock, CME Globex session)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from factory.features.common import Features

SESSION_MINUTES = 23 * 60  # 18:00 ET to 17:00 ET
WARMUP = 1  # tod_gap has no previous bar on the first row
_NS_PER_MIN = 60_000_000_000


def features(sessions: pd.DataFrame, decision: pd.DataFrame, tf_minutes: int) -> Features:
    minute = sessions["et_minute_of_day"].to_numpy(dtype=np.float64)
    angle = 2.0 * np.pi * minute / 1440.0
    yield "tod_minute_sin", np.sin(angle)
    yield "tod_minute_cos", np.cos(angle)
    wd_angle = 2.0 * np.pi * sessions["et_weekday"].to_numpy(dtype=np.float64) / 7.0
    yield "tod_weekday_sin", np.sin(wd_angle)
    yield "tod_weekday_cos", np.cos(wd_angle)
    into = sessions["minutes_into_session"].to_numpy(dtype=np.float64)
    yield "tod_into_session", into / SESSION_MINUTES
    yield "tod_to_close", sessions["minutes_to_close"].to_numpy(dtype=np.float64) / SESSION_MINUTES
    yield "tod_in_rth", sessions["in_rth"].to_numpy(dtype=np.float64)
    yield "tod_early_close", sessions["is_early_close"].to_numpy(dtype=np.float64)
    yield "tod_bar_fill", decision["n_bars"].to_numpy(dtype=np.float64) / tf_minutes
    # Minutes missing between the previous decision bar and this one, log-scaled.
    start_min = decision.index.as_unit("ns").asi8 // _NS_PER_MIN
    gap = np.empty(len(start_min), dtype=np.float64)
    gap[:1] = np.nan
    gap[1:] = np.log1p(np.maximum(np.diff(start_min) - tf_minutes, 0))
    yield "tod_gap", gap
