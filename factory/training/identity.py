"""The one job id: what a job is in words, then a hash of what decides its result.

`job_id(kind, symbol, label, content, fold)` reads `<kind>-<symbol>-<label>[-f<fold>]-
<sha256 of content, 20 hex>`. Every job id is made here: jobs.spec.JobSpec.job_id for
the queue, and `factory train` for a run in one process.

A train job's content is `train_content`: the code version, the dataset id, the model,
the horizon and the *resolved* parameters (a profile and the same values spelled out
give one job). So the same train job has the same id whether a worker runs it or
`factory train` does, and its checkpoints (checkpoints/<job_id>/) are the same job's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

DIGEST_CHARS = 20


def job_id(kind: str, symbol: str, label: str, content: Mapping[str, Any], fold: int = -1) -> str:
    """The id of a job of `kind` on `symbol` (`label`: its model, else its kind)."""
    payload = json.dumps(content, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(payload.encode()).hexdigest()[:DIGEST_CHARS]
    suffix = f"-f{fold}" if fold >= 0 else ""
    return f"{kind}-{symbol.lower()}-{label}{suffix}-{digest}"


def train_content(
    code: str, dataset_id: str, model: str, horizon: int, params: Mapping[str, Any]
) -> dict[str, Any]:
    """What decides a train job's result; unknown models or parameters raise ConfigError."""
    from factory.models import resolve_params

    resolved = dataclasses.asdict(resolve_params(model, dict(params)))
    return {
        "kind": "train",
        "code": code,
        "dataset_id": dataset_id,
        "model": model,
        "horizon": int(horizon),
        "params": resolved,
    }


def train_job_id(
    code: str, symbol: str, dataset_id: str, model: str, horizon: int, params: Mapping[str, Any]
) -> str:
    """The id of the train job of `model` on a dataset (see the module docstring)."""
    return job_id("train", symbol, model, train_content(code, dataset_id, model, horizon, params))
