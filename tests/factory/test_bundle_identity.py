"""A bundle's content is the same whether its run was interrupted or not (issue 12,
point 12): model files are written as canonical bytes (LightGBM's num_iterations,
CatBoost's finish time, guid and train_dir, a config's key order), and bundle.json's
`content_sha256` covers every file but the run's record (result.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from factory.bundle import BUNDLE_FILE, CONTENT_KEY, RESULT_FILE, load_bundle, verify_bundle
from factory.data.config import DatasetConfig
from factory.data.dataset import build_dataset
from factory.data.synthetic import synthetic_bars, write_raw
from factory.errors import FactoryError
from factory.training.checkpoint import CheckpointStore
from factory.training.context import StopTraining
from factory.training.local_context import LocalContext
from factory.training.train import run_training

PARAMS = {
    "lightgbm": {
        "profile": "tiny",
        "n_estimators": "120",
        "early_stopping_rounds": "120",
        "checkpoint_every_rounds": "20",
        "nthread": "1",
    },
    "catboost": {
        "profile": "tiny",
        "n_estimators": "60",
        "early_stopping_rounds": "60",
        "checkpoint_every_rounds": "20",
    },
    # a checkpoint at each epoch's end only: the resume restores a non-empty history
    "lstm": {"profile": "tiny", "epochs": "3", "patience": "3", "checkpoint_every_s": "100"},
}


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("data-home")
    raw = write_raw(synthetic_bars("MES", days=6, seed=5), home / "MES_1m.parquet")
    config = DatasetConfig(symbol="MES", tick_size=0.25, tick_value_usd=1.25, horizons=(5,))
    return build_dataset(raw, config, home).dataset_dir


def train(model: str, dataset: Path, home: Path, stop_at_first_checkpoint: bool = False):
    def stop() -> bool:
        return stop_at_first_checkpoint and any(home.glob("checkpoints/*/manifest.json"))

    ctx = LocalContext(CheckpointStore(home, "job"), stop=stop)
    return run_training(dataset, model, None, PARAMS[model], ctx, bundle_dir=home / "bundle")


def model_files(bundle: Path) -> dict[str, bytes]:
    return {
        p.relative_to(bundle).as_posix(): p.read_bytes()
        for p in sorted(bundle.rglob("*"))
        if p.is_file() and p.name not in (RESULT_FILE, BUNDLE_FILE)
    }


@pytest.mark.parametrize("model", sorted(PARAMS))
def test_a_resumed_run_writes_the_same_bundle_content(model, dataset_dir, tmp_path):
    whole = train(model, dataset_dir, tmp_path / "whole")
    with pytest.raises(StopTraining):
        train(model, dataset_dir, tmp_path / "resumed", stop_at_first_checkpoint=True)
    resumed = train(model, dataset_dir, tmp_path / "resumed")
    assert whole["resumed"] is False and resumed["resumed"] is True
    assert resumed["test_predictions_sha256"] == whole["test_predictions_sha256"]

    a, b = Path(whole["bundle"]), Path(resumed["bundle"])
    assert model_files(a) == model_files(b)  # canonical bytes, file by file
    meta_a, meta_b = verify_bundle(a), verify_bundle(b)
    assert meta_a[CONTENT_KEY] == meta_b[CONTENT_KEY]
    assert load_bundle(b).model is not None


def test_the_content_identity_is_checked_on_load(dataset_dir, tmp_path):
    bundle = Path(train("lightgbm", dataset_dir, tmp_path)["bundle"])
    meta = json.loads((bundle / BUNDLE_FILE).read_text())
    meta[CONTENT_KEY] = "0" * 64
    (bundle / BUNDLE_FILE).write_text(json.dumps(meta))
    with pytest.raises(FactoryError, match="content_sha256 does not match its files"):
        load_bundle(bundle)
