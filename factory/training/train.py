"""One training job: fit a registered model on a dataset through a TrainingContext.

This is what `factory train` runs in-process and what a worker's train job calls:
load the dataset at a horizon, fit (resuming from the context's latest checkpoint),
evaluate on val and test, and return a JSON-able result: with the train rows' sample
weights (factory.training.weights) and the top 20 features by permutation importance on
the validation rows (and by gain for boosting models; factory.evaluation.importance).
`run_training` also saves the fitted model as a bundle (factory.bundle), whose
importance.png plots them.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from factory.bundle import save_bundle
from factory.evaluation.backtest import DEFAULT_THRESHOLD
from factory.evaluation.importance import feature_importance
from factory.evaluation.metrics import predictions_sha256
from factory.evaluation.scores import class_prior
from factory.models import get_model, resolve_params
from factory.models.base import Model
from factory.training.context import TrainingContext
from factory.training.results import job_result, scores, with_backtest
from factory.training.training_data import TrainingData, load_training_data
from factory.training.weights import weights_summary

UNCALIBRATED_KEYS = ("log_loss_skill", "brier_skill", "calibration_error")


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
        metrics[split] = scores(data.labels(split), proba, prior)
        test_proba = proba
    with_backtest(metrics["test"], data, data.split_rows("test"), test_proba, threshold)
    return metrics, predictions_sha256(test_proba)


def calibration_summary(model: Model, data: TrainingData) -> dict[str, Any]:
    """The calibration's method and the test skill of the model's raw probabilities
    (those of its balanced training), to set beside the calibrated metrics."""
    prior = class_prior(data.labels("train"))
    report = scores(data.labels("test"), model._raw_proba(data, "test"), prior)
    method = model.calibration_.method if model.calibration_ is not None else None
    return {"method": method, "test_uncalibrated": {k: report[k] for k in UNCALIBRATED_KEYS}}


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
    model = model_cls(resolved).fit(data, ctx).calibrate(data)  # on val rows only
    metrics, test_sha = evaluate(model, data)
    fields = {"params": dataclasses.asdict(resolved), "metrics": metrics}
    fields["test_predictions_sha256"] = test_sha
    fields["calibration"] = calibration_summary(model, data)
    fields["sample_weight"] = weights_summary(data, resolved.sample_weight, resolved.time_decay)
    model.importance_ = feature_importance(  # on val rows; the bundle plots it
        model, data, resolved.importance_rows, resolved.importance_repeats, resolved.seed
    )
    fields["importance"] = model.importance_
    result = job_result(model_name, model.kind, data, start, fields, summary=model.fit_summary())
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
