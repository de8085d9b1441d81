"""The in-process TrainingContext: for tests and `factory train` (no Redis, no fencing).

Checkpoints go through the same CheckpointStore as under a worker, and are always
published: in one process there is nobody to be superseded by.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from factory.training.checkpoint import CheckpointStore
from factory.training.context import Checkpoint


class LocalContext:
    """Implements factory.training.context.TrainingContext on a CheckpointStore."""

    def __init__(
        self,
        store: CheckpointStore,
        attempt: int | None = None,
        stop: Callable[[], bool] | None = None,
        on_report: Callable[[int, int, dict], None] | None = None,
        wait_s: float = 0.0,
    ) -> None:
        self.store = store
        self.job_id = store.job_id
        if attempt is None:
            attempt = 1 + max((r.attempt for r in store.records()), default=0)
        self.attempt = attempt
        self._stop = stop
        self._on_report = on_report
        self.wait_s = wait_s
        self.last_report: tuple[int, int, dict[str, float]] | None = None
        self.checkpoint_steps: list[int] = []
        self.resumed_from: int | None = None

    def report(self, step: int, total: int, metrics: dict[str, float] | None = None) -> None:
        metrics = dict(metrics or {})
        self.last_report = (step, total, metrics)
        if self._on_report is not None:
            self._on_report(step, total, metrics)

    def should_stop(self) -> bool:
        return bool(self._stop()) if self._stop is not None else False

    def save_checkpoint(self, step: int, files: dict[str, bytes], state: dict[str, Any]) -> bool:
        record = self.store.write(self.attempt, step, files, state)
        self.store.publish(record)
        self.checkpoint_steps.append(step)
        return True

    def latest_checkpoint(self) -> Checkpoint | None:
        checkpoint = self.store.latest(wait_s=self.wait_s)
        self.resumed_from = checkpoint.step if checkpoint is not None else None
        return checkpoint
