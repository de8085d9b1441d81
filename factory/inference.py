"""Predict on raw bars with a model or ensemble bundle (factory.bundle: checksums verified).

`predict_raw` builds features from a raw bar file with the dataset pipeline's own code
(factory.data.dataset.build_feature_frames: ingest, validate, sessions, resample,
features), scales them with the scaler stored in the bundle, and predicts every decision
bar whose features and lookback window are complete, so on the training input it
reproduces the train job's predictions row for row.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from factory.bundle import DATASET_FILE, PROBA_COLUMNS, Bundle, load_bundle
from factory.errors import FactoryError
from factory.training.training_data import NO_LABEL, TrainingData


def _features_for(bundle: Bundle, raw_path: Path, tz: str | None):
    """(dataset config, decision index, scaled features, predictable rows) of `raw_path`."""
    from factory.data.config import DatasetConfig
    from factory.data.dataset import build_feature_frames, usable_rows
    from factory.data.scaling import Scaler

    if bundle.dataset is None:
        raise FactoryError(
            f"bundle {bundle.directory} has no {DATASET_FILE} (dataset config and scaler); "
            "fix: retrain it with this version"
        )
    config = DatasetConfig.from_dict(bundle.dataset["config"])
    if tz:
        config = dataclasses.replace(config, tz=tz)
    frames = build_feature_frames(Path(raw_path), config, for_training=False)
    scaler = Scaler.from_dict(bundle.dataset["scaler"])
    if list(scaler.columns) != bundle.feature_names:
        raise FactoryError(f"bundle {bundle.directory}: the scaler and model features differ")
    try:
        X = np.ascontiguousarray(scaler.transform(frames.features), dtype=np.float32)
    except ValueError as exc:
        raise FactoryError(f"{raw_path}: {exc}") from exc
    rows = np.flatnonzero(usable_rows(frames.features, config.lookback_bars))
    if len(rows) == 0:
        raise FactoryError(
            f"{raw_path}: no bar has complete features and a {config.lookback_bars}-bar "
            "window; fix: give more bars (the warm-up needs several sessions)"
        )
    return config, frames.features.index, X, rows


def predict_raw(
    bundle_dir: str | Path, raw_path: str | Path, tz: str | None = None
) -> pd.DataFrame:
    """Probabilities for every decision bar of `raw_path` that has complete features:
    columns p_down, p_flat, p_up, pred (-1 / 0 / +1), confidence; indexed by timestamp."""
    bundle = load_bundle(bundle_dir)
    config, index, X, rows = _features_for(bundle, Path(raw_path), tz)
    empty = np.zeros(0, dtype=np.int64)
    data = TrainingData(
        X=X,
        y=np.full(len(X), NO_LABEL, dtype=np.int64),
        rows={"train": empty, "val": empty, "test": rows},
        class_weights=np.ones(3),
        horizon=int(bundle.meta.get("horizon") or config.horizons[0]),
        lookback_bars=config.lookback_bars,
        feature_columns=tuple(bundle.feature_names),
        dataset_id=str(bundle.dataset.get("dataset_id", "")),
        dataset_dir=Path(bundle_dir),
        index=index,
    )
    proba = bundle.predict_proba(data, "test")
    out = pd.DataFrame(proba, columns=PROBA_COLUMNS, index=index[rows])
    out.index.name = "timestamp"
    out["pred"] = (proba.argmax(axis=1) - 1).astype(np.int8)
    out["confidence"] = proba.max(axis=1)
    return out


def output_format(out: str | Path) -> str:
    """ "parquet" (.parquet, .pq) or "csv" (.csv, .csv.gz), by the file's suffix."""
    name = Path(out).name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    raise FactoryError(f"--out {out}: unknown format; fix: end it in .parquet or .csv")


def write_predictions(frame: pd.DataFrame, out: str | Path) -> Path:
    """Parquet or CSV by the file's suffix (see `output_format`)."""
    out = Path(out)
    fmt = output_format(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        frame.to_parquet(out)
    else:
        frame.to_csv(out)
    return out
