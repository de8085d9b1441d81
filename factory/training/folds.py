"""The splits of every CV scheme (factory.training.cv_schemes), purged and embargoed alike.

A split tests one or more contiguous blocks of the eligible rows (train split, usable,
labelled at the horizon) and trains on candidate rows around them. For a test block
with first decision time S and span end E (the latest t1 of its rows, at least its
last decision time), a candidate row r is a TRAINING row only if, for every block,

- t1(r) < S (its label ends before the block starts), or
- t(r) > E + embargo (it starts after the block's labels end and after the embargo).

Every other candidate is dropped: PURGED when its [t, t1] span overlaps some [S, E]
(an unknown t1 counts as overlapping anything after t), EMBARGOED otherwise (it
starts in some (E, E + embargo]). The embargo is a Timedelta, or an int of decision
bars counted on the index after the bar at E; it should be at least max(horizon,
longest lookback of any model).

- purged k-fold: `folds` contiguous test folds by count; candidates: every other row;
- walk-forward: `steps` + 1 blocks by count; step s tests block s + 1, candidates are
  blocks 0..s (expanding) or block s (sliding): every training row precedes the test;
- cpcv: `groups` groups by count; split i tests the groups of cpcv_splits(...)[i],
  candidates are the rows of the other groups.

Early stopping never looks at the test rows: a split's training rows are split once
more, the last `inner_val_frac` of them (in time) validating, with the same purge and
embargo between inner train and inner validation (as factory.data.splits does).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from factory.errors import ConfigError
from factory.training.cv_schemes import CvScheme, cpcv_splits

INNER_VAL_FRAC = 0.2
_INF = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Fold:
    """One purged split; rows are positions into the dataset's index, sorted."""

    fold: int
    train_rows: np.ndarray
    test_rows: np.ndarray
    inner_train_rows: np.ndarray
    inner_val_rows: np.ndarray
    test_start: pd.Timestamp
    test_end: pd.Timestamp  # the latest t1 of the test rows (NaT: an unknown end)
    purged: int
    embargoed: int
    groups: tuple[int, ...] = ()  # cpcv: the groups it tests
    group_of_test: np.ndarray | None = None  # cpcv: the group of each test row


def _ns(values: Any) -> np.ndarray:
    """int64 epoch ns; NaT -> the largest int64 (an unknown end overlaps everything)."""
    idx = pd.DatetimeIndex(values)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC")
    ns = idx.as_unit("ns").asi8.copy()
    ns[np.asarray(idx.isna())] = _INF
    return ns


def _embargo_until(ts: np.ndarray, end: int, embargo: pd.Timedelta | int) -> int:
    """The last time (ns) inside the embargo after span end `end`."""
    if end == _INF:
        return _INF
    if is_bars(embargo):
        if embargo < 0:
            raise ConfigError(f"embargo {embargo} bars must not be negative")
        last = int(np.searchsorted(ts, end, side="right")) - 1  # the bar at or before E
        stop = last + int(embargo)
        return int(ts[stop]) if stop < len(ts) else _INF
    delta = pd.Timedelta(embargo)
    if delta < pd.Timedelta(0):
        raise ConfigError(f"embargo {embargo} must not be negative")
    return end + int(delta.value)


def is_bars(embargo: Any) -> bool:
    """An embargo given in decision bars (an int), not as a Timedelta."""
    return isinstance(embargo, (int, np.integer)) and not isinstance(embargo, bool)


def _inner_split(rows, ts, t1, embargo, frac: float) -> tuple[np.ndarray, np.ndarray]:
    """The last `frac` of `rows` validate; earlier rows ending at/after its start B, or
    starting less than the embargo before B, are dropped (as factory.data.splits)."""
    n_val = max(1, round(len(rows) * frac))
    inner_val = rows[len(rows) - n_val :]
    head = rows[: len(rows) - n_val]
    start = ts[inner_val[0]]
    if is_bars(embargo):
        clear = head <= inner_val[0] - int(embargo)
    else:
        clear = ts[head] <= start - int(pd.Timedelta(embargo).value)
    return head[(t1[head] < start) & clear], inner_val


def _eligible(index, t1: Any, eligible: np.ndarray, blocks: int, what: str, count: int):
    """(decision times ns, t1 ns, eligible rows) of a sorted index with room for `blocks`
    blocks (`count` `what`, as the error names them)."""
    ts, t1_ns = _ns(index), _ns(t1)
    if len(ts) > 1 and not (np.diff(ts) > 0).all():
        raise ValueError("index must be sorted and unique")
    n = len(ts)
    if len(t1) != n or len(eligible) != n:
        raise ValueError(f"index ({n}), t1 ({len(t1)}) and eligible ({len(eligible)}) differ")
    rows = np.flatnonzero(np.asarray(eligible, dtype=bool))
    if len(rows) < 2 * blocks:
        raise ConfigError(
            f"{len(rows)} eligible rows cannot make {count} {what}; fix: use fewer {what}"
        )
    return ts, t1_ns, rows


def purged_split(
    k: int,
    ts: np.ndarray,
    t1_ns: np.ndarray,
    tests: list[np.ndarray],
    candidates: np.ndarray,
    embargo: pd.Timedelta | int,
    inner_val_frac: float = INNER_VAL_FRAC,
    fix: str = "use fewer folds",
) -> Fold:
    """Split `k`: test blocks `tests` (each contiguous, in time order), training rows the
    `candidates` clear of every block (see the module docstring)."""
    train_mask = np.ones(len(candidates), dtype=bool)
    overlaps = np.zeros(len(candidates), dtype=bool)
    ends = []
    for test in tests:
        start = int(ts[test[0]])
        end = max(int(t1_ns[test].max()), int(ts[test[-1]]))
        until = _embargo_until(ts, end, embargo)
        train_mask &= (t1_ns[candidates] < start) | (ts[candidates] > until)
        overlaps |= (ts[candidates] <= end) & (t1_ns[candidates] >= start)
        ends.append(end)
    train = candidates[train_mask]
    hint = f"left after purge and embargo; fix: {fix}, a shorter embargo or more data"
    if len(train) < 2:
        raise ConfigError(f"fold {k}: {len(train)} training rows {hint}")
    inner_train, inner_val = _inner_split(train, ts, t1_ns, embargo, inner_val_frac)
    if len(inner_train) == 0:
        raise ConfigError(f"fold {k}: no inner training rows {hint}")
    end = max(ends)
    return Fold(
        fold=k,
        train_rows=train,
        test_rows=np.concatenate(tests),
        inner_train_rows=inner_train,
        inner_val_rows=inner_val,
        test_start=pd.Timestamp(int(ts[tests[0][0]]), tz="UTC"),
        test_end=pd.Timestamp(end, tz="UTC") if end != _INF else pd.NaT,
        purged=int(overlaps.sum()),
        embargoed=int(len(candidates) - len(train) - overlaps.sum()),
    )


def purged_kfold(
    index: pd.DatetimeIndex,
    t1: Any,
    eligible_mask: np.ndarray,
    folds: int = 5,
    embargo: pd.Timedelta | int = 0,
    inner_val_frac: float = INNER_VAL_FRAC,
) -> list[Fold]:
    """The purged folds of the eligible rows of a sorted index (see the module docstring)."""
    if folds < 2:
        raise ConfigError(f"folds={folds}: use at least 2")
    ts, t1_ns, rows = _eligible(index, t1, eligible_mask, folds, "folds", folds)
    out = []
    for k, test in enumerate(np.array_split(rows, folds)):
        other = rows[~np.isin(rows, test)]
        out.append(purged_split(k, ts, t1_ns, [test], other, embargo, inner_val_frac))
    return out


def walk_forward(
    index: pd.DatetimeIndex,
    t1: Any,
    eligible_mask: np.ndarray,
    steps: int = 5,
    window: str = "expanding",
    embargo: pd.Timedelta | int = 0,
    inner_val_frac: float = INNER_VAL_FRAC,
) -> list[Fold]:
    """Walk-forward splits: `steps` + 1 blocks, step s tests block s + 1 and trains on
    blocks 0..s (expanding) or block s (sliding), purged against the test block."""
    CvScheme("walk-forward", steps=steps, window=window).check()
    ts, t1_ns, rows = _eligible(index, t1, eligible_mask, steps + 1, "steps", steps)
    blocks = np.array_split(rows, steps + 1)
    out = []
    for s in range(steps):
        candidates = np.concatenate(blocks[: s + 1]) if window == "expanding" else blocks[s]
        fold = purged_split(
            s, ts, t1_ns, [blocks[s + 1]], candidates, embargo, inner_val_frac, "use fewer steps"
        )
        out.append(fold)
    return out


def cpcv(
    index: pd.DatetimeIndex,
    t1: Any,
    eligible_mask: np.ndarray,
    groups: int = 6,
    test_groups: int = 2,
    embargo: pd.Timedelta | int = 0,
    inner_val_frac: float = INNER_VAL_FRAC,
) -> list[Fold]:
    """Combinatorial purged CV: `groups` groups by count, one split per choice of
    `test_groups` of them (cpcv_splits order), trained on the others, purged against
    every test group."""
    CvScheme("cpcv", groups=groups, test_groups=test_groups).check()
    ts, t1_ns, rows = _eligible(index, t1, eligible_mask, groups, "groups", groups)
    blocks = np.array_split(rows, groups)
    group_of = np.concatenate([np.full(len(b), g) for g, b in enumerate(blocks)])
    out = []
    for i, tested in enumerate(cpcv_splits(groups, test_groups)):
        candidates = rows[~np.isin(group_of, tested)]
        tests = [blocks[g] for g in tested]
        fold = purged_split(
            i, ts, t1_ns, tests, candidates, embargo, inner_val_frac, "use fewer groups"
        )
        labels = np.concatenate([np.full(len(blocks[g]), g) for g in tested])
        out.append(_with_groups(fold, tested, labels))
    return out


def _with_groups(fold: Fold, tested: tuple[int, ...], labels: np.ndarray) -> Fold:
    return replace(fold, groups=tuple(tested), group_of_test=labels.astype(np.int64))


def scheme_folds(
    scheme: CvScheme,
    index: pd.DatetimeIndex,
    t1: Any,
    eligible_mask: np.ndarray,
    embargo: pd.Timedelta | int,
    inner_val_frac: float = INNER_VAL_FRAC,
) -> list[Fold]:
    """Every split of `scheme`, in split order."""
    args = (index, t1, eligible_mask)
    if scheme.name == "walk-forward":
        return walk_forward(*args, scheme.steps, scheme.window, embargo, inner_val_frac)
    if scheme.name == "cpcv":
        return cpcv(*args, scheme.groups, scheme.test_groups, embargo, inner_val_frac)
    return purged_kfold(*args, scheme.folds, embargo, inner_val_frac)
