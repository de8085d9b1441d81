"""What a worker hands its work horse about one attempt: the only place their names live.

The worker sets these in its environment before it forks (so a horse running other
code, see worker.code_install, reads them the same way); jobs.entry and jobs.kinds
read them back with `AttemptEnv.from_env()`. The names are a contract across code
versions: add, never rename. The stop flag is the horse's: SIGUSR1 from the worker
sets it, and training loops poll it to checkpoint and hand the job back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_ATTEMPT, ENV_HOME, ENV_TTL = "FACTORY_ATTEMPT", "FACTORY_HOME", "FACTORY_LEASE_TTL_S"
ENV_PROGRESS = "FACTORY_PROGRESS_FILE"
ENV_CACHE = "FACTORY_DATA_CACHE"
ENV_VISIBILITY = "FACTORY_STORAGE_VISIBILITY_WAIT_S"
# how long a job waits for a file another job handed it (a checkpoint, a fold's or a
# model's output) to appear in the shared storage and verify: Drive shows another
# session's writes seconds to minutes late
DEFAULT_VISIBILITY_WAIT_S = 180.0


@dataclass(frozen=True)
class AttemptEnv:
    home: Path
    lease_ttl_s: float = 30.0
    attempt: int = 0
    progress_file: Path | None = None
    data_cache: Path | None = None
    storage_visibility_wait_s: float = DEFAULT_VISIBILITY_WAIT_S

    def to_env(self) -> dict[str, str]:
        env = {ENV_HOME: str(self.home), ENV_TTL: str(self.lease_ttl_s)}
        env[ENV_ATTEMPT] = str(self.attempt)
        env[ENV_VISIBILITY] = str(self.storage_visibility_wait_s)
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
        )


_stop_requested = False


def request_stop(signum, frame) -> None:
    """SIGUSR1 handler in the horse: checkpoint at the next boundary and hand back."""
    global _stop_requested
    _stop_requested = True


def stop_requested() -> bool:
    return _stop_requested
