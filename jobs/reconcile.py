"""The reconciler: every job of an open plan is in exactly one well-formed state.

deferred, queued (and on its queue), started with a live lease, finished or failed.
Anything else is put back: a job lost between a pop and a registry write, a deferred
job whose dependencies all finished, a job RQ's own cleanup failed while it had no
lease (our poison and preemption budgets decide failures, not RQ's timer).
"""

from __future__ import annotations

import logging

import redis
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from jobs import keys
from jobs.control import requeue_job
from jobs.plan import load_plan, plans_with, queue_for
from jobs.reaper import fetch, started_job_ids

log = logging.getLogger("jobs.reconcile")
ENDED = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.STOPPED}
LOCK_KEY = f"{keys.PREFIX}:reconcile-lock"


def reconcile_if_due(connection: redis.Redis, interval_s: float) -> list[str]:
    """Reconcile unless another process did within `interval_s` (one lock for the fleet)."""
    if not connection.set(LOCK_KEY, "1", nx=True, px=int(interval_s * 1000)):
        return []
    return reconcile_once(connection)


def reconcile_once(connection: redis.Redis) -> list[str]:
    """Fix what is out of place in every open plan; the ids of the jobs put back."""
    fixed: list[str] = []
    for raw in connection.smembers(keys.OPEN_PLANS):
        plan = load_plan(connection, raw.decode())
        if plan is None:
            continue
        statuses = []
        for entry in plan.entries:
            status = _reconcile_job(connection, entry.job_id, fixed)
            statuses.append(status)
        if statuses and all(s in ENDED for s in statuses):
            connection.srem(keys.OPEN_PLANS, plan.plan_id)
    if fixed:
        log.warning("reconciler put back %s job(s): %s", len(fixed), ", ".join(fixed))
    return fixed


def close_ended_plans(connection: redis.Redis, job_id: str) -> list[str]:
    """Take every open plan of `job_id` whose jobs have all ended out of the open set now,
    as the job that ended it ends (the reconciler would, up to its interval later); the
    ids of the plans closed."""
    closed = []
    for plan_id in plans_with(connection, job_id):
        if not connection.sismember(keys.OPEN_PLANS, plan_id):
            continue
        plan = load_plan(connection, plan_id)
        if plan is None:
            continue
        statuses = [
            job.get_status(refresh=False) if job is not None else None
            for job in Job.fetch_many(
                [e.job_id for e in plan.entries], connection=connection, serializer=JSONSerializer
            )
        ]
        if statuses and all(s in ENDED for s in statuses):
            connection.srem(keys.OPEN_PLANS, plan_id)
            closed.append(plan_id)
    return closed


def _reconcile_job(connection: redis.Redis, job_id: str, fixed: list[str]):
    job = fetch(connection, job_id)
    if job is None:
        return None  # gone with Redis: `factory recover` rebuilds it from the ledger
    status = job.get_status()
    queue = queue_for(connection, job.origin)
    has_lease = bool(connection.exists(keys.lease(job_id)))
    if status == JobStatus.QUEUED and not _on_queue(connection, queue, job_id):
        queue.push_job_id(job_id)
        fixed.append(job_id)
    elif (
        status == JobStatus.STARTED
        and not has_lease
        and job_id not in started_job_ids(connection, job.origin)
    ):
        requeue_job(connection, job_id)
        fixed.append(job_id)
    elif status == JobStatus.DEFERRED and _dependencies_finished(connection, job):
        queue.enqueue_job(job)
        fixed.append(job_id)
    elif status == JobStatus.FAILED and not has_lease and _not_failed_by_us(connection, job_id):
        requeue_job(connection, job_id)
        fixed.append(job_id)
    return status


def _on_queue(connection: redis.Redis, queue, job_id: str) -> bool:
    for key in (queue.key, queue.intermediate_queue_key):
        if connection.lpos(key, job_id) is not None:
            return True
    return False


def _dependencies_finished(connection: redis.Redis, job) -> bool:
    for dep_id in job.dependency_ids:
        dep = fetch(connection, dep_id)
        if dep is None or dep.get_status() != JobStatus.FINISHED:
            return False
    return True


def _not_failed_by_us(connection: redis.Redis, job_id: str) -> bool:
    state = connection.hget(keys.state(job_id), "final_error")
    return not state
