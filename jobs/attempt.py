"""One attempt of one job, inside the work horse: its lease, stop flag, staged output,
fenced finalize and promotion.

The worker parent claimed the lease (attempt N) before it forked and described it in
the environment (jobs.attempt_env). A runner (jobs.kinds) writes an output that must
appear only once (a bundle, a fold's out-of-fold folder) into `staged_dir()`, named
after the attempt, and records `final_dir()` in its result. `publish` then makes the
result final through the fenced compare-and-set (jobs.lease) and, only when it won,
moves the staged folder into place; an attempt that lost its lease removes what it
staged and publishes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from factory.layout import Layout
from jobs.attempt_env import AttemptEnv, stop_requested
from jobs.lease import REDIS_OUTAGE_S, Lease, Leases, RedisUnreachable, call_with_retry

log = logging.getLogger("jobs.attempt")


@dataclass
class Attempt:
    lease: Lease
    leases: Leases
    env: AttemptEnv
    staged_: Path | None = field(default=None, init=False)  # set by staged_dir()

    @classmethod
    def of(cls, job_id: str, worker_name: str, connection, env: AttemptEnv) -> Attempt:
        """The attempt `env` describes of `job_id`, run by `worker_name`."""
        lease = Lease(job_id, worker_name, env.attempt)
        return cls(lease, Leases(connection, env.lease_ttl_s), env)

    @property
    def job_id(self) -> str:
        return self.lease.job_id

    @property
    def home(self) -> Path:
        return self.env.home

    @property
    def layout(self) -> Layout:
        return Layout(self.env.home)

    @staticmethod
    def stop_requested() -> bool:
        """Whether the worker asked this attempt to checkpoint and hand its job back."""
        return stop_requested()

    def staged_dir(self) -> Path:
        """Where this attempt writes its one-time output before it is final."""
        self.staged_ = self.layout.staged_bundle_dir(self.job_id, self.lease.attempt)
        return self.staged_

    def final_dir(self) -> Path:
        """Where that output lives once this attempt's result is final."""
        return self.layout.bundle_dir(self.job_id)

    def publish(self, result: dict[str, Any], progress: dict | None) -> bool:
        """Make `result` final (fenced) and promote the staged output; False when a
        newer attempt owns the job (nothing of this one is left then)."""
        result["attempt"] = self.lease.attempt
        try:  # waiting out a long outage cannot make the compare-and-set wrong
            final = call_with_retry(
                self.leases.finalize,
                self.lease,
                json.dumps(result),
                progress,
                window_s=REDIS_OUTAGE_S,
            )
        except RedisUnreachable as exc:
            log.error("job %s attempt %s: result not written (%s)", *self._name(), exc)
            final = False
        if not final:
            self.discard()
            return False
        if self.staged_ is not None and self.staged_.exists():
            self._promote(self.staged_, self.final_dir())
        return True

    def discard(self) -> None:
        """Remove what this attempt staged (it will never be final)."""
        if self.staged_ is not None:
            shutil.rmtree(self.staged_, ignore_errors=True)

    @staticmethod
    def _promote(staged: Path, final: Path) -> None:
        if final.exists():
            shutil.rmtree(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, final)

    def _name(self) -> tuple[str, int]:
        return self.job_id, self.lease.attempt
