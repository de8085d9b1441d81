"""The one RQ entry point: `jobs.entry.run_job(spec_json)` runs a spec by its kind.

It runs inside the worker's forked work horse. The worker parent has already
claimed the attempt's lease and passes it through the environment (jobs.attempt_env).
The result becomes final only through the attempt's fenced publish (jobs.attempt); an
attempt that lost its lease exits with EXIT_SUPERSEDED and RQ records nothing for it;
one asked to stop (SIGUSR1 from its worker) checkpoints and exits with EXIT_HANDBACK;
one whose dependency's output never arrived re-opens that dependency and exits with
EXIT_WAITS (jobs.handoff).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from typing import Any

from jobs.attempt import Attempt
from jobs.attempt_env import (
    ENV_ATTEMPT,
    ENV_HOME,
    ENV_PROGRESS,
    ENV_TTL,
    AttemptEnv,
    request_stop,
    stop_requested,
)
from jobs.handoff import OutputMissing, rerun_producer
from jobs.spec import ENTRY_POINT, JobSpec, SpecError

# ENV_* and request_stop are re-exported for workers of earlier code (jobs.attempt_env)
__all__ = ["ENTRY_POINT", "ENV_ATTEMPT", "ENV_HOME", "ENV_PROGRESS", "ENV_TTL", "request_stop"]
__all__ += ["run_job", "run_spec", "stop_requested"]
EXIT_HANDBACK = 75  # the job was handed back (stop requested): no attempt used
EXIT_SUPERSEDED = 76  # a newer attempt owns the job: write nothing
EXIT_WAITS = 77  # a dependency's output never arrived: it runs again, this job waits for it
log = logging.getLogger("jobs.entry")


def run_job(spec_json: str) -> dict[str, Any]:
    """Run one attempt of a job (inside the work horse) and return its final result."""
    from rq import get_current_job

    from factory.training.context import StopTraining, Superseded
    from jobs.context import read_progress

    signal.signal(signal.SIGUSR1, request_stop)
    spec = JobSpec.from_json(spec_json)
    job = get_current_job()
    env = AttemptEnv.from_env()
    attempt = Attempt.of(job.id, os.environ["RQ_WORKER_ID"], job.connection, env)
    attempt.remove_leftovers()  # what superseded attempts left in the shared storage
    try:
        result = run_spec(spec, attempt, job.connection, job.dependency_ids)
    except StopTraining:
        _exit(EXIT_HANDBACK)
    except Superseded:
        attempt.discard()
        _exit(EXIT_SUPERSEDED)
    except OutputMissing as exc:
        if not exc.producer or not rerun_producer(job.connection, job.id, exc):
            raise
        attempt.discard()
        _exit(EXIT_WAITS)
    progress = read_progress(env.progress_file) if env.progress_file else None
    if not attempt.publish(result, progress):
        _exit(EXIT_SUPERSEDED)
    _after_final(spec, job.id, job.connection)
    return result


def _after_final(spec: JobSpec, job_id: str, connection) -> None:
    """jobs.kinds.after_final (a trial tells its study); the result is final already, so
    a failure here is logged, never the job's (what it missed is told later)."""
    from jobs.kinds import after_final

    try:
        after_final(spec, job_id, connection)
    except Exception as exc:
        log.warning("job %s: after its result: %s: %s", job_id, type(exc).__name__, exc)


def _exit(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_spec(
    spec: JobSpec, attempt: Attempt, connection, dependency_ids: list[str] | None = None
) -> dict[str, Any]:
    """Run `spec` by its kind as `attempt`; the result, not yet final."""
    from jobs.kinds import KIND_RUNNERS, Run

    runner = KIND_RUNNERS.get(spec.kind)
    if runner is None:
        raise SpecError(f"job kind {spec.kind!r} has no runner in jobs.kinds")
    start = time.perf_counter()
    result = runner(Run(spec, attempt, connection, list(dependency_ids or [])))
    result.setdefault("seconds", round(time.perf_counter() - start, 3))
    return result
