"""One chronological train / val / test split with purge and embargo.

Usable rows are cut by count, in time order, into train, val and test. At each
boundary (train -> val, val -> test), with B the timestamp of the first row of the
later set, rows of the earlier set are

- PURGED when their label ends at or after B (t1 >= B), or when its end is unknown
  (t1 is NaT: no overlap can be ruled out), then
- EMBARGOED when they start less than `embargo` before B (t > B - embargo).

So every kept row a of an earlier split and every kept row b of a later split satisfy
t1(a) < t(b) and t(a) <= t(b) - embargo. Test rows are never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

TRAIN, VAL, TEST, EXCLUDED = 0, 1, 2, -1
SPLIT_NAMES = {TRAIN: "train", VAL: "val", TEST: "test"}


@dataclass(frozen=True)
class SplitResult:
    """split[i] is TRAIN, VAL, TEST or EXCLUDED for row i; the rest is for reports."""

    split: np.ndarray
    boundaries: dict[str, Any]
    counts: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (the per-row array is left out)."""
        return {"boundaries": dict(self.boundaries), "counts": dict(self.counts)}


def _as_epoch_ns(values: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """int64 epoch nanoseconds and a NaT mask; tz-aware input is converted to UTC."""
    idx = pd.DatetimeIndex(values)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC")
    try:
        ns = idx.as_unit("ns").asi8.copy()
    except Exception as exc:  # out of range for ns
        raise ValueError(f"{what} cannot be held as nanosecond timestamps") from exc
    return ns, np.asarray(idx.isna())


def _check_inputs(
    index: pd.DatetimeIndex,
    usable: np.ndarray,
    t1: Any,
    train_frac: float,
    val_frac: float,
    embargo: pd.Timedelta,
) -> None:
    n = len(index)
    if np.asarray(usable).dtype != np.bool_:
        raise ValueError("usable must be a boolean mask with one value per row")
    if len(usable) != n or len(t1) != n:
        raise ValueError(
            f"index ({n}), usable ({len(usable)}) and t1 ({len(t1)}) must have one value per row"
        )
    if not (0 < train_frac < 1 and 0 < val_frac < 1 and train_frac + val_frac < 1):
        raise ValueError(
            f"train_frac={train_frac}, val_frac={val_frac}: both must lie in (0, 1) and "
            "leave rows for the test split"
        )
    if pd.Timedelta(embargo) < pd.Timedelta(0):
        raise ValueError(f"embargo {embargo} must not be negative")


def _drop_before(
    split: np.ndarray,
    earlier: int,
    b_start: int,
    ts: np.ndarray,
    t1: np.ndarray,
    t1_nat: np.ndarray,
    embargo_ns: int,
) -> tuple[int, int]:
    """Purge, then embargo, rows of `earlier` against a later set starting at b_start."""
    rows = split == earlier
    purge = rows & (t1_nat | (t1 >= b_start))
    split[purge] = EXCLUDED
    embargo = (split == earlier) & (ts > b_start - embargo_ns)
    split[embargo] = EXCLUDED
    return int(purge.sum()), int(embargo.sum())


def _empty_error(name: str, n_usable: int, counts: dict[str, int], when: str) -> ValueError:
    return ValueError(
        f"the {name} split is empty {when} ({n_usable} usable rows; counts {counts}); "
        "fix: use fewer or shorter horizons, a shorter embargo, or more data"
    )


def time_split(
    index: pd.DatetimeIndex,
    usable: np.ndarray,
    t1: np.ndarray,
    train_frac: float,
    val_frac: float,
    embargo: pd.Timedelta,
) -> SplitResult:
    """Split the usable rows of a sorted index into train/val/test (see the module docstring).

    Raises ValueError when any split ends up empty.
    """
    _check_inputs(index, usable, t1, train_frac, val_frac, embargo)
    ts, ts_nat = _as_epoch_ns(index, "index")
    if ts_nat.any() or (len(ts) > 1 and not (np.diff(ts) > 0).all()):
        raise ValueError("index must be sorted, unique and without NaT; fix: sort the bars")
    t1_ns, t1_nat = _as_epoch_ns(t1, "t1")
    embargo_ns = int(pd.Timedelta(embargo).value)

    split = np.full(len(ts), EXCLUDED, dtype=np.int8)
    pos = np.flatnonzero(np.asarray(usable))
    n_usable = len(pos)
    n_train = int(np.floor(n_usable * train_frac))
    n_val = int(np.floor(n_usable * val_frac))
    split[pos[:n_train]] = TRAIN
    split[pos[n_train : n_train + n_val]] = VAL
    split[pos[n_train + n_val :]] = TEST

    counts: dict[str, int] = {"usable": n_usable, "excluded_unusable": len(ts) - n_usable}
    sizes = {TRAIN: n_train, VAL: n_val, TEST: n_usable - n_train - n_val}
    for code, size in sizes.items():
        if size == 0:
            raise _empty_error(SPLIT_NAMES[code], n_usable, counts, "before purge and embargo")
    for earlier, later in ((TRAIN, VAL), (VAL, TEST)):
        tag = f"{SPLIT_NAMES[earlier]}_{SPLIT_NAMES[later]}"
        b_start = int(ts[np.flatnonzero(split == later)[0]])
        purged, embargoed = _drop_before(split, earlier, b_start, ts, t1_ns, t1_nat, embargo_ns)
        counts[f"purged_{tag}"] = purged
        counts[f"embargoed_{tag}"] = embargoed

    boundaries: dict[str, Any] = {}
    for code, name in SPLIT_NAMES.items():
        rows = np.flatnonzero(split == code)
        counts[name] = len(rows)
        if len(rows) == 0:
            raise _empty_error(name, n_usable, counts, "after purge and embargo")
        boundaries[name] = {
            "first": pd.Timestamp(int(ts[rows[0]]), tz="UTC").isoformat(),
            "last": pd.Timestamp(int(ts[rows[-1]]), tz="UTC").isoformat(),
        }
    return SplitResult(split=split, boundaries=boundaries, counts=counts)
