"""Preemptions are not the job's fault: only those in a row without progress count."""

from __future__ import annotations

import json
import time

from rq import Queue
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from jobs import keys
from jobs.lease import Leases
from jobs.reaper import Reaper

QUEUE = "mlf"


def _preempt(client, job_id: str, reaper: Reaper, checkpoint_step: int | None) -> list[str]:
    """One attempt of `job_id` that (maybe) checkpoints, then dies; a reaper pass."""
    leases = Leases(client, 0.2)
    lease = leases.claim(job_id, "w-dying")
    if checkpoint_step is not None:
        record = json.dumps({"step": checkpoint_step})
        assert leases.publish_checkpoint(lease, record, checkpoint_step, 3)
    registry = StartedJobRegistry(QUEUE, connection=client, serializer=JSONSerializer)
    client.zadd(registry.key, {f"{job_id}:execution": time.time() + 600})
    client.lrem(f"rq:queue:{QUEUE}", 0, job_id)
    time.sleep(0.3)
    return reaper.reap_once()


def _job(client) -> str:
    queue = Queue(QUEUE, connection=client, serializer=JSONSerializer)
    return queue.enqueue("jobs.entry.run_job", "{}").id


def _state(client, job_id: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in client.hgetall(keys.state(job_id)).items()}


def test_a_job_preempted_often_but_checkpointing_each_time_is_never_failed(redis_server):
    client = redis_server.client()
    job_id = _job(client)
    reaper = Reaper(client, Leases(client, 30), [QUEUE], preemption_budget=2)
    for step in (5, 10, 15, 20, 25):
        assert _preempt(client, job_id, reaper, checkpoint_step=step) == [job_id]
    state = _state(client, job_id)
    assert state["preemptions"] == "5" and state["counted_preemptions"] == "1"
    assert state["status"] != "failed"


def test_a_job_that_keeps_killing_its_worker_without_progress_fails_naming_the_option(
    redis_server,
):
    client = redis_server.client()
    job_id = _job(client)
    reaper = Reaper(client, Leases(client, 30), [QUEUE], preemption_budget=2)
    assert _preempt(client, job_id, reaper, checkpoint_step=5) == [job_id]
    assert _preempt(client, job_id, reaper, checkpoint_step=None) == [job_id]
    assert _preempt(client, job_id, reaper, checkpoint_step=None) == []
    state = _state(client, job_id)
    assert state["status"] == "failed"
    assert state["error"].startswith(
        "preempted 3 times in a row without a new checkpoint (budget 2)"
    )
    assert "fix: raise --preemption-budget (of submit or factory worker)" in state["error"]
