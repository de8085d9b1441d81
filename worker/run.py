"""`run_worker(...)`: start a leased worker, from a notebook cell or `factory worker`."""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
import uuid
from pathlib import Path

import redis

from jobs import keys
from jobs.attempt_env import DEFAULT_VISIBILITY_WAIT_S
from jobs.connection import connect
from jobs.durable import make_check
from jobs.lease import DEFAULT_LEASE_TTL_S, RedisUnreachable
from jobs.reaper import DEFAULT_PREEMPTION_BUDGET
from jobs.settings import redact
from jobs.storage import preflight
from jobs.versioning import code_version
from worker.session import (
    DEFAULT_HANDBACK_MARGIN_S,
    DEFAULT_MAX_SESSION_HOURS,
    SessionBudget,
)
from worker.worker import LeasedWorker, WorkerSettings

CLIENT_NAME_PREFIX = "mlf-worker:"  # a worker's connections in CLIENT LIST: this + its name

log = logging.getLogger("worker")


def default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"


def _setup_logging(level: str, url: str | None) -> None:
    class Redacting(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            text = super().format(record)
            return redact(text, url) if url else text

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(Redacting("%(asctime)s %(name)s %(levelname)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def run_worker(
    redis_url: str | None = None,
    home: str | os.PathLike | None = None,
    name: str | None = None,
    burst: bool = False,
    queues: list[str] | None = None,
    lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
    reaper_interval_s: float | None = None,
    max_jobs: int | None = None,
    log_level: str = "INFO",
    max_session_hours: float = DEFAULT_MAX_SESSION_HOURS,
    session_ends_in_s: float | None = None,
    handback_margin_s: float = DEFAULT_HANDBACK_MARGIN_S,
    min_free_mb: float = 256.0,
    data_cache: str | os.PathLike | None = None,
    install: str = "auto",
    preemption_budget: int = DEFAULT_PREEMPTION_BUDGET,
    storage_visibility_wait_s: float = DEFAULT_VISIBILITY_WAIT_S,
    reconcile_interval_s: float = 900.0,
    durability: str = "none",
) -> bool:
    """Work jobs until stopped (or, with burst, until the queues are empty).

    The storage root is checked before anything is claimed; a Redis restart ends RQ's
    work loop, so the loop is started again once Redis answers. A job submitted with
    other code runs with that code: `install="auto"` installs the plan's wheel from
    `<home>/code/` for it (this process keeps its own code); "never" leaves the job
    queued for a worker that runs it. `preemption_budget`: a job whose worker died more
    often than this in a row, with no new checkpoint in between, is failed.
    """
    home_path = Path(home or os.environ.get("FACTORY_HOME") or "factory_home").absolute()
    preflight(home_path, int(min_free_mb * 2**20))
    make_check(durability, home_path)  # unknown, off Drive or no credentials: fails here
    _setup_logging(log_level, redis_url or os.environ.get("REDIS_URL"))
    name = name or default_name()
    connection = connect(redis_url, home_path, name=f"{CLIENT_NAME_PREFIX}{name}")
    settings = WorkerSettings(
        home=home_path,
        lease_ttl_s=lease_ttl_s,
        reaper_interval_s=reaper_interval_s,
        install=install,
        preemption_budget=preemption_budget,
        storage_visibility_wait_s=storage_visibility_wait_s,
        reconcile_interval_s=reconcile_interval_s,
        durability=durability,
        budget=SessionBudget.start(max_session_hours, session_ends_in_s, handback_margin_s),
        **({"data_cache": Path(data_cache).absolute()} if data_cache else {}),
    )
    log.info("worker %s runs code %s (install=%s)", name, code_version(), install)
    log.info(settings.budget.describe())
    loop = _Loop(connection, settings, name, queues or [keys.QUEUE], log_level)
    return loop.run(burst, max_jobs)


class _Loop:
    """RQ's work loop, started again after a fault ended it (Redis away longer than the
    worker's own retries), until the work is done: the queues empty (burst), `max_jobs`
    jobs, a stop request or the session's end."""

    def __init__(self, connection, settings, name, queues, log_level) -> None:
        self.connection, self.settings, self.name = connection, settings, name
        self.queues, self.log_level = queues, log_level

    def run(self, burst: bool, max_jobs: int | None) -> bool:
        worked, left = False, max_jobs
        while True:
            worker = None
            try:
                worker = LeasedWorker(
                    self.queues, connection=self.connection, name=self.name, settings=self.settings
                )
                worked = (
                    worker.work(burst=burst, max_jobs=left, logging_level=self.log_level) or worked
                )
            except (redis.exceptions.RedisError, RedisUnreachable) as exc:
                log.error("worker loop ended: Redis unreachable (%s: %s)", type(exc).__name__, exc)
                if worker is not None:
                    worker.loop_fault = worker.loop_fault or exc
            if worker is not None and left is not None:
                left -= worker.jobs_done
            if not _ended_by_fault(worker, burst, left) or not _wait_for_redis(self.connection):
                return worked
            log.warning("Redis answers again: working again")
            time.sleep(1.0)  # a fault that recurs at once must not spin


def _ended_by_fault(worker: LeasedWorker | None, burst: bool, left: int | None) -> bool:
    """Whether RQ's loop ended for a fault (to start again) rather than for the end of work."""
    if worker is None:
        return True  # it could not even start
    if worker.stop_signaled or worker.session_over or (left is not None and left <= 0):
        return False
    if worker.loop_fault is not None:
        return True
    return not burst  # without burst RQ's loop ends only on a stop or a fault


def _wait_for_redis(connection: redis.Redis, max_wait_s: float = 600.0) -> bool:
    """After a fault ended RQ's loop (Redis went away): wait until Redis answers, for up to
    `max_wait_s` (well beyond the 120 s outages a worker rides out)."""
    deadline = time.monotonic() + max_wait_s
    delay = 0.5
    while time.monotonic() < deadline:
        try:
            connection.ping()
            return True
        except (redis.exceptions.RedisError, OSError) as exc:
            log.warning("waiting for Redis (%s)", type(exc).__name__)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
    log.error("Redis unreachable for %.0f s: the worker stops", max_wait_s)
    return False
