"""A cost-aware backtest of 3-class predictions on decision rows.

Rules (one contract, long or short):
- trade only rows predicted up (class 2) or down (class 0) whose probability of that
  class is >= `threshold`; flat predictions never trade;
- enter at the OPEN of the bar after the decision bar (the decision is made at its
  close), exit where the row's triple-barrier label was decided: at time t1, at the
  price close[t] * exp(exit_ret) (the barrier level, the open of a bar that gapped
  past it, or the close at the vertical barrier);
- costs: 2 * cost_ticks_per_side * tick_size price points per trade; P&L in USD is
  points * tick_value_usd / tick_size;
- one position at a time by default: a signal whose entry is not after the exit of
  the open trade is skipped (`overlap=True` takes every signal as its own contract);
- daily P&L by the CME trading day (the session that closes at 17:00 New York) of the
  exit, with 0 on days of the period without an exit; Sharpe = mean / std (ddof 1)
  of daily P&L * sqrt(252); max drawdown on the trade-by-trade equity (from 0).
Rows whose exit is unknown (no barrier outcome) or that have no next bar never trade.

The result keeps that daily P&L series (`daily`: {date, pnl_usd}, one entry per trading
day of the period, about 252 a year, so a few KB of JSON even for years of test days):
the per-period returns that the plan's report aligns across models (`daily_matrix`) for
the probability of backtest overfitting and the deflated Sharpe ratio
(factory.evaluation.overfitting).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from factory.data.manifest import BARS_FILE, LABELS_FILE, DatasetManifest
from factory.data.sessions import session_frame

DEFAULT_THRESHOLD = 0.5
TRADING_DAYS = 252


@dataclass(frozen=True)
class Costs:
    tick_size: float
    tick_value_usd: float
    cost_ticks_per_side: float

    @classmethod
    def from_manifest(cls, manifest: DatasetManifest) -> Costs:
        c = manifest.costs
        return cls(
            float(c["tick_size"]), float(c["tick_value_usd"]), float(c["cost_ticks_per_side"])
        )

    @property
    def round_trip_points(self) -> float:
        return 2.0 * self.cost_ticks_per_side * self.tick_size

    @property
    def usd_per_point(self) -> float:
        return self.tick_value_usd / self.tick_size


def trade_plan(
    bars: pd.DataFrame, labels: pd.DataFrame, horizon: int, rows: np.ndarray
) -> pd.DataFrame:
    """Entry and exit of a trade from each decision row in `rows` (positions into bars).

    Columns: entry_time, entry_price (next bar's open), exit_time (t1), exit_price;
    NaN / NaT where there is no next bar or no barrier outcome. Index: decision times.
    """
    rows = np.asarray(rows, dtype=np.int64)
    n = len(bars)
    nxt = np.minimum(rows + 1, n - 1)
    has_next = rows + 1 < n
    close = bars["close"].to_numpy(dtype=np.float64)[rows]
    exit_ret = labels[f"exit_ret_h{horizon}"].to_numpy(dtype=np.float64)[rows]
    entry_price = np.where(has_next, bars["open"].to_numpy(dtype=np.float64)[nxt], np.nan)
    entry_time = pd.DatetimeIndex(bars.index[nxt]).where(has_next)
    return pd.DataFrame(
        {
            "entry_time": entry_time,
            "entry_price": entry_price,
            "exit_time": pd.DatetimeIndex(labels[f"t1_h{horizon}"])[rows],
            "exit_price": close * np.exp(exit_ret),
        },
        index=bars.index[rows],
    )


def _select(plan: pd.DataFrame, proba: np.ndarray, threshold: float, overlap: bool):
    """Positions into `plan` that trade, their directions, and how many were skipped."""
    pred = proba.argmax(axis=1)
    conf = proba.max(axis=1)
    ok = np.isfinite(plan["entry_price"].to_numpy()) & np.isfinite(plan["exit_price"].to_numpy())
    ok &= plan["exit_time"].notna().to_numpy()
    signal = np.flatnonzero((pred != 1) & (conf >= threshold) & ok)
    if not overlap:
        entry = pd.DatetimeIndex(plan["entry_time"]).as_unit("ns").asi8
        exit_ = pd.DatetimeIndex(plan["exit_time"]).as_unit("ns").asi8
        taken, busy_until = [], None
        for i in signal:
            if busy_until is None or entry[i] > busy_until:
                taken.append(i)
                busy_until = exit_[i]
        skipped = len(signal) - len(taken)
        signal = np.asarray(taken, dtype=np.int64)
    else:
        skipped = 0
    direction = np.where(pred[signal] == 2, 1.0, -1.0)
    return signal, direction, skipped


def _trading_days(times: pd.DatetimeIndex) -> np.ndarray:
    times = pd.DatetimeIndex(times)
    times = times.tz_localize("UTC") if times.tz is None else times.tz_convert("UTC")
    return session_frame(times)["session_day"].to_numpy()


def _max_drawdown(pnl: np.ndarray) -> float:
    equity = np.concatenate([[0.0], np.cumsum(pnl)])
    return float((np.maximum.accumulate(equity) - equity).max())


def backtest(
    plan: pd.DataFrame,
    proba: np.ndarray,
    costs: Costs,
    threshold: float = DEFAULT_THRESHOLD,
    overlap: bool = False,
) -> dict[str, Any]:
    """The backtest of `proba` (n, 3) on the rows of `plan` (see the module docstring)."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape != (len(plan), 3):
        raise ValueError(f"proba must have shape ({len(plan)}, 3), got {proba.shape}")
    take, direction, skipped = _select(plan, proba, threshold, overlap)
    gross = direction * (plan["exit_price"].to_numpy()[take] - plan["entry_price"].to_numpy()[take])
    net_usd = (gross - costs.round_trip_points) * costs.usd_per_point
    days = np.unique(_trading_days(plan.index)) if len(plan) else np.array([], dtype=np.int64)
    exit_days = _trading_days(pd.DatetimeIndex(plan["exit_time"])[take])
    days = np.union1d(days, exit_days)
    daily = pd.Series(net_usd).groupby(exit_days).sum().reindex(days, fill_value=0.0)
    std = float(daily.std(ddof=1)) if len(daily) > 1 else 0.0
    sharpe = float(daily.mean() / std * np.sqrt(TRADING_DAYS)) if std > 0 else None
    n = len(take)
    return {
        "threshold": float(threshold),
        "overlap": bool(overlap),
        "rows": len(plan),
        "trades": n,
        "long": int((direction > 0).sum()),
        "short": int((direction < 0).sum()),
        "skipped_while_in_trade": int(skipped),
        "hit_rate": float((net_usd > 0).mean()) if n else None,
        "pnl_usd": float(net_usd.sum()),
        "gross_pnl_usd": float(gross.sum() * costs.usd_per_point),
        "costs_usd": float(n * costs.round_trip_points * costs.usd_per_point),
        "avg_trade_usd": float(net_usd.mean()) if n else None,
        "sharpe": sharpe,
        "max_drawdown_usd": _max_drawdown(net_usd),
        "days": len(daily),
        "daily": {
            "date": [str(pd.Timestamp(int(d), unit="D").date()) for d in daily.index],
            "pnl_usd": [float(v) for v in daily.to_numpy()],
        },
    }


def backtest_dataset_rows(
    dataset_dir: str | Path,
    horizon: int,
    rows: np.ndarray,
    proba: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    overlap: bool = False,
) -> dict[str, Any]:
    """`backtest` of predictions on `rows` (positions) of a dataset folder's decision bars."""
    directory = Path(dataset_dir)
    manifest = DatasetManifest.load(directory)
    bars = pd.read_parquet(directory / BARS_FILE, columns=["open", "close"])
    cols = [f"exit_ret_h{horizon}", f"t1_h{horizon}"]
    labels = pd.read_parquet(directory / LABELS_FILE, columns=cols)
    plan = trade_plan(bars, labels, horizon, rows)
    return backtest(plan, proba, Costs.from_manifest(manifest), threshold, overlap)


def daily_matrix(daily: dict[str, dict[str, list]]) -> pd.DataFrame:
    """{name: a backtest's `daily` block} as one frame: a row per trading day that any of
    them has (sorted), a column per name, 0 where a series has no entry (no exit that
    day, e.g. past the end of a shorter series)."""
    columns = {
        name: pd.Series(d.get("pnl_usd", []), index=pd.to_datetime(d.get("date", [])))
        .groupby(level=0)
        .sum()
        for name, d in daily.items()
    }
    frame = pd.DataFrame(columns).sort_index().fillna(0.0)
    return frame.reindex(columns=list(daily)).astype(np.float64)
