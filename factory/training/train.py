"""One training job: fit a registered model on a dataset through a TrainingContext.

This is what `factory train` runs in-process and what a worker's train job calls:
load the dataset at a horizon, fit (resuming from the context's latest checkpoint),
evaluate on val and test, and return a JSON-able result. `save_bundle` writes the
fitted model with its config, result and checksums into a folder, atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from factory.evaluation.backtest import DEFAULT_THRESHOLD, backtest_dataset_rows
from factory.evaluation.metrics import classification_metrics, predictions_sha256
from factory.evaluation.scores import class_prior, classification_report
from factory.files import atomic_dir, file_sha256
from factory.models import get_model, resolve_params
from factory.models.base import Model
from factory.training.context import TrainingContext
from factory.training.training_data import TrainingData, load_training_data
from factory.version import code_version

RESULT_FILE = "result.json"
BUNDLE_FILE = "bundle.json"
DATASET_FILE = "dataset.json"  # what inference needs of the dataset: config, scaler, costs


def job_id_for(dataset_id: str, model_name: str, horizon: int, params: dict[str, Any]) -> str:
    """A content hash of what decides a train job's result (resolved params, so that
    equal settings spelled differently give one job)."""
    resolved = dataclasses.asdict(resolve_params(model_name, params))
    payload = {"dataset_id": dataset_id, "model": model_name, "horizon": int(horizon)}
    payload["params"] = resolved
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return f"{model_name}-h{int(horizon)}-{digest[:16]}"


def evaluate(
    model: Model, data: TrainingData, threshold: float = DEFAULT_THRESHOLD
) -> tuple[dict[str, dict], str]:
    """Metrics on val and test (factory.evaluation.scores, prior from the train labels; a
    backtest of the test period), and the sha256 of the test probabilities."""
    metrics = {}
    test_proba = None
    prior = class_prior(data.labels("train"))
    for split in ("val", "test"):
        proba = model.predict_proba(data, split)
        y = data.labels(split)
        metrics[split] = classification_report(y, proba, prior) | classification_metrics(y, proba)
        test_proba = proba
    metrics["test"]["backtest"] = backtest_dataset_rows(
        data.dataset_dir, data.horizon, data.split_rows("test"), test_proba, threshold
    )
    return metrics, predictions_sha256(test_proba)


def train_model(
    dataset_dir: str | Path,
    model_name: str,
    horizon: int | None,
    params: dict[str, Any],
    ctx: TrainingContext,
) -> tuple[dict[str, Any], Model]:
    """Fit and evaluate; (JSON-able result, fitted model)."""
    start = time.perf_counter()
    model_cls = get_model(model_name)
    resolved = resolve_params(model_name, params)  # bad params fail before data is read
    data = load_training_data(dataset_dir, horizon)
    model = model_cls(resolved).fit(data, ctx)
    metrics, test_sha = evaluate(model, data)
    result = {
        "model": model_name,
        "kind": model.kind,
        "horizon": data.horizon,
        "dataset_id": data.dataset_id,
        "dataset_dir": str(data.dataset_dir),
        "params": dataclasses.asdict(resolved),
        "metrics": metrics,
        "test_predictions_sha256": test_sha,
        "code_version": code_version(),
    }
    result |= model.fit_summary()
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result, model


def run_training(
    dataset_dir: str | Path,
    model_name: str,
    horizon: int | None,
    params: dict[str, Any],
    ctx: TrainingContext,
    bundle_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Fit, evaluate, optionally save the bundle into `bundle_dir`; the JSON-able result."""
    result, model = train_model(dataset_dir, model_name, horizon, params, ctx)
    if bundle_dir is not None:
        result["bundle"] = str(save_bundle(model, result, bundle_dir))
    return result


def dataset_info(dataset_dir: str | Path) -> dict[str, Any]:
    """What a bundle keeps of its dataset so that it can predict on raw bars alone: the
    dataset config (feature settings, timezone), its scaler, feature list and costs."""
    directory = Path(dataset_dir)
    manifest = json.loads((directory / "manifest.json").read_text())
    return {
        "dataset_id": manifest.get("dataset_id", directory.name),
        "config": manifest["config"],
        "costs": manifest["costs"],
        "feature_columns": manifest["feature_columns"],
        "scaler": json.loads((directory / "scaler.json").read_text()),
    }


def write_checksums(tmp: Path, meta: dict[str, Any]) -> None:
    """bundle.json: `meta` plus the sha256 and size of every file under `tmp` (recursive,
    by relative path); factory.inference verifies them on load."""
    files = {
        p.relative_to(tmp).as_posix(): {"sha256": file_sha256(p), "bytes": p.stat().st_size}
        for p in sorted(tmp.rglob("*"))
        if p.is_file()
    }
    (tmp / BUNDLE_FILE).write_text(json.dumps(meta | {"files": files}, indent=1))


def save_bundle(
    model: Model,
    result: dict[str, Any],
    directory: str | Path,
    dataset_dir: str | Path | None = None,
) -> Path:
    """Model files + config (feature list included) + result + the dataset's config and
    scaler (from `dataset_dir`, else the result's) + checksums, written under a
    temporary name and renamed into `directory` (replacing an older bundle there)."""
    with atomic_dir(directory) as tmp:
        model.save(tmp)
        (tmp / RESULT_FILE).write_text(json.dumps(result, indent=1))
        dataset_dir = dataset_dir or result.get("dataset_dir")
        if dataset_dir is not None:
            (tmp / DATASET_FILE).write_text(json.dumps(dataset_info(dataset_dir), indent=1))
        meta = {"model": model.name, "kind": model.kind, "horizon": result.get("horizon")}
        meta |= {"dataset_id": result.get("dataset_id")}
        write_checksums(tmp, meta)
    return Path(directory)
