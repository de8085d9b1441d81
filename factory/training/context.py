"""The small object through which factory code talks to whatever runs it.

`factory` never imports the runner. A training loop is handed a `TrainingContext`:
under a worker it is `jobs`' Redis-backed, fenced implementation; in tests and in
`factory train` it is `LocalContext` (factory/training/local_context.py). So every model
trains and resumes the same way everywhere.

Contract for training loops:
- call `latest_checkpoint()` once at the start; when it returns a checkpoint,
  restore from it and continue from `checkpoint.step`;
- call `report(step, total, metrics)` as work progresses (cheap; may be throttled);
- at every checkpoint boundary call `save_checkpoint(step, files, state)`; when it
  returns False the attempt has been superseded (fenced): stop at once, write nothing;
- poll `should_stop()` between steps; when True, save a checkpoint and raise
  `StopTraining` (the runner hands the job back without using an attempt).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class StopTraining(Exception):
    """Raised by a training loop that stopped because `should_stop()` said so."""


class Superseded(Exception):
    """This attempt lost its lease to a newer one; it must stop and publish nothing."""


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint: its files' bytes and its JSON state."""

    step: int
    attempt: int
    files: dict[str, bytes] = field(repr=False)
    state: dict[str, Any]


@runtime_checkable
class TrainingContext(Protocol):
    job_id: str
    attempt: int

    def report(self, step: int, total: int, metrics: dict[str, float] | None = None) -> None: ...

    def should_stop(self) -> bool: ...

    def save_checkpoint(
        self, step: int, files: dict[str, bytes], state: dict[str, Any]
    ) -> bool: ...

    def latest_checkpoint(self) -> Checkpoint | None: ...
