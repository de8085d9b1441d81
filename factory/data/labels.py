"""Triple-barrier labels: which of an upper, a lower or a time barrier a trade meets first.

A trade enters at the close of row t. Its upper barrier is close[t] + up_mult * atr[t],
its lower barrier close[t] - down_mult * atr[t], and its vertical barrier the row t + H
(horizons count rows, so gaps in the index never stretch or shrink a horizon). Rows
t+1 .. t+H are scanned in order; the first that reaches a barrier decides:

- high >= upper only  -> label +1, code BARRIER_UPPER
- low <= lower only   -> label -1, code BARRIER_LOWER
- both in one bar     -> label <NA>, code BARRIER_DOUBLE (the order inside a bar is
  unknown, so it is marked, not guessed)
- none within H rows  -> label 0, code BARRIER_VERTICAL, decided at row t + H
- fewer than H rows ahead and none of them touches -> label <NA>, code BARRIER_TAIL
- atr NaN or <= 0 (or close not finite) -> label <NA>, code BARRIER_UNDEFINED
- decided only after a hole in the bars longer than a weekend
  (`factory.data.anomalies.LONG_GAP`) -> label <NA>, code BARRIER_GAP: a label never
  spans such a gap (nor does ret_h{H}), and the dataset does not use the row

A label depends only on the rows up to the one where it is decided (its t1), so it is
the same whether or not later data exists.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from factory.data.anomalies import LONG_GAP

BARRIER_UPPER = 1
BARRIER_LOWER = -1
BARRIER_VERTICAL = 0
BARRIER_DOUBLE = 2
BARRIER_TAIL = 3
BARRIER_UNDEFINED = 4
BARRIER_GAP = 5

_NAT = np.iinfo(np.int64).min


def _first_touch(
    high: np.ndarray, low: np.ndarray, upper: np.ndarray, lower: np.ndarray, max_h: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each row, the offset k (1..max_h) of the first bar that touches, and its code.

    Offset 0 means no touch within max_h rows (or within the rows that exist).
    """
    n = len(high)
    first_k = np.zeros(n, dtype=np.int32)
    code = np.zeros(n, dtype=np.int8)
    open_rows = np.ones(n, dtype=bool)
    for k in range(1, min(max_h, n - 1) + 1):
        m = n - k
        up = high[k:] >= upper[:m]
        dn = low[k:] <= lower[:m]
        hit = (up | dn) & open_rows[:m]
        if not hit.any():
            continue
        rows = np.flatnonzero(hit)
        first_k[rows] = k
        both = up[rows] & dn[rows]
        code[rows] = np.where(
            both, BARRIER_DOUBLE, np.where(up[rows], BARRIER_UPPER, BARRIER_LOWER)
        )
        open_rows[rows] = False
    return first_k, code


def _exit_log_return(
    first_k: np.ndarray,
    code: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    upper: np.ndarray,
    lower: np.ndarray,
) -> np.ndarray:
    """log(exit / entry) at the touching bar: the barrier, or that bar's open if it gapped past."""
    out = np.full(len(close), np.nan)
    up = np.flatnonzero(code == BARRIER_UPPER)
    out[up] = np.log(np.maximum(open_[up + first_k[up]], upper[up]) / close[up])
    dn = np.flatnonzero(code == BARRIER_LOWER)
    out[dn] = np.log(np.minimum(open_[dn + first_k[dn]], lower[dn]) / close[dn])
    return out


def _check_inputs(bars: pd.DataFrame, atr: np.ndarray, horizons: Sequence[int]) -> list[int]:
    missing = [c for c in ("open", "high", "low", "close") if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack columns {missing}; fix: pass OHLCV bars")
    if not isinstance(bars.index, pd.DatetimeIndex):
        raise ValueError("bars must have a DatetimeIndex; fix: index bars by timestamp")
    if len(atr) != len(bars):
        raise ValueError(f"atr has {len(atr)} values for {len(bars)} bars; fix: one per bar")
    hs = [int(h) for h in horizons]
    if not hs or min(hs) < 1 or len(set(hs)) != len(hs):
        raise ValueError(f"horizons {list(horizons)} must be distinct positive bar counts")
    return hs


def triple_barrier(
    bars: pd.DataFrame,
    atr: np.ndarray,
    horizons: Sequence[int],
    up_mult: float,
    down_mult: float,
) -> pd.DataFrame:
    """Triple-barrier labels for every row and every horizon (see the module docstring).

    Columns per horizon H: label_h{H} (Int8, <NA> when not decidable), barrier_h{H}
    (int8 code), t1_h{H} (when decided; NaT for tail/undefined), ret_h{H}
    (log close[t+H]/close[t]; NaN past the end) and exit_ret_h{H} (log exit/entry;
    NaN for double touch, tail and undefined).
    """
    hs = _check_inputs(bars, atr, horizons)
    if up_mult <= 0 or down_mult <= 0:
        raise ValueError("barrier multipliers must be > 0")
    n = len(bars)
    open_ = bars["open"].to_numpy(dtype=np.float64)
    high = bars["high"].to_numpy(dtype=np.float64)
    low = bars["low"].to_numpy(dtype=np.float64)
    close = bars["close"].to_numpy(dtype=np.float64)
    atr = np.asarray(atr, dtype=np.float64)
    ts = bars.index.as_unit("ns").asi8  # epoch ns (UTC); naive timestamps are taken as UTC

    valid = np.isfinite(atr) & (atr > 0) & np.isfinite(close)
    with np.errstate(invalid="ignore"):
        upper = np.where(valid, close + up_mult * atr, np.nan)
        lower = np.where(valid, close - down_mult * atr, np.nan)

    first_k, touch_code = _first_touch(high, low, upper, lower, max(hs))  # NaN never touches
    touch_exit = _exit_log_return(first_k, touch_code, open_, close, upper, lower)
    rows = np.arange(n)

    out: dict[str, object] = {}
    for h in hs:
        cols = _columns_for_horizon(h, n, rows, first_k, touch_code, touch_exit, valid, close, ts)
        label, code, t1, ret, exit_ret = cols
        out[f"label_h{h}"] = label
        out[f"barrier_h{h}"] = code
        out[f"t1_h{h}"] = pd.DatetimeIndex(t1.view("datetime64[ns]")).tz_localize("UTC")
        out[f"ret_h{h}"] = ret
        out[f"exit_ret_h{h}"] = exit_ret
    return pd.DataFrame(out, index=bars.index)


def _columns_for_horizon(
    h: int,
    n: int,
    rows: np.ndarray,
    first_k: np.ndarray,
    touch_code: np.ndarray,
    touch_exit: np.ndarray,
    valid: np.ndarray,
    close: np.ndarray,
    ts: np.ndarray,
) -> tuple[pd.arrays.IntegerArray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    touched = (first_k >= 1) & (first_k <= h) & valid
    has_end = rows + h < n
    end = np.minimum(rows + h, n - 1)
    gaps = _gaps_up_to(ts)
    decided_at = np.where(touched, rows + first_k, end)
    across = gaps[decided_at] > gaps  # a long gap between the row and where it is decided
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = np.where(has_end & (gaps[end] == gaps), np.log(close[end] / close), np.nan)
    vertical = valid & ~touched & has_end
    touched &= ~across
    vertical &= ~across

    code = np.full(n, BARRIER_TAIL, dtype=np.int8)
    code[vertical] = BARRIER_VERTICAL
    code[touched] = touch_code[touched]
    code[across & valid] = BARRIER_GAP
    code[~valid] = BARRIER_UNDEFINED

    t1 = np.full(n, _NAT, dtype=np.int64)
    t1[touched] = ts[rows[touched] + first_k[touched]]
    t1[vertical] = ts[end[vertical]]

    exit_ret = np.full(n, np.nan)
    exit_ret[touched] = touch_exit[touched]
    exit_ret[vertical] = ret[vertical]

    decided = (code == BARRIER_UPPER) | (code == BARRIER_LOWER) | (code == BARRIER_VERTICAL)
    label_values = np.where(decided, code, 0).astype(np.int8)
    label = pd.arrays.IntegerArray(label_values, ~decided)
    return label, code, t1, ret, exit_ret


def _gaps_up_to(ts: np.ndarray) -> np.ndarray:
    """For each row, how many holes longer than LONG_GAP lie before it (sorted epoch ns)."""
    out = np.zeros(len(ts), dtype=np.int64)
    if len(ts) > 1:
        out[1:] = np.cumsum(np.diff(ts) > LONG_GAP.value)
    return out


def spans_long_gap(labels: pd.DataFrame, horizon: int) -> np.ndarray:
    """Rows whose label at `horizon` (the longest: it spans every shorter one) crosses a gap."""
    return labels[f"barrier_h{horizon}"].to_numpy() == BARRIER_GAP
