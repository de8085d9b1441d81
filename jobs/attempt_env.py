"""What a worker hands its work horse about one attempt: the only place their names live.

The worker sets these in its environment before it forks (so a horse running other
code, see worker.code_install, reads them the same way); jobs.entry and jobs.kinds
read them back with `AttemptEnv.from_env()`. The names are a contract across code
versions: add, never rename. The stop flag is the horse's: SIGUSR1 from the worker
sets it, and training loops poll it to checkpoint and hand the job back.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_ATTEMPT, ENV_HOME, ENV_TTL = "FACTORY_ATTEMPT", "FACTORY_HOME", "FACTORY_LEASE_TTL_S"
ENV_PROGRESS = "FACTORY_PROGRESS_FILE"
ENV_CACHE = "FACTORY_DATA_CACHE"
ENV_VISIBILITY = "FACTORY_STORAGE_VISIBILITY_WAIT_S"
ENV_LEASE_FILE = "FACTORY_LEASE_FILE"
ENV_DURABILITY = "FACTORY_DURABILITY"
LEASE_MARGIN_S = 1.0  # a lease held locally is trusted until this long before it ends
# how long a job waits for a file another job handed it (a checkpoint, a fold's or a
# model's output) to appear in the shared storage and verify: Drive shows another
# session's writes seconds to minutes late
DEFAULT_VISIBILITY_WAIT_S = 180.0


@dataclass(frozen=True)
class AttemptEnv:
    home: Path
    lease_ttl_s: float = 36.0  # jobs.lease.DEFAULT_LEASE_TTL_S (the worker always sets it)
    attempt: int = 0
    progress_file: Path | None = None
    data_cache: Path | None = None
    storage_visibility_wait_s: float = DEFAULT_VISIBILITY_WAIT_S
    # the worker writes here, at each renewal, until when the attempt's lease holds
    # (write_lease_deadline): the horse's lease checks before a copy then cost no command
    lease_file: Path | None = None
    # how a publisher confirms that its copy reached durable storage (jobs.durable)
    durability: str = "none"

    def to_env(self) -> dict[str, str]:
        env = {ENV_HOME: str(self.home), ENV_TTL: str(self.lease_ttl_s)}
        env[ENV_ATTEMPT] = str(self.attempt)
        env[ENV_VISIBILITY] = str(self.storage_visibility_wait_s)
        env[ENV_DURABILITY] = self.durability
        if self.lease_file is not None:
            env[ENV_LEASE_FILE] = str(self.lease_file)
        if self.progress_file is not None:
            env[ENV_PROGRESS] = str(self.progress_file)
        if self.data_cache is not None:
            env[ENV_CACHE] = str(self.data_cache)
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> AttemptEnv:
        """The attempt as the worker described it; KeyError names a variable it did not set."""
        progress, cache = environ.get(ENV_PROGRESS), environ.get(ENV_CACHE)
        return cls(
            home=Path(environ[ENV_HOME]),
            lease_ttl_s=float(environ.get(ENV_TTL, "30")),
            attempt=int(environ.get(ENV_ATTEMPT, "0")),
            progress_file=Path(progress) if progress else None,
            data_cache=Path(cache) if cache else None,
            storage_visibility_wait_s=float(environ.get(ENV_VISIBILITY, DEFAULT_VISIBILITY_WAIT_S)),
            lease_file=Path(environ[ENV_LEASE_FILE]) if environ.get(ENV_LEASE_FILE) else None,
            durability=environ.get(ENV_DURABILITY) or "none",
        )

    def lease_held_locally(self) -> bool:
        """Whether the worker's last renewal says this attempt's lease still holds now
        (False when it cannot say: the caller then asks Redis)."""
        if self.lease_file is None:
            return False
        try:
            doc = json.loads(self.lease_file.read_text())
            attempt, until = int(doc["attempt"]), float(doc["valid_until"])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return attempt == self.attempt and time.time() < until


def write_lease_deadline(path: Path, attempt: int, sent_at: float, ttl_s: float) -> None:
    """Record that attempt `attempt`'s lease, set or renewed by a call sent at `sent_at`
    (time.time()), holds until `sent_at + ttl_s` less LEASE_MARGIN_S (Redis started
    its TTL after the call was sent)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(
        json.dumps({"attempt": attempt, "valid_until": sent_at + ttl_s - LEASE_MARGIN_S})
    )
    os.replace(tmp, path)


_stop_requested = False


def request_stop(signum, frame) -> None:
    """SIGUSR1 handler in the horse: checkpoint at the next boundary and hand back."""
    global _stop_requested
    _stop_requested = True


def stop_requested() -> bool:
    return _stop_requested
