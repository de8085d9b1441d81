"""Known, learnable effects planted into synthetic bars (`factory data --synthetic
--signal NAME[,NAME]`): the end-to-end check that features, labels, splits and windows
line up. A model that learns nothing from such bars, or one that learns from bars
whose labels were shuffled, points at a misalignment (or a leak).

Each effect adds a drift, in units of the minute's volatility `sigma`, to the
log-price steps of factory.data.synthetic; every drift at minute t depends only on
shocks before t and on the clock, so the features at t can see what causes it:

- `time_of_day`: the price drifts down by 0.6 sigma a minute from 10:00 to 10:30 New
  York time and up by 0.6 sigma from 14:00 to 14:30, every session (the time-of-day
  features see it).
- `momentum`: the price drifts by 0.4 sigma a minute in the direction of the last 15
  minutes' shocks (tanh of their standardised sum): the return features see it.
- `reversal`: a shock over 2.5 standard deviations is given back at 15 % of its size in
  each of the next 5 minutes (75 % in all): the last returns show it.
"""

from __future__ import annotations

import numpy as np

from factory.errors import ConfigError

TOD_DRIFT_SIGMA = 0.6
TOD_WINDOWS = ((600, 630, -1.0), (840, 870, +1.0))  # New York minute of day: from, to, sign
MOMENTUM_DRIFT_SIGMA, MOMENTUM_MINUTES = 0.4, 15
REVERSAL_Z, REVERSAL_SHARE, REVERSAL_MINUTES = 2.5, 0.15, 5


def _lagged_sum(x: np.ndarray, minutes: int) -> np.ndarray:
    """sum(x[t-minutes .. t-1]) at each t (0 where there is no past)."""
    csum = np.r_[0.0, np.cumsum(x)]
    t = np.arange(len(x))
    return csum[t] - csum[np.maximum(t - minutes, 0)]


def time_of_day(z: np.ndarray, sigma: np.ndarray, tod: np.ndarray) -> np.ndarray:
    drift = np.zeros_like(sigma)
    for start, end, sign in TOD_WINDOWS:
        drift += np.where((tod >= start) & (tod < end), sign * TOD_DRIFT_SIGMA * sigma, 0.0)
    return drift


def momentum(z: np.ndarray, sigma: np.ndarray, tod: np.ndarray) -> np.ndarray:
    past = _lagged_sum(z, MOMENTUM_MINUTES) / np.sqrt(MOMENTUM_MINUTES)
    return MOMENTUM_DRIFT_SIGMA * sigma * np.tanh(past)


def reversal(z: np.ndarray, sigma: np.ndarray, tod: np.ndarray) -> np.ndarray:
    shock = np.where(np.abs(z) > REVERSAL_Z, sigma * z, 0.0)
    return -REVERSAL_SHARE * _lagged_sum(shock, REVERSAL_MINUTES)


SIGNALS = {"time_of_day": time_of_day, "momentum": momentum, "reversal": reversal}


def parse_signals(text: str | None) -> tuple[str, ...]:
    """`--signal a,b` as a sorted tuple of known names (empty for none)."""
    names = tuple(sorted({n.strip() for n in (text or "").split(",") if n.strip()}))
    unknown = [n for n in names if n not in SIGNALS]
    if unknown:
        raise ConfigError(
            f"unknown signal(s) {unknown}; fix: use any of {', '.join(sorted(SIGNALS))}"
        )
    return names


def planted_drift(
    names: tuple[str, ...], z: np.ndarray, sigma: np.ndarray, tod: np.ndarray
) -> np.ndarray:
    """The sum of the named effects' drifts (log-price per minute)."""
    drift = np.zeros_like(sigma)
    for name in parse_signals(",".join(names)):
        drift += SIGNALS[name](z, sigma, tod)
    return drift
