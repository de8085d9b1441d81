"""Job state changes shared by workers, the reaper and the CLI: requeue, fail, cancel."""

from __future__ import annotations

import logging
import time

import redis
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

from jobs import keys
from jobs.plan import Plan, load_plan, plans_with, queue_for

log = logging.getLogger("jobs.control")


def _fetch(connection: redis.Redis, job_id: str) -> Job:
    return Job.fetch(job_id, connection=connection, serializer=JSONSerializer)


def requeue_job(
    connection: redis.Redis, job_id: str, queue_name: str | None = None, at_front: bool = False
) -> Job:
    """Put a job back on its queue (from started or failed), keeping its checkpoints."""
    job = _fetch(connection, job_id)
    queue = queue_for(connection, queue_name or job.origin)
    remove_started(connection, queue.name, job)
    FailedJobRegistry(queue.name, connection=connection, serializer=JSONSerializer).remove(job)
    # a finished job runs again when its output never arrived (jobs.handoff)
    FinishedJobRegistry(queue.name, connection=connection, serializer=JSONSerializer).remove(job)
    job.started_at = None
    job.ended_at = None
    return queue.enqueue_job(job, at_front=at_front)


def defer_on(connection: redis.Redis, job_id: str, dependency: str) -> Job:
    """Put a started job back as deferred until `dependency` finishes (queued at once if
    it has finished already): a job whose dependency runs again (jobs.handoff)."""
    job = _fetch(connection, job_id)
    queue = queue_for(connection, job.origin)
    remove_started(connection, queue.name, job)
    job._dependency_ids = [dependency]
    job.started_at = None
    job.ended_at = None
    connection.hset(keys.state(job_id), mapping={"status": "deferred", "waits_for": dependency})
    return queue.enqueue_job(job)


def remove_started(connection: redis.Redis, queue_name: str, job: Job) -> None:
    """Drop every execution entry of `job` from the queue's started registry."""
    registry = StartedJobRegistry(queue_name, connection=connection, serializer=JSONSerializer)
    try:
        registry.remove_executions(job)
    except ValueError:  # an execution record that expired: the prefix scan below removes it
        log.info("job %s: stale execution record; removing its registry entries by id", job.id)
    prefix = f"{job.id}:".encode()
    leftovers = [e for e in connection.zrange(registry.key, 0, -1) if e.startswith(prefix)]
    if leftovers:
        connection.zrem(registry.key, *leftovers)


def fail_job(connection: redis.Redis, job_id: str, reason: str, traceback: str = "") -> None:
    """Fail a job for good (with its reason) and cancel everything that depends on it."""
    job = _fetch(connection, job_id)
    remove_started(connection, job.origin, job)
    FailedJobRegistry(job.origin, connection=connection, serializer=JSONSerializer).add(
        job, ttl=30 * 24 * 3600, exc_string=traceback or reason
    )
    job.set_status(JobStatus.FAILED)
    connection.hset(
        keys.state(job_id),
        mapping={
            "status": "failed",
            "error": reason,
            "final_error": traceback or reason,
            "failed_at": f"{time.time():.3f}",
        },
    )
    cancel_dependents(connection, job_id, f"dependency {job_id} failed: {reason}")


def dependents_of(plan: Plan, job_id: str) -> list[str]:
    """Every job of the plan that depends on `job_id`, directly or not."""
    children: dict[str, list[str]] = {}
    for entry in plan.entries:
        for dep in entry.depends_on:
            children.setdefault(dep, []).append(entry.job_id)
    out, stack = [], list(children.get(job_id, []))
    while stack:
        jid = stack.pop()
        if jid not in out:
            out.append(jid)
            stack.extend(children.get(jid, []))
    return out


def cancel_dependents(connection: redis.Redis, job_id: str, reason: str) -> list[str]:
    canceled = []
    for plan_id in plans_with(connection, job_id):
        plan = load_plan(connection, plan_id)
        for dep in dependents_of(plan, job_id) if plan else []:
            if cancel_job(connection, dep, reason):
                canceled.append(dep)
    return canceled


def cancel_job(connection: redis.Redis, job_id: str, reason: str) -> bool:
    """Cancel a job that has not finished; its state keeps the reason."""
    connection.hset(keys.state(job_id), mapping={"status": "canceled", "error": reason})
    try:
        job = _fetch(connection, job_id)
    except Exception:
        return True  # no RQ job (lost with an emptied Redis): the state says canceled
    if job.get_status() in (JobStatus.FINISHED, JobStatus.CANCELED):
        return False
    job.cancel()
    return True
