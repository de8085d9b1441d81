"""A dataset folder as model-ready arrays: scaled features, class labels, split rows.

Every model trains on the same decision rows: a row of split s is `usable`, has
`split == s` and a defined label at the chosen horizon. Tabular models see those rows
of X; sequence models see the lookback windows that END at those rows, so their
predictions align row for row. Features are scaled with the dataset's stored scaler
(fitted on train rows only when the dataset was built); it is never refitted here.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from factory.data.manifest import (
    FEATURES_FILE,
    LABELS_FILE,
    SCALER_FILE,
    DatasetManifest,
    load_verified,
)
from factory.data.scaling import Scaler
from factory.data.windows import SequenceWindows
from factory.errors import ConfigError, FactoryError

SPLITS = {"train": 0, "val": 1, "test": 2}
N_CLASSES = 3  # label -1 / 0 / +1 -> class 0 / 1 / 2
NO_LABEL = -1


@dataclass(frozen=True, eq=False)
class TrainingData:
    """Arrays of one dataset at one horizon (see the module docstring)."""

    X: np.ndarray  # (n_all, F) float32, C-contiguous, scaled
    y: np.ndarray  # (n_all,) int64 in {0, 1, 2}; NO_LABEL where the label is undefined
    rows: dict[str, np.ndarray]  # split name -> sorted row positions into X / y
    class_weights: np.ndarray  # (3,) float64, "balanced" over the train labels
    horizon: int
    lookback_bars: int
    feature_columns: tuple[str, ...]
    dataset_id: str
    dataset_dir: Path
    index: pd.DatetimeIndex = field(repr=False)
    # (n_all,) int64: the row where each row's label is decided (its t1), -1 where the
    # label is undefined; None when not loaded (inference). factory.training.weights
    t1_rows: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    def split_rows(self, split: str) -> np.ndarray:
        try:
            return self.rows[split]
        except KeyError:
            raise ConfigError(
                f"unknown split {split!r}; fix: use one of {', '.join(SPLITS)}"
            ) from None

    def labels(self, split: str) -> np.ndarray:
        return self.y[self.split_rows(split)]

    def tabular(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(X[rows], y[rows]) of `split`: a (n, F) float32 copy and (n,) int64 labels."""
        rows = self.split_rows(split)
        return self.X[rows], self.y[rows]

    def sequence(self, split: str, lookback: int) -> tuple[SequenceWindows, np.ndarray]:
        """Windows of `lookback` rows ending at each row of `split` (no copy), and labels."""
        lookback = int(lookback)
        if not 1 <= lookback <= self.lookback_bars:
            raise ConfigError(
                f"lookback {lookback} must lie in 1..{self.lookback_bars} (the dataset was built "
                f"with lookback_bars={self.lookback_bars}); fix: lower it, or rebuild the "
                "dataset with a longer --lookback"
            )
        rows = self.split_rows(split)
        return SequenceWindows(self.X, rows, lookback), self.y[rows]

    def with_rows(
        self, train: np.ndarray, val: np.ndarray, test: np.ndarray | None = None
    ) -> TrainingData:
        """The same arrays with other row sets (CV folds); class weights from the new
        train rows. Rows must be sorted, labelled positions; `test` defaults to none."""
        rows = {"train": train, "val": val, "test": test if test is not None else []}
        rows = {name: np.asarray(r, dtype=np.int64) for name, r in rows.items()}
        for name, r in rows.items():
            if len(r) and (np.any(np.diff(r) <= 0) or r[0] < 0 or r[-1] >= len(self.y)):
                raise FactoryError(f"{name} rows must be sorted, unique positions into X")
            if len(r) and np.any(self.y[r] == NO_LABEL):
                raise FactoryError(f"{name} rows include rows without a label")
        for name in ("train", "val"):
            if len(rows[name]) == 0:
                raise FactoryError(f"no {name} rows; fix: use fewer folds or more data")
        weights = balanced_class_weights(self.y[rows["train"]])
        return dataclasses.replace(self, rows=rows, class_weights=weights)


def balanced_class_weights(y: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    """n / (n_classes * count_c) per class, as scikit-learn's "balanced"; 1.0 when absent."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    weights = np.ones(n_classes, dtype=np.float64)
    present = counts > 0
    weights[present] = len(y) / (n_classes * counts[present])
    return weights


def _epoch_ns(values) -> np.ndarray:
    idx = pd.DatetimeIndex(values)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx.as_unit("ns").asi8


def label_end_rows(index: pd.DatetimeIndex, t1) -> np.ndarray:
    """(n,) int64: the position in `index` of each row's label end t1 (a bar of the
    index: labels are decided at a bar), -1 where t1 is NaT."""
    ts, ends = _epoch_ns(index), _epoch_ns(t1)
    known = ~np.asarray(pd.isna(t1))
    out = np.full(len(ends), -1, dtype=np.int64)
    pos = np.searchsorted(ts, ends[known], side="right") - 1
    out[known] = pos
    if np.any(pos < 0) or np.any(ts[pos] != ends[known]):
        raise FactoryError("a label's t1 is not a bar of the dataset; fix: rebuild the dataset")
    return out


def _check_horizon(manifest: DatasetManifest, horizon: int | None, directory: Path) -> int:
    available = list(manifest.horizons)
    if horizon is None:
        return available[0]
    if int(horizon) not in available:
        raise ConfigError(
            f"horizon {horizon} is not in the dataset {directory.name} (it has horizons "
            f"{', '.join(map(str, available))}); fix: pass one of them"
        )
    return int(horizon)


def load_training_data(dataset_dir: str | Path, horizon: int | None = None) -> TrainingData:
    """Load a dataset folder's arrays at `horizon` (default: the dataset's first one), once
    every file checks out against its manifest (a one-line DataError names one that does
    not: training never sees a changed byte)."""
    directory = Path(dataset_dir)
    manifest = load_verified(directory)
    horizon = _check_horizon(manifest, horizon, directory)
    label_col = f"label_h{horizon}"
    columns = [label_col, f"t1_h{horizon}", "split", "usable"]
    labels = pd.read_parquet(directory / LABELS_FILE, columns=columns)
    feats = pd.read_parquet(directory / FEATURES_FILE)
    scaler = Scaler.from_dict(json.loads((directory / SCALER_FILE).read_text()))
    X = np.ascontiguousarray(scaler.transform(feats[list(scaler.columns)]), dtype=np.float32)

    label = labels[label_col]
    t1_rows = label_end_rows(feats.index, labels[f"t1_h{horizon}"])
    defined = label.notna().to_numpy()
    y = np.full(len(labels), NO_LABEL, dtype=np.int64)
    y[defined] = label[defined].to_numpy(dtype=np.int64) + 1
    usable = labels["usable"].to_numpy(dtype=bool)
    split = labels["split"].to_numpy()
    rows = {
        name: np.flatnonzero(usable & (split == code) & defined) for name, code in SPLITS.items()
    }
    empty = [name for name, r in rows.items() if len(r) == 0]
    if empty:
        raise FactoryError(
            f"{directory}: no labelled rows in split(s) {', '.join(empty)} at horizon {horizon}; "
            "fix: build the dataset from more bars"
        )
    return TrainingData(
        X=X,
        y=y,
        rows=rows,
        class_weights=balanced_class_weights(y[rows["train"]]),
        horizon=horizon,
        lookback_bars=manifest.lookback_bars,
        feature_columns=tuple(scaler.columns),
        dataset_id=manifest.dataset_id,
        dataset_dir=directory,
        index=feats.index,
        t1_rows=t1_rows,
    )
