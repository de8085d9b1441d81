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
import os
import shutil
import time
from pathlib import Path
from typing import Any

from factory.context import TrainingContext
from factory.metrics import classification_metrics, predictions_sha256
from factory.models import get_model
from factory.models.base import Model
from factory.models.params import resolve_params
from factory.training_data import TrainingData, load_training_data
from factory.version import code_version

RESULT_FILE = "result.json"
BUNDLE_FILE = "bundle.json"


def job_id_for(dataset_id: str, model_name: str, horizon: int, params: dict[str, Any]) -> str:
    """A content hash of what decides a train job's result (resolved params, so that
    equal settings spelled differently give one job)."""
    resolved = dataclasses.asdict(resolve_params(model_name, params))
    payload = {"dataset_id": dataset_id, "model": model_name, "horizon": int(horizon)}
    payload["params"] = resolved
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return f"{model_name}-h{int(horizon)}-{digest[:16]}"


def evaluate(model: Model, data: TrainingData) -> tuple[dict[str, dict], str]:
    """Metrics on val and test, and the sha256 of the test probabilities."""
    metrics = {}
    test_proba = None
    for split in ("val", "test"):
        proba = model.predict_proba(data, split)
        metrics[split] = classification_metrics(data.labels(split), proba)
        test_proba = proba
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


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_bundle(model: Model, result: dict[str, Any], directory: str | Path) -> Path:
    """Model files + config (feature list included) + result + checksums, written under a
    temporary name and renamed into `directory` (replacing an older bundle there)."""
    final = Path(directory)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".tmp-{final.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save(tmp)
        (tmp / RESULT_FILE).write_text(json.dumps(result, indent=1))
        files = {
            p.name: {"sha256": _sha256(p), "bytes": p.stat().st_size} for p in sorted(tmp.iterdir())
        }
        meta = {"model": model.name, "kind": model.kind, "horizon": result.get("horizon")}
        meta |= {"dataset_id": result.get("dataset_id"), "files": files}
        (tmp / BUNDLE_FILE).write_text(json.dumps(meta, indent=1))
        _replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _replace_dir(tmp: Path, final: Path) -> None:
    if not final.exists():
        os.rename(tmp, final)
        return
    old = final.with_name(f".old-{final.name}-{os.getpid()}")
    os.rename(final, old)
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
