"""Return features: log returns over several lags and the shape of the current bar."""

from __future__ import annotations

import numpy as np
import pandas as pd

from factory.features.common import Bars, Features, fill_after, roll_std, safe_div, shift

LAGS = (1, 2, 3, 5, 10, 20, 60)
Z_WINDOW = 20
MOMENT_WINDOW = 60
WARMUP = max(max(LAGS), MOMENT_WINDOW) + 1


def features(b: Bars) -> Features:
    for k in LAGS:
        yield f"ret_log_{k}", b.r1 if k == 1 else b.logc - shift(b.logc, k)
    ret_long = b.logc - shift(b.logc, Z_WINDOW)
    rng = b.high - b.low
    yield "ret_oc", np.log(b.close / b.open)
    yield "ret_gap", np.log(b.open) - shift(b.logc, 1)
    yield "ret_hl", np.log(b.high / b.low)
    yield "ret_body_frac", safe_div(b.close - b.open, rng)
    yield "ret_upper_wick", safe_div(b.high - np.maximum(b.open, b.close), rng)
    yield "ret_clv", safe_div((b.close - b.low) - (b.high - b.close), rng)
    sd = roll_std(b.r1, Z_WINDOW)
    yield "ret_z_1", safe_div(b.r1, sd)
    yield "ret_z_20", safe_div(ret_long, sd * np.sqrt(Z_WINDOW))
    roll = pd.Series(b.r1, copy=False).rolling(MOMENT_WINDOW, min_periods=MOMENT_WINDOW)
    # Skew and kurtosis are undefined for a flat window: 0 there.
    yield "ret_skew_60", fill_after(roll.skew().to_numpy(), MOMENT_WINDOW)
    yield "ret_kurt_60", fill_after(roll.kurt().to_numpy(), MOMENT_WINDOW)
