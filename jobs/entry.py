"""The one RQ entry point: `jobs.entry.run_job(spec_json)` runs a spec by its kind.

It runs inside the worker's forked work horse. The worker parent has already
claimed the attempt's lease and passes it through the environment. The result
becomes final only through the fenced compare-and-set; an attempt that lost its
lease exits with EXIT_SUPERSEDED and RQ records nothing for it; one asked to stop
(SIGUSR1 from its worker) checkpoints and exits with EXIT_HANDBACK.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from jobs import keys, tracking
from jobs.lease import Lease, Leases, RedisUnreachable, call_with_retry
from jobs.spec import JobSpec, SpecError

ENTRY_POINT = "jobs.entry.run_job"
EXIT_HANDBACK = 75  # the job was handed back (stop requested): no attempt used
EXIT_SUPERSEDED = 76  # a newer attempt owns the job: write nothing
ENV_ATTEMPT, ENV_HOME, ENV_TTL = "FACTORY_ATTEMPT", "FACTORY_HOME", "FACTORY_LEASE_TTL_S"
ENV_PROGRESS = "FACTORY_PROGRESS_FILE"
STAGED_KEY = "_staged_bundle"

_stop_requested = False


class KindNotBuilt(Exception):
    """A job kind that this version of the code does not run yet."""


def _request_stop(signum, frame) -> None:
    global _stop_requested
    _stop_requested = True


def stop_requested() -> bool:
    return _stop_requested


def run_job(spec_json: str) -> dict[str, Any]:
    """Run one attempt of a job (inside the work horse) and return its final result."""
    from rq import get_current_job

    from factory.context import StopTraining, Superseded

    signal.signal(signal.SIGUSR1, _request_stop)
    spec = JobSpec.from_json(spec_json)
    job = get_current_job()
    connection = job.connection
    lease = Lease(job.id, os.environ["RQ_WORKER_ID"], int(os.environ[ENV_ATTEMPT]))
    leases = Leases(connection, float(os.environ.get(ENV_TTL, "30")))
    home = Path(os.environ[ENV_HOME])
    try:
        result = run_spec(spec, job.id, home, connection, leases, lease)
    except StopTraining:
        _exit(EXIT_HANDBACK)
    except Superseded:
        _exit(EXIT_SUPERSEDED)
    result["attempt"] = lease.attempt
    staged = result.pop(STAGED_KEY, None)
    try:
        final = call_with_retry(
            leases.finalize, lease, json.dumps(result), window_s=leases.ttl_ms / 1000
        )
    except RedisUnreachable:
        final = False
    if not final:
        if staged:
            shutil.rmtree(staged, ignore_errors=True)
        _exit(EXIT_SUPERSEDED)
    if staged:
        _promote(Path(staged), Path(result["bundle"]))
    return result


def _promote(staged: Path, final: Path) -> None:
    """Move the final attempt's staged bundle to the job's bundle folder."""
    if final.exists():
        shutil.rmtree(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, final)


def _exit(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_spec(
    spec: JobSpec, job_id: str, home: Path, connection, leases: Leases, lease: Lease
) -> dict[str, Any]:
    runner = KIND_RUNNERS.get(spec.kind)
    if runner is None:
        raise KindNotBuilt(f"job kind {spec.kind!r} is not built in this version")
    start = time.perf_counter()
    result = runner(spec, job_id, home, connection, leases, lease)
    result.setdefault("seconds", round(time.perf_counter() - start, 3))
    return result


def _run_data(spec, job_id, home, connection, leases, lease) -> dict[str, Any]:
    from factory.config import DatasetConfig
    from factory.dataset import build_dataset

    config = DatasetConfig.from_dict(spec.dataset["config"])
    result = build_dataset(Path(spec.dataset["raw_path"]), config, home)
    return {"kind": "data"} | result.summary()


def resolve_dataset_dir(spec: JobSpec, connection) -> Path:
    """The dataset a model job trains on (a verified local copy when a cache is set)."""
    from jobs.datacache import local_dataset

    return local_dataset(_dataset_dir_of(spec, connection))


def _dataset_dir_of(spec: JobSpec, connection) -> Path:
    """Given directly, or the result of the plan's data job."""
    if "dataset_dir" in spec.dataset:
        return Path(spec.dataset["dataset_dir"])
    data_job = spec.dataset.get("from_job")
    raw = connection.get(keys.result(data_job)) if data_job else None
    if raw is None:
        raise SpecError(f"the data job {data_job!r} of this job has no result")
    return Path(json.loads(raw)["dataset_dir"])


def _run_train(spec, job_id, home, connection, leases, lease) -> dict[str, Any]:
    from factory.checkpoint import CheckpointStore
    from factory.train import save_bundle, train_model
    from jobs.context import RedisContext

    dataset_dir = resolve_dataset_dir(spec, connection)
    store = CheckpointStore(home, job_id)
    progress = os.environ.get(ENV_PROGRESS)
    tracker = tracking.start(job_id, spec.to_dict(), home)
    ctx = RedisContext(
        connection,
        leases,
        lease,
        store,
        stop_flag=stop_requested,
        progress_file=Path(progress) if progress else None,
        on_report=tracker.log,
    )
    result, model = train_model(dataset_dir, spec.model, spec.horizon, dict(spec.params), ctx)
    tracker.finish({"metrics": result.get("metrics", {}), "attempt": lease.attempt})
    # staged under the attempt's name; it becomes the job's bundle only once final
    staged = save_bundle(model, result, home / "models" / ".staged" / f"{job_id}-{lease.attempt}")
    final = home / "models" / job_id
    return {"kind": "train", "bundle": str(final), STAGED_KEY: str(staged)} | result


KIND_RUNNERS = {"data": _run_data, "train": _run_train}
BUILT_KINDS = tuple(KIND_RUNNERS)
