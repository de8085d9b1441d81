"""The one RQ entry point: `jobs.entry.run_job(spec_json)` runs a spec by its kind.

It runs inside the worker's forked work horse. The worker parent has already
claimed the attempt's lease and passes it through the environment. The result
becomes final only through the fenced compare-and-set; an attempt that lost its
lease exits with EXIT_SUPERSEDED and RQ records nothing for it; one asked to stop
(SIGUSR1 from its worker) checkpoints and exits with EXIT_HANDBACK.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from factory.layout import resolve_in_home
from jobs.attempt_env import (
    ENV_ATTEMPT,
    ENV_HOME,
    ENV_PROGRESS,
    ENV_TTL,
    STAGED_KEY,
    AttemptEnv,
    request_stop,
    stop_requested,
)
from jobs.lease import REDIS_OUTAGE_S, Lease, Leases, RedisUnreachable, call_with_retry
from jobs.spec import ENTRY_POINT, JobSpec, SpecError

# ENV_* and request_stop are re-exported for workers of earlier code (jobs.attempt_env)
__all__ = ["ENTRY_POINT", "ENV_ATTEMPT", "ENV_HOME", "ENV_PROGRESS", "ENV_TTL", "request_stop"]
__all__ += ["run_job", "run_spec", "stop_requested"]
EXIT_HANDBACK = 75  # the job was handed back (stop requested): no attempt used
EXIT_SUPERSEDED = 76  # a newer attempt owns the job: write nothing
log = logging.getLogger("jobs.entry")


def run_job(spec_json: str) -> dict[str, Any]:
    """Run one attempt of a job (inside the work horse) and return its final result."""
    from rq import get_current_job

    from factory.training.context import StopTraining, Superseded
    from jobs.context import read_progress

    signal.signal(signal.SIGUSR1, request_stop)
    spec = JobSpec.from_json(spec_json)
    job = get_current_job()
    connection = job.connection
    env = AttemptEnv.from_env()
    lease = Lease(job.id, os.environ["RQ_WORKER_ID"], env.attempt)
    leases = Leases(connection, env.lease_ttl_s)
    home = env.home
    try:
        result = run_spec(spec, job.id, home, connection, leases, lease, job.dependency_ids)
    except StopTraining:
        _exit(EXIT_HANDBACK)
    except Superseded:
        _exit(EXIT_SUPERSEDED)
    result["attempt"] = lease.attempt
    staged = result.pop(STAGED_KEY, None)
    progress = read_progress(env.progress_file) if env.progress_file else None
    try:  # the fenced compare-and-set: waiting out a long outage cannot make it wrong
        final = call_with_retry(
            leases.finalize, lease, json.dumps(result), progress, window_s=REDIS_OUTAGE_S
        )
    except RedisUnreachable as exc:
        log.error("job %s attempt %s: result not written (%s)", job.id, lease.attempt, exc)
        final = False
    if not final:
        if staged:
            shutil.rmtree(resolve_in_home(home, staged, "staged bundle"), ignore_errors=True)
        _exit(EXIT_SUPERSEDED)
    if staged:
        _promote(home, staged, result["bundle"])
    return result


def _promote(home: Path, staged_rel: str, final_rel: str) -> None:
    """Move the final attempt's staged bundle to the job's bundle folder (both recorded
    relative to the storage root)."""
    staged = resolve_in_home(home, staged_rel, "staged bundle")
    final = resolve_in_home(home, final_rel, "bundle")
    if final.exists():
        shutil.rmtree(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, final)


def _exit(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_spec(
    spec: JobSpec,
    job_id: str,
    home: Path,
    connection,
    leases: Leases,
    lease: Lease,
    dependency_ids: list[str] | None = None,
) -> dict[str, Any]:
    from jobs.kinds import KIND_RUNNERS, Run

    runner = KIND_RUNNERS.get(spec.kind)
    if runner is None:
        raise SpecError(f"job kind {spec.kind!r} has no runner in jobs.kinds")
    start = time.perf_counter()
    run = Run(spec, job_id, home, connection, leases, lease, list(dependency_ids or []))
    result = runner(run)
    result.setdefault("seconds", round(time.perf_counter() - start, 3))
    return result
