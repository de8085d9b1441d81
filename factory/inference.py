"""Load a model or ensemble bundle (checksums verified) and predict on raw bars.

A bundle's bundle.json lists the sha256 of every file in it; `load_bundle` refuses a
bundle whose files are missing or differ by one byte, with a one-line error naming
the file. `predict_raw` builds features from a raw bar file with the dataset
pipeline's own code (factory.data.dataset.build_feature_frames: ingest, validate,
sessions, resample, features), scales them with the scaler stored in the bundle, and
predicts every decision bar whose features and lookback window are complete, so
on the training input it reproduces the train job's predictions row for row.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from factory.errors import FactoryError
from factory.files import file_sha256
from factory.training.training_data import NO_LABEL, TrainingData

BUNDLE_FILE = "bundle.json"
DATASET_FILE = "dataset.json"
PROBA_COLUMNS = ["p_down", "p_flat", "p_up"]


@dataclass
class Bundle:
    """A verified bundle: one model, or an ensemble of member models and a meta-learner."""

    directory: Path
    meta: dict[str, Any]  # bundle.json
    dataset: dict[str, Any] | None  # dataset.json: config, scaler, costs, features
    model: Any = None  # factory.models.base.Model (single-model bundles)
    members: dict[str, Any] = field(default_factory=dict)  # ensembles: name -> Model
    meta_learner: Any = None

    @property
    def kind(self) -> str:
        return self.meta.get("kind", "")

    @property
    def feature_names(self) -> list[str]:
        first = self.model if self.model is not None else next(iter(self.members.values()))
        return list(first.feature_names_in_)

    def predict_proba(self, data: TrainingData, split: str) -> np.ndarray:
        if self.model is not None:
            return self.model.predict_proba(data, split)
        probas = [m.predict_proba(data, split) for m in self.members.values()]
        return self.meta_learner.predict_proba(probas)


def verify_bundle(directory: str | Path) -> dict[str, Any]:
    """bundle.json of `directory` once every file it lists has its recorded sha256."""
    directory = Path(directory)
    path = directory / BUNDLE_FILE
    if not path.is_file():
        raise FactoryError(
            f"{directory}: not a model bundle (no {BUNDLE_FILE}); fix: pass a folder written "
            "by a train or ensemble job"
        )
    try:
        meta = json.loads(path.read_text())
        files = meta["files"]
    except (ValueError, KeyError) as exc:
        raise FactoryError(f"{path}: unreadable bundle manifest ({exc}); fix: retrain") from exc
    for name, info in sorted(files.items()):
        file = directory / name
        if not file.is_file():
            raise FactoryError(f"bundle {directory}: file {name} is missing; fix: copy it again")
        if file_sha256(file) != info["sha256"]:
            raise FactoryError(
                f"bundle {directory}: file {name} changed since the bundle was written "
                "(sha256 mismatch); refusing to load it; fix: restore or retrain the bundle"
            )
    return meta


def load_bundle(directory: str | Path) -> Bundle:
    """Verify every checksum, then load the model (or the ensemble's members)."""
    from factory.models import load_model

    directory = Path(directory)
    meta = verify_bundle(directory)
    dataset_path = directory / DATASET_FILE
    dataset = json.loads(dataset_path.read_text()) if dataset_path.is_file() else None
    bundle = Bundle(directory, meta, dataset)
    if meta.get("kind") != "ensemble":
        bundle.model = load_model(directory)
        return bundle
    from factory.training.ensemble import ENSEMBLE_FILE, MEMBERS_DIR, meta_from_dict

    spec = json.loads((directory / ENSEMBLE_FILE).read_text())
    bundle.members = {m: load_model(directory / MEMBERS_DIR / m) for m in spec["members"]}
    bundle.meta_learner = meta_from_dict(spec["meta"])
    return bundle


def _features_for(bundle: Bundle, raw_path: Path, tz: str | None):
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
