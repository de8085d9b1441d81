"""Realistic synthetic 1-minute OHLCV futures bars, for demos and tests.

The calendar is CME Globex: the session of trading date D opens 18:00 New York on
the evening before D and closes 17:00 on D; the market is shut Friday 17:00 to Sunday
18:00; holiday closures and early closes come from `factory.data.sessions`. The minute
grid is built in New York time, so it is DST-correct in UTC.

Prices are a stochastic-volatility process, not a constant-volatility walk: the log
volatility is a fast and a slow AR(1) (the fast one with a leverage effect), times an
intraday U-shaped profile (open and close of regular hours, the 08:30 data and the
18:00 Globex open); shocks are Student-t; sessions open with a gap after each break.
Volume follows the profile more steeply and rises with volatility and |return|. A few
quiet overnight minutes are missing, as in real files. Everything is vectorised.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from factory.data.sessions import CLOSED, holidays, session_frame
from factory.data.signals import planted_drift
from factory.data.symbols import symbol_spec
from factory.errors import ConfigError

try:
    from scipy.signal import lfilter
except ImportError:  # pragma: no cover - scipy comes with scikit-learn
    lfilter = None

OHLCV = ["open", "high", "low", "close", "volume"]
NEW_YORK = "America/New_York"
SESSION_MINUTES = 23 * 60  # 18:00 to 17:00 New York
NS_PER_MIN = 60 * 1_000_000_000

# symbol: (start price, daily volatility, mean volume per minute)
MARKETS: dict[str, tuple[float, float, float]] = {
    "ES": (4500.0, 0.010, 900.0),
    "MES": (4500.0, 0.010, 1100.0),
    "NQ": (16000.0, 0.013, 400.0),
    "MNQ": (16000.0, 0.013, 900.0),
    "MYM": (37000.0, 0.009, 150.0),
    "M2K": (2000.0, 0.014, 150.0),
    "GC": (2000.0, 0.009, 150.0),
    "MGC": (2000.0, 0.009, 60.0),
    "CL": (75.0, 0.022, 600.0),
    "MCL": (75.0, 0.022, 60.0),
}
DEFAULT_MARKET = (100.0, 0.012, 200.0)

FAST_PHI, FAST_SD = 0.98, 0.40  # half-life ~35 minutes; stationary sd of log-vol
SLOW_PHI, SLOW_SD = 0.9995, 0.40  # half-life ~1 session
LEVERAGE = 0.3  # a down move raises the next minutes' volatility
TAIL_DF = 4.0  # Student-t degrees of freedom of the 1-minute shocks
MISSING_PROB = 0.012  # per minute, 20:00-03:00 New York only


def session_dates(start: str, days: int) -> list[dt.date]:
    """The first `days` trading dates whose session opens on or after the date `start`."""
    first = pd.Timestamp(start).date() + dt.timedelta(days=1)
    candidates = pd.bdate_range(first, periods=days + days // 40 + 10).date
    return [d for d in candidates if holidays(d.year).get(d) != CLOSED][:days]


def session_opens_ns(dates: list[dt.date]) -> np.ndarray:
    """UTC nanoseconds of each session's 18:00 New York open (the evening before)."""
    local = pd.DatetimeIndex(pd.to_datetime(dates)) - pd.Timedelta(hours=6)
    return local.tz_localize(NEW_YORK).tz_convert("UTC").as_unit("ns").asi8


def _after(tod: np.ndarray, at: float, height: float, tau: float) -> np.ndarray:
    """A bump of `height` at minute-of-day `at`, decaying with time constant `tau`."""
    since = tod - at
    return np.where(since >= 0, height * np.exp(-np.clip(since, 0, None) / tau), 0.0)


def intraday_profile() -> np.ndarray:
    """Relative volatility of each session minute (RMS 1): U-shaped over regular hours."""
    m = np.arange(SESSION_MINUTES, dtype=np.float64)
    tod = (18 * 60 + m) % 1440  # New York minute of day
    rth = (tod >= 570) & (tod < 960)  # 09:30-16:00
    prof = 0.45 + 0.9 * np.exp(-m / 20)  # overnight level, Globex open bump
    prof += _after(tod, 180, 0.25, 45) + _after(tod, 510, 0.8, 10)  # Europe, 08:30 data
    prof += _after(tod, 570, 1.5, 35) + _after(tod, 960, 0.2, 10)
    prof += rth * (0.55 + 0.7 * np.exp(-np.abs(960 - tod) / 25))
    return prof / np.sqrt(np.mean(prof**2))


def ar1(x: np.ndarray, phi: float, y0: float = 0.0) -> np.ndarray:
    """y[t] = phi * y[t-1] + x[t] with y[-1] = y0 (scipy's lfilter, or numpy blocks)."""
    if lfilter is not None:
        return lfilter([1.0], [1.0, -phi], x, zi=[phi * y0])[0]
    return _ar1_blocks(np.asarray(x, dtype=np.float64), phi, y0)


def _ar1_blocks(x: np.ndarray, phi: float, y0: float, block: int = 128) -> np.ndarray:
    """ar1 in numpy for phi near 1: closed form within blocks, a short loop over blocks."""
    n = len(x)
    nblocks = -(-n // block)
    padded = np.zeros(nblocks * block)
    padded[:n] = x
    powers = phi ** np.arange(block)
    local = powers * np.cumsum(padded.reshape(nblocks, block) / powers, axis=1)
    carry = np.empty(nblocks)
    state, decay = y0, phi**block
    for b, end in enumerate(local[:, -1].tolist()):
        carry[b] = state
        state = decay * state + end
    return (local + carry[:, None] * (powers * phi)).ravel()[:n]


def _student(rng: np.random.Generator, df: float, size: int) -> np.ndarray:
    """Student-t draws scaled to unit variance."""
    return rng.standard_t(df, size) * np.sqrt((df - 2) / df)


def _log_vol(rng: np.random.Generator, z: np.ndarray) -> np.ndarray:
    """Log-volatility: fast AR(1) fed by past shocks (leverage) plus a slow AR(1)."""
    n = len(z)
    lagged = np.r_[0.0, z[:-1]]
    noise = np.sqrt(1 - LEVERAGE**2) * rng.standard_normal(n) - LEVERAGE * lagged
    fast = ar1(FAST_SD * np.sqrt(1 - FAST_PHI**2) * noise, FAST_PHI, FAST_SD * rng.normal())
    slow_x = SLOW_SD * np.sqrt(1 - SLOW_PHI**2) * rng.standard_normal(n)
    slow = ar1(slow_x, SLOW_PHI, SLOW_SD * rng.normal())
    return fast + slow - (FAST_SD**2 + SLOW_SD**2)  # so that E[exp(2h)] is about 1


def _session_gaps(rng: np.random.Generator, opens: np.ndarray, daily_vol: float) -> np.ndarray:
    """Log-return from the previous session's close to each session's open."""
    closed_h = np.diff(opens, prepend=opens[0]) / (60 * NS_PER_MIN) - 23
    scale = daily_vol * (0.3 * np.sqrt(np.clip(closed_h - 1, 0, None) / 24) + 0.03)
    gaps = scale * _student(rng, 3.0, len(opens))
    gaps[0] = 0.0
    return gaps


def _to_price(ticks: np.ndarray, tick: float) -> np.ndarray:
    """Prices from tick counts, as the floats nearest the decimal tick multiples."""
    per_unit = round(1 / tick)
    if abs(per_unit * tick - 1) < 1e-9:
        return ticks / float(per_unit)
    return ticks * tick


def _ohlc_ticks(rng, log_close, gap_at, log_gap_open, sigma_ticks):
    """Open, high, low, close in whole ticks; the open is near the previous close."""
    close = np.rint(np.exp(log_close))
    open_ = np.r_[0.0, close[:-1]]
    open_[gap_at] = np.rint(np.exp(log_gap_open))
    open_ += np.rint(rng.normal(0.0, 0.3, len(close)))  # the first trade is often a tick off
    up = np.rint(0.4 * sigma_ticks * rng.exponential(size=len(close)))
    down = np.rint(0.4 * sigma_ticks * rng.exponential(size=len(close)))
    body_low = np.minimum(open_, close)
    low = np.maximum(body_low - down, np.minimum(body_low, 1.0))  # prices stay > 0
    return open_, np.maximum(open_, close) + up, low, close


def _volume(rng, vprof, log_vol, z, mean_volume) -> np.ndarray:
    """Integer volumes >= 1: profile x activity x |shock|, with gamma-Poisson noise."""
    mean = mean_volume * vprof * np.exp(0.8 * log_vol) * (0.5 + 0.6 * np.abs(z))
    return 1.0 + rng.poisson(mean * rng.gamma(2.0, 0.5, len(z)))


def synthetic_bars(
    symbol: str = "MES",
    days: int = 20,
    seed: int = 0,
    start: str = "2024-01-07",
    start_price: float | None = None,
    tick_size: float | None = None,
    signals: tuple[str, ...] = (),
) -> pd.DataFrame:
    """1-minute OHLCV bars for `days` Globex sessions opening on or after `start`, with
    the learnable effects `signals` planted (factory.data.signals; none by default).

    The index is the UTC bar start time, named "timestamp"; columns are float64
    open, high, low, close, volume; prices lie on the tick grid. Same seed, same bars.
    """
    spec = symbol_spec(symbol, tick_size)
    if days < 1:
        raise ConfigError(f"days={days} must be >= 1; fix: pass e.g. days=20")
    default_price, daily_vol, mean_volume = MARKETS.get(spec.symbol, DEFAULT_MARKET)
    price = float(start_price) if start_price is not None else default_price
    if not price > 0:
        raise ConfigError(f"start price {start_price} must be > 0; fix: pass e.g. 4500")
    rng = np.random.default_rng(seed)
    opens = session_opens_ns(session_dates(start, days))
    n = len(opens) * SESSION_MINUTES
    minute = np.tile(np.arange(SESSION_MINUTES), len(opens))
    prof = intraday_profile()
    vprof = prof**2.5 / np.mean(prof**2.5)

    z = _student(rng, TAIL_DF, n)
    log_vol = _log_vol(rng, z)
    sigma = daily_vol / np.sqrt(SESSION_MINUTES) * prof[minute] * np.exp(log_vol)
    gap_at = np.arange(len(opens)) * SESSION_MINUTES
    diffusion = sigma * z
    steps = diffusion.copy()
    steps[gap_at] += _session_gaps(rng, opens, daily_vol)
    tod = (18 * 60 + minute) % 1440  # New York minute of day
    steps += planted_drift(tuple(signals), z, sigma, tod)  # none unless asked (signals.py)
    log_close = np.log(price / spec.tick_size) + np.cumsum(steps)  # in log ticks
    log_gap_open = log_close[gap_at] - diffusion[gap_at]
    ohlc = _ohlc_ticks(rng, log_close, gap_at, log_gap_open, sigma * np.exp(log_close))
    volume = _volume(rng, vprof[minute], log_vol, z, mean_volume)

    quiet = (tod >= 20 * 60) | (tod < 3 * 60)
    keep = ~(quiet & (rng.random(n) < MISSING_PROB))
    stamps = (np.repeat(opens, SESSION_MINUTES) + minute * NS_PER_MIN)[keep]
    index = pd.DatetimeIndex(stamps.view("datetime64[ns]"), name="timestamp").tz_localize("UTC")
    data = {k: _to_price(v[keep], spec.tick_size) for k, v in zip(OHLCV[:4], ohlc, strict=True)}
    data["volume"] = volume[keep].astype(np.float64)
    bars = pd.DataFrame(data, index=index)
    # holiday early closes come from the one session calendar (factory.data.sessions)
    return bars[session_frame(index)["in_session"].to_numpy()]


def write_raw(bars: pd.DataFrame, path: Path) -> Path:
    """Write bars with a UTC `timestamp` column: CSV when the suffix is .csv, else parquet."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = bars if "timestamp" in bars.columns else bars.rename_axis("timestamp").reset_index()
    frame = frame.assign(timestamp=pd.to_datetime(frame["timestamp"], utc=True))
    if path.suffix.lower() == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path
