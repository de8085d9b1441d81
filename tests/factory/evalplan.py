"""A tiny plan run in-process, built once per test session and shared by the CV,
ensemble and inference tests: a synthetic dataset, xgboost and lstm trained (with
bundles) and cross-validated over 3 purged folds, all through LocalContexts."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from factory.data.config import DatasetConfig
from factory.data.dataset import build_dataset
from factory.data.synthetic import synthetic_bars, write_raw
from factory.training.checkpoint import CheckpointStore
from factory.training.cv import run_cv_fold
from factory.training.local_context import LocalContext
from factory.training.train import run_training

HORIZON = 5
FOLDS = 3
PARAMS = {
    "xgboost": {
        "profile": "tiny",
        "n_estimators": "20",
        "early_stopping_rounds": "20",
        "checkpoint_every_rounds": "10",
        "nthread": "1",
    },
    "lstm": {"profile": "tiny", "epochs": "1", "patience": "1"},
}


@dataclass(frozen=True)
class Plan:
    home: Path
    raw: Path
    dataset_dir: Path
    train: dict[str, dict]  # model -> train result (with "bundle")
    cv: dict[str, list[dict]]  # model -> fold results
    oof: dict[str, list[pd.DataFrame]]  # model -> fold OOF frames


def context(home: Path, job_id: str, **kwargs) -> LocalContext:
    return LocalContext(CheckpointStore(home, job_id), **kwargs)


@functools.lru_cache(maxsize=1)
def dataset() -> tuple[Path, Path, Path]:
    """(home, raw file, dataset folder), built once per process."""
    home = Path(tempfile.mkdtemp(prefix="evalplan-"))
    atexit.register(shutil.rmtree, home, True)
    raw = write_raw(synthetic_bars("MES", days=6, seed=11), home / "MES_1m.parquet")
    config = DatasetConfig(
        symbol="MES", tick_size=0.25, tick_value_usd=1.25, horizons=(HORIZON,), lookback_bars=16
    )
    return home, raw, build_dataset(raw, config, home).dataset_dir


@functools.lru_cache(maxsize=1)
def plan() -> Plan:
    home, raw, dataset_dir = dataset()
    train, cv, oof = {}, {}, {}
    for model, params in PARAMS.items():
        ctx = context(home, f"train-{model}")
        bundle = home / "models" / f"train-{model}"
        train[model] = run_training(dataset_dir, model, HORIZON, params, ctx, bundle_dir=bundle)
        cv[model], oof[model] = [], []
        for k in range(FOLDS):
            ctx = context(home, f"cv-{model}-{k}")
            result, frame = run_cv_fold(dataset_dir, model, HORIZON, params, k, FOLDS, None, ctx)
            cv[model].append(result)
            oof[model].append(frame)
    return Plan(home, raw, dataset_dir, train, cv, oof)
