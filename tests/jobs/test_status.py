"""What `factory status` shows while a job's worker is gone but its lease still lives."""

from __future__ import annotations

import time

from rq import Queue
from rq.job import JobStatus
from rq.serializers import JSONSerializer

from jobs import keys
from jobs.plan import Plan, PlanEntry
from jobs.spec import JobSpec
from jobs.status import job_rows


def _started_job(client, model: str, renewed_s_ago: float, ttl_left_s: float) -> PlanEntry:
    spec = JobSpec(kind="train", symbol="MES", code="x", model=model, horizon=5)
    job = Queue("mlf", connection=client, serializer=JSONSerializer).enqueue(
        "jobs.entry.run_job", spec.to_json(), job_id=spec.job_id
    )
    job.set_status(JobStatus.STARTED)
    state = {"attempt": 1, "worker": "w-dead", "renewed_at": f"{time.time() - renewed_s_ago:.3f}"}
    client.hset(keys.state(spec.job_id), mapping=state)
    client.set(keys.lease(spec.job_id), "w-dead|1", px=int(ttl_left_s * 1000))
    return PlanEntry(spec)


def test_a_lease_whose_renewals_are_overdue_is_shown_as_expiring(redis_server):
    client = redis_server.client()
    healthy = _started_job(client, "xgboost", renewed_s_ago=3, ttl_left_s=27)
    dead = _started_job(client, "lightgbm", renewed_s_ago=16, ttl_left_s=14)
    rows = {r["model"]: r for r in job_rows(client, Plan((healthy, dead)))}
    assert rows["xgboost"]["status"] == "started" and rows["xgboost"]["worker"] == "w-dead"
    assert rows["lightgbm"]["status"] == "lease expiring"
