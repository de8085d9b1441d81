"""Rebuild the queue state of a plan from its ledger after Redis lost it (restarted empty).

The ledger (<home>/ledger/<plan_id>.json) holds every spec and dependency; each job's
checkpoint manifest on disk holds its published checkpoints. Jobs whose RQ record is
gone are enqueued again with the same ids and dependencies; their attempt counters
and checkpoint lists are restored first, so they resume where they were.
"""

from __future__ import annotations

import json
from pathlib import Path

import redis
from rq.job import Job

from factory.layout import Layout
from factory.training.checkpoint import CheckpointStore
from jobs import keys
from jobs.code_wheel import ShippedCode
from jobs.code_wheel import record as record_code
from jobs.errors import RunnerError
from jobs.plan import enqueue_entry, queue_for, read_ledger, store_plan


def recover_plan(connection: redis.Redis, home: Path, plan_id: str) -> dict:
    """Re-enqueue what the plan lost; returns counts of what was done."""
    ledger = Layout(home).ledger_file(plan_id)  # a plan id that is not a plain name is refused
    try:
        plan = read_ledger(home, plan_id)
    except FileNotFoundError as exc:
        raise RunnerError(
            f"no ledger {ledger}; fix: pass the --home of the storage root the plan was "
            "submitted to (any path that reaches it)"
        ) from exc
    queue = queue_for(connection)
    restored, present = [], []
    for entry in plan.entries:
        if Job.exists(entry.job_id, connection=connection):
            present.append(entry.job_id)
            continue
        _restore_checkpoints(connection, home, entry.job_id)
        enqueue_entry(queue, entry)
        restored.append(entry.job_id)
    store_plan(connection, plan)
    if "code_wheel_sha256" in plan.submitted:  # workers verify the wheel against it
        record_code(connection, ShippedCode.from_dict(plan.submitted))
    return {"plan_id": plan_id, "restored": restored, "present": present}


def _restore_checkpoints(connection: redis.Redis, home: Path, job_id: str) -> None:
    records = CheckpointStore(home, job_id).records()
    if not records:
        return
    pipe = connection.pipeline()
    pipe.delete(keys.checkpoints(job_id))
    pipe.rpush(keys.checkpoints(job_id), *[json.dumps(r.to_dict()) for r in records])
    top = max(r.attempt for r in records)
    pipe.set(keys.attempts(job_id), top, nx=True)
    pipe.hset(
        keys.state(job_id),
        mapping={
            "checkpoint_step": records[0].step,
            "checkpoint_at": f"{records[0].created_at:.3f}",
        },
    )
    pipe.execute()
