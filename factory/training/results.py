"""The result of a train, cv or ensemble job: one block, built one way.

Every such result starts with what was fitted on what (model, kind, horizon,
dataset_id, the dataset folder where the job records one), then the job's own
fields, then the code version, the model's fit summary and the seconds it took, in
this order (the order results have always had).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from factory.evaluation.backtest import backtest_dataset_rows
from factory.evaluation.scores import classification_report
from factory.training.training_data import TrainingData
from factory.version import code_version


def job_result(
    model: str,
    kind: str,
    data: TrainingData,
    start: float,
    fields: dict[str, Any],
    *,
    head: dict[str, Any] | None = None,
    with_dataset_dir: bool = True,
    summary: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """{model, kind, **head, horizon, dataset_id[, dataset_dir], **fields, code_version,
    **summary, seconds (since `start`, a perf_counter reading)}: JSON-able."""
    out = {"model": model, "kind": kind, **(head or {})}
    out |= {"horizon": data.horizon, "dataset_id": data.dataset_id}
    if with_dataset_dir:
        out["dataset_dir"] = str(data.dataset_dir)
    out |= fields
    out["code_version"] = code_version()
    out |= summary or {}
    out["seconds"] = round(time.perf_counter() - start, 3)
    return out


def scores(y: np.ndarray, proba: np.ndarray, prior: np.ndarray) -> dict[str, Any]:
    """factory.evaluation.scores' report: skill against `prior`, the decision's scores."""
    return classification_report(y, proba, prior)


def with_backtest(
    metrics: dict[str, Any],
    data: TrainingData,
    rows: np.ndarray,
    proba: np.ndarray,
    threshold: float,
) -> dict[str, Any]:
    """`metrics` with the backtest of `proba` on dataset rows `rows` under "backtest"."""
    metrics["backtest"] = backtest_dataset_rows(
        data.dataset_dir, data.horizon, rows, proba, threshold
    )
    return metrics
