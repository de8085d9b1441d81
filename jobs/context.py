"""The Redis-backed, fenced training context handed to factory code inside a worker.

Checkpoint files go through factory's CheckpointStore (atomic, checksummed); making
one "latest" is a compare-and-set on the attempt's lease (jobs.lease), so a
superseded attempt publishes nothing. It writes nothing into the storage either: the
store stages each checkpoint locally and asks the lease again (`_guard`: one GET)
before each chunk it copies in, and the next attempt removes what a superseded one
left behind (`latest_checkpoint`). The same store's manifest on disk is the
ledger `factory recover` rebuilds from.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import redis

from factory.training.checkpoint import CheckpointRecord, CheckpointStore
from factory.training.context import Checkpoint, Superseded
from jobs import keys
from jobs.lease import Lease, Leases, RedisUnreachable, call_with_retry

log = logging.getLogger("jobs.context")
KEEP_CHECKPOINTS = 3


class RedisContext:
    """Implements factory.training.context.TrainingContext for one attempt of one job."""

    def __init__(
        self,
        connection: redis.Redis,
        leases: Leases,
        lease: Lease,
        store: CheckpointStore,
        stop_flag=None,
        checkpoint_wait_s: float = 30.0,
        progress_file: Path | None = None,
        on_report=None,
        lease_held_locally=None,
        confirm_durable=None,
    ) -> None:
        self.connection = connection
        self.leases = leases
        self.lease = lease
        self.store = store
        self.job_id = lease.job_id
        self.attempt = lease.attempt
        self._stop_flag = stop_flag or (lambda: False)
        self.progress_file = progress_file
        self._on_report = on_report
        self._lease_held_locally = lease_held_locally or (lambda: False)
        # (paths, what) -> None: waits until durable storage holds them (jobs.attempt)
        self._confirm_durable = confirm_durable or (lambda paths, what: None)
        self._wait_s = checkpoint_wait_s
        self.resumed_from: int | None = None
        self.checkpoint_steps: list[int] = []

    def _call(self, fn, *args):
        """Retried while Redis is briefly away; after a whole lease TTL the lease is
        presumed lost, so this attempt stops (Superseded) and writes nothing."""
        try:
            return call_with_retry(fn, *args, window_s=self.leases.ttl_ms / 1000)
        except RedisUnreachable as exc:
            raise Superseded(str(exc)) from exc

    def report(self, step: int, total: int, metrics: dict[str, float] | None = None) -> None:
        """Progress goes to a local file; the worker's lease renewal carries it to Redis
        (and the final result its last value), so reporting costs no Redis command and
        never blocks training on Redis."""
        if metrics and self._on_report is not None:
            self._on_report(metrics, step)  # every epoch / round chunk (e.g. to W&B)
        if self.progress_file is not None:
            write_progress(self.progress_file, step, total, metrics)

    def should_stop(self) -> bool:
        return bool(self._stop_flag())

    def _guard(self) -> None:
        """Raise Superseded unless this attempt still holds its lease (checked right
        before each copy into the shared storage): the worker's last renewal answers
        while it is fresh, else Redis."""
        if self._lease_held_locally():
            return
        if not self._call(self.leases.holds, self.lease):
            log.warning(
                "job %s attempt %s superseded: stops copying into the storage",
                self.job_id,
                self.attempt,
            )
            raise Superseded(f"job {self.job_id} attempt {self.attempt} lost its lease")

    def save_checkpoint(self, step: int, files: dict[str, bytes], state: dict[str, Any]) -> bool:
        record = self.store.write(self.attempt, step, files, state, guard=self._guard)
        folder = self.store.job_dir / record.dirname
        self._confirm_durable(
            [folder / name for name in sorted(record.files)], f"checkpoint {step}"
        )
        published = self._call(
            self.leases.publish_checkpoint,
            self.lease,
            json.dumps(record.to_dict()),
            step,
            KEEP_CHECKPOINTS,
        )
        if published is None:
            log.warning(
                "job %s attempt %s superseded: checkpoint %s not published",
                self.job_id,
                self.attempt,
                step,
            )
            self.store.discard(record)
            return False
        self.store.publish(record)
        self.checkpoint_steps.append(step)
        # on Drive a dead attempt's partial copy may show up only now: removed as it does
        # (what Redis says is published, the publish's own answer, is kept whatever this
        # view's manifest says)
        names = {r.dirname for r in _records(published)} | {record.dirname}
        self.store.remove_leftovers(self.attempt, names)
        return True

    def published_records(self) -> list[CheckpointRecord]:
        raw = self._call(self.connection.lrange, keys.checkpoints(self.job_id), 0, -1)
        return _records(raw) or self.store.records()  # after a Redis wipe: the ledger on disk

    def latest_checkpoint(self) -> Checkpoint | None:
        """The newest published checkpoint that is really present; what earlier attempts
        left unpublished (copies cut short, refused checkpoints) is removed first."""
        records = self.published_records()
        self.store.remove_leftovers(self.attempt, {r.dirname for r in records})
        checkpoint = self.store.latest(records, wait_s=self._wait_s)
        if records and checkpoint is None:
            log.warning(
                "job %s attempt %s: none of its %d published checkpoints arrived and "
                "verified within %.0f s (storage_visibility_wait_s); training starts over",
                self.job_id,
                self.attempt,
                len(records),
                self._wait_s,
            )
        self.resumed_from = checkpoint.step if checkpoint else None
        self.connection.hset(
            keys.state(self.job_id), "resumed_from", "" if checkpoint is None else checkpoint.step
        )
        return checkpoint


def _records(raw: list[bytes]) -> list[CheckpointRecord]:
    return [CheckpointRecord.from_dict(json.loads(r)) for r in raw]


def write_progress(path: Path, step: int, total: int, metrics: dict | None) -> None:
    """Atomically replace the progress file the worker reads at each lease renewal."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"step": step, "total": total, "metrics": metrics or {}}))
    os.replace(tmp, path)


def read_progress(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
