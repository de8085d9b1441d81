"""Cross-validation over the training period, one split per job, for every scheme.

The schemes (purged k-fold, the default; walk-forward; combinatorial purged CV) are
factory.training.cv_schemes; their splits, purged and embargoed, factory.training.folds
(`purged_kfold` and `Fold` are re-exported here). `run_cv_fold` trains a registered
model on the inner training rows of one split of the same TrainingData (early stopping
on the split's inner validation rows, never on its test rows) and returns the split's
out-of-fold probabilities; a cpcv split's frame also names each row's group, from which
factory.training.cv_schemes assembles the test paths.
"""

from __future__ import annotations

import dataclasses
import json
import time
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
from factory.training.cv_schemes import GROUP_COLUMN, CvScheme
from factory.training.folds import INNER_VAL_FRAC, Fold, is_bars, purged_kfold, scheme_folds
from factory.training.results import job_result, with_backtest
from factory.training.training_data import TrainingData, load_training_data

__all__ = ["INNER_VAL_FRAC", "Fold", "load_fold", "purged_kfold", "run_cv_fold", "save_fold"]
OOF_FILE = "oof.parquet"


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


def oof_frame(
    index: pd.DatetimeIndex,
    rows: np.ndarray,
    proba: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray | None = None,
):
    """Out-of-fold probabilities indexed by decision time: p_down, p_flat, p_up, y, row
    (and `group`, each row's CPCV group, when `groups` is given)."""
    frame = pd.DataFrame(np.asarray(proba, dtype=np.float64), columns=PROBA_COLUMNS)
    frame["y"] = np.asarray(y, dtype=np.int64)
    frame["row"] = np.asarray(rows, dtype=np.int64)
    if groups is not None:
        frame[GROUP_COLUMN] = np.asarray(groups, dtype=np.int64)
    frame.index = pd.DatetimeIndex(index[rows], name="timestamp")
    return frame


def _fold_of(
    data: TrainingData,
    fold: int,
    scheme: CvScheme,
    embargo: pd.Timedelta | int | None,
) -> tuple[Fold, pd.Timedelta | int]:
    """Split `fold` of `scheme` over the train split of `data`, and the embargo it used
    (None: max(horizon, the dataset's lookback_bars) bars)."""
    if not 0 <= fold < scheme.n_splits:
        raise ConfigError(f"fold {fold} is outside 0..{scheme.n_splits - 1}")
    if embargo is None:
        embargo = default_embargo_bars(data.horizon, [data.lookback_bars])
    t1 = pd.read_parquet(data.dataset_dir / LABELS_FILE, columns=[f"t1_h{data.horizon}"])
    eligible = np.zeros(len(data.y), dtype=bool)
    eligible[data.split_rows("train")] = True
    return scheme_folds(scheme, data.index, t1.iloc[:, 0], eligible, embargo)[fold], embargo


def _fold_fields(f: Fold, data: TrainingData) -> dict[str, Any]:
    """What a cv result records of its split: row counts and the time ranges of its rows
    (`test_range`: the first test block; `test_ranges`: every one)."""
    eligible_rows = data.split_rows("train")
    tests = row_ranges(f.test_rows, eligible_rows, data.index)
    out = {
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
        "test_range": tests[0],
        "test_ranges": tests,
        "test_span_end": f.test_end.isoformat() if f.test_end is not pd.NaT else None,
    }
    if f.groups:
        out["test_groups"] = list(f.groups)
    return out


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
    scheme: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Fit `model_name` on split `fold` of `folds` of `scheme` (a spec's `cv`: None or {}
    is purged k-fold; factory.training.cv_schemes) with early stopping on the inner
    split, and predict its test rows; (JSON-able result, OOF frame). `embargo` None means
    max(horizon, the dataset's lookback_bars) bars. Checkpoints go through `ctx`."""
    start = time.perf_counter()
    cv = CvScheme.from_spec(scheme or {}, folds)
    model_cls = get_model(model_name)
    resolved = resolve_params(model_name, params)
    data = load_training_data(dataset_dir, horizon)
    f, embargo = _fold_of(data, fold, cv, embargo)
    fold_data = data.with_rows(train=f.inner_train_rows, val=f.inner_val_rows, test=f.test_rows)
    model = model_cls(resolved).fit(fold_data, ctx).calibrate(fold_data)  # on val rows
    proba = model.predict_proba(fold_data, "test")
    y = fold_data.labels("test")
    metrics = classification_report(y, proba, class_prior(fold_data.labels("train")))
    with_backtest(metrics, data, f.test_rows, proba, threshold)
    fields = {"params": dataclasses.asdict(resolved), "fold": fold, "folds": folds}
    fields["cv"] = cv.describe()
    fields["embargo"] = int(embargo) if is_bars(embargo) else str(pd.Timedelta(embargo))
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
    return result, oof_frame(data.index, f.test_rows, proba, y, f.group_of_test)


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
