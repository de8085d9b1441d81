"""Purged k-fold cross-validation over the training period, one fold per job.

The eligible rows (train split, usable, labelled at the horizon) are cut by count, in
time order, into `folds` contiguous test folds. For a test fold with first decision
time S and span end E (the latest t1 of its rows, at least its last decision time),
an eligible row r outside the fold is a TRAINING row only if

- t1(r) < S (its label ends before the fold starts), or
- t(r) > E + embargo (it starts after the fold's labels end and after the embargo).

Every other row is dropped: PURGED when its [t, t1] span overlaps [S, E] (an unknown
t1 counts as overlapping anything after t), EMBARGOED when it starts in (E, E + embargo].
The embargo is a Timedelta, or an int of decision bars counted on the index after
the bar at E; it should be at least max(horizon, longest lookback of any model).

Early stopping never looks at the test fold: the fold's training rows are split once
more, the last `inner_val_frac` of them (in time) validating, with the same purge and
embargo between inner train and inner validation (as factory.data.splits does).
`run_cv_fold` trains a registered model on those rows of the same TrainingData and
returns the fold's out-of-fold probabilities.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from factory.bundle import PROBA_COLUMNS, RESULT_FILE
from factory.data.manifest import LABELS_FILE
from factory.errors import ConfigError
from factory.evaluation.backtest import DEFAULT_THRESHOLD
from factory.evaluation.metrics import predictions_sha256
from factory.evaluation.scores import class_prior, classification_report
from factory.files import atomic_dir
from factory.models import get_model, resolve_params
from factory.training.context import TrainingContext
from factory.training.results import job_result, with_backtest
from factory.training.training_data import TrainingData, load_training_data

INNER_VAL_FRAC = 0.2
OOF_FILE = "oof.parquet"
_INF = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Fold:
    """One purged fold; rows are positions into the dataset's index, sorted."""

    fold: int
    train_rows: np.ndarray
    test_rows: np.ndarray
    inner_train_rows: np.ndarray
    inner_val_rows: np.ndarray
    test_start: pd.Timestamp
    test_end: pd.Timestamp  # the latest t1 of the test rows (NaT-free: see module doc)
    purged: int
    embargoed: int


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
    if _is_bars(embargo):
        if embargo < 0:
            raise ConfigError(f"embargo {embargo} bars must not be negative")
        last = int(np.searchsorted(ts, end, side="right")) - 1  # the bar at or before E
        stop = last + int(embargo)
        return int(ts[stop]) if stop < len(ts) else _INF
    delta = pd.Timedelta(embargo)
    if delta < pd.Timedelta(0):
        raise ConfigError(f"embargo {embargo} must not be negative")
    return end + int(delta.value)


def _is_bars(embargo: Any) -> bool:
    return isinstance(embargo, (int, np.integer)) and not isinstance(embargo, bool)


def _inner_split(rows, ts, t1, embargo, frac: float) -> tuple[np.ndarray, np.ndarray]:
    """The last `frac` of `rows` validate; earlier rows ending at/after its start B, or
    starting less than the embargo before B, are dropped (as factory.data.splits)."""
    n_val = max(1, round(len(rows) * frac))
    inner_val = rows[len(rows) - n_val :]
    head = rows[: len(rows) - n_val]
    start = ts[inner_val[0]]
    if _is_bars(embargo):
        clear = head <= inner_val[0] - int(embargo)
    else:
        clear = ts[head] <= start - int(pd.Timedelta(embargo).value)
    return head[(t1[head] < start) & clear], inner_val


def _check_inputs(n: int, t1: Any, eligible: np.ndarray, folds: int) -> np.ndarray:
    if len(t1) != n or len(eligible) != n:
        raise ValueError(f"index ({n}), t1 ({len(t1)}) and eligible ({len(eligible)}) differ")
    rows = np.flatnonzero(np.asarray(eligible, dtype=bool))
    if folds < 2:
        raise ConfigError(f"folds={folds}: use at least 2")
    if len(rows) < 2 * folds:
        raise ConfigError(
            f"{len(rows)} eligible rows cannot make {folds} folds; fix: use fewer folds"
        )
    return rows


def purged_kfold(
    index: pd.DatetimeIndex,
    t1: Any,
    eligible_mask: np.ndarray,
    folds: int = 5,
    embargo: pd.Timedelta | int = 0,
    inner_val_frac: float = INNER_VAL_FRAC,
) -> list[Fold]:
    """The purged folds of the eligible rows of a sorted index (see the module docstring)."""
    ts, t1_ns = _ns(index), _ns(t1)
    if len(ts) > 1 and not (np.diff(ts) > 0).all():
        raise ValueError("index must be sorted and unique")
    rows = _check_inputs(len(ts), t1, eligible_mask, folds)
    out = []
    for k, test in enumerate(np.array_split(rows, folds)):
        start = int(ts[test[0]])
        end = max(int(t1_ns[test].max()), int(ts[test[-1]]))
        until = _embargo_until(ts, end, embargo)
        other = rows[~np.isin(rows, test)]
        before = t1_ns[other] < start
        after = ts[other] > until
        overlaps = (ts[other] <= end) & (t1_ns[other] >= start)
        train = other[before | after]
        if len(train) < 2:
            raise ConfigError(
                f"fold {k}: {len(train)} training rows left after purge and embargo; "
                "fix: use fewer folds, a shorter embargo or more data"
            )
        inner_train, inner_val = _inner_split(train, ts, t1_ns, embargo, inner_val_frac)
        if len(inner_train) == 0:
            raise ConfigError(
                f"fold {k}: no inner training rows left after purge and embargo; "
                "fix: use fewer folds, a shorter embargo or more data"
            )
        out.append(
            Fold(
                fold=k,
                train_rows=train,
                test_rows=test,
                inner_train_rows=inner_train,
                inner_val_rows=inner_val,
                test_start=pd.Timestamp(start, tz="UTC"),
                test_end=pd.Timestamp(end, tz="UTC") if end != _INF else pd.NaT,
                purged=int(overlaps.sum()),
                embargoed=int(len(other) - len(train) - overlaps.sum()),
            )
        )
    return out


def row_ranges(rows: np.ndarray, eligible: np.ndarray, index: pd.DatetimeIndex) -> list[dict]:
    """Runs of `rows` that are consecutive among the eligible rows: [{first, last (row
    positions), start, end (times), n}], JSON-able."""
    rank = np.searchsorted(eligible, rows)
    breaks = np.flatnonzero(np.diff(rank) > 1) + 1
    out = []
    for seg in np.split(rows, breaks):
        if len(seg):
            out.append(
                {
                    "first": int(seg[0]),
                    "last": int(seg[-1]),
                    "start": index[seg[0]].isoformat(),
                    "end": index[seg[-1]].isoformat(),
                    "n": len(seg),
                }
            )
    return out


def default_embargo_bars(horizon: int, lookbacks: list[int]) -> int:
    """max(horizon, longest lookback of the plan's models), in decision bars."""
    return max([int(horizon), *[int(lb) for lb in lookbacks]])


def oof_frame(index: pd.DatetimeIndex, rows: np.ndarray, proba: np.ndarray, y: np.ndarray):
    """Out-of-fold probabilities indexed by decision time: p_down, p_flat, p_up, y, row."""
    frame = pd.DataFrame(np.asarray(proba, dtype=np.float64), columns=PROBA_COLUMNS)
    frame["y"] = np.asarray(y, dtype=np.int64)
    frame["row"] = np.asarray(rows, dtype=np.int64)
    frame.index = pd.DatetimeIndex(index[rows], name="timestamp")
    return frame


def _fold_of(
    data: TrainingData, fold: int, folds: int, embargo: pd.Timedelta | int | None
) -> tuple[Fold, pd.Timedelta | int]:
    """Fold `fold` of `folds` over the train split of `data`, and the embargo it used
    (None: max(horizon, the dataset's lookback_bars) bars)."""
    if not 0 <= fold < folds:
        raise ConfigError(f"fold {fold} is outside 0..{folds - 1}")
    if embargo is None:
        embargo = default_embargo_bars(data.horizon, [data.lookback_bars])
    t1 = pd.read_parquet(data.dataset_dir / LABELS_FILE, columns=[f"t1_h{data.horizon}"])
    eligible = np.zeros(len(data.y), dtype=bool)
    eligible[data.split_rows("train")] = True
    return purged_kfold(data.index, t1.iloc[:, 0], eligible, folds, embargo)[fold], embargo


def _fold_fields(f: Fold, data: TrainingData) -> dict[str, Any]:
    """What a cv result records of its fold: row counts and the time ranges of its rows."""
    eligible_rows = data.split_rows("train")
    return {
        "rows": {
            "eligible": len(eligible_rows),
            "train": len(f.train_rows),
            "inner_train": len(f.inner_train_rows),
            "inner_val": len(f.inner_val_rows),
            "test": len(f.test_rows),
            "purged": f.purged,
            "embargoed": f.embargoed,
        },
        "train_ranges": row_ranges(f.train_rows, eligible_rows, data.index),
        "inner_val_ranges": row_ranges(f.inner_val_rows, eligible_rows, data.index),
        "test_range": row_ranges(f.test_rows, eligible_rows, data.index)[0],
        "test_span_end": f.test_end.isoformat() if f.test_end is not pd.NaT else None,
    }


def run_cv_fold(
    dataset_dir: str | Path,
    model_name: str,
    horizon: int | None,
    params: dict[str, Any],
    fold: int,
    folds: int,
    embargo: pd.Timedelta | int | None,
    ctx: TrainingContext,
    threshold: float = DEFAULT_THRESHOLD,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Fit `model_name` on fold `fold` of `folds` (early stopping on the inner split) and
    predict its test fold; (JSON-able result, OOF frame). `embargo` None means
    max(horizon, the dataset's lookback_bars) bars. Checkpoints go through `ctx`."""
    start = time.perf_counter()
    model_cls = get_model(model_name)
    resolved = resolve_params(model_name, params)
    data = load_training_data(dataset_dir, horizon)
    f, embargo = _fold_of(data, fold, folds, embargo)
    fold_data = data.with_rows(train=f.inner_train_rows, val=f.inner_val_rows, test=f.test_rows)
    model = model_cls(resolved).fit(fold_data, ctx).calibrate(fold_data)  # on val rows
    proba = model.predict_proba(fold_data, "test")
    y = fold_data.labels("test")
    metrics = classification_report(y, proba, class_prior(fold_data.labels("train")))
    with_backtest(metrics, data, f.test_rows, proba, threshold)
    fields = {"params": dataclasses.asdict(resolved), "fold": fold, "folds": folds}
    fields["embargo"] = int(embargo) if _is_bars(embargo) else str(pd.Timedelta(embargo))
    fields |= _fold_fields(f, data)
    fields |= {"metrics": {"test": metrics}, "oof_sha256": predictions_sha256(proba)}
    result = job_result(
        model_name,
        model.kind,
        data,
        start,
        fields,
        with_dataset_dir=False,
        summary=model.fit_summary(),
    )
    return result, oof_frame(data.index, f.test_rows, proba, y)


def save_fold(result: dict[str, Any], oof: pd.DataFrame, directory: str | Path) -> Path:
    """oof.parquet + result.json into `directory`, written under a temporary name first."""
    with atomic_dir(directory) as tmp:
        oof.to_parquet(tmp / OOF_FILE)
        (tmp / RESULT_FILE).write_text(json.dumps(result, indent=1))
    return Path(directory)


def load_fold(directory: str | Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """What `save_fold` wrote: (result, OOF frame)."""
    directory = Path(directory)
    result = json.loads((directory / RESULT_FILE).read_text())
    return result, pd.read_parquet(directory / OOF_FILE)
