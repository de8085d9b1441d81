"""`run_worker(...)`: start a leased worker, from a notebook cell or `factory worker`."""

from __future__ import annotations

import logging
import os
import socket
import sys
import uuid
from pathlib import Path

from jobs import keys
from jobs.settings import connect, redact
from jobs.versioning import code_version
from worker.worker import LeasedWorker, WorkerSettings


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
    lease_ttl_s: float = 30.0,
    reaper_interval_s: float = 5.0,
    max_jobs: int | None = None,
    log_level: str = "INFO",
) -> bool:
    """Work jobs until stopped (or, with burst, until the queues are empty)."""
    home_path = Path(home or os.environ.get("FACTORY_HOME") or "factory_home").absolute()
    _setup_logging(log_level, redis_url or os.environ.get("REDIS_URL"))
    connection = connect(redis_url, home_path)
    settings = WorkerSettings(
        home=home_path,
        lease_ttl_s=lease_ttl_s,
        reaper_interval_s=reaper_interval_s,
        code_version=code_version(),
    )
    worker = LeasedWorker(
        queues or [keys.QUEUE],
        connection=connection,
        name=name or default_name(),
        settings=settings,
    )
    return worker.work(burst=burst, max_jobs=max_jobs, logging_level=log_level)
