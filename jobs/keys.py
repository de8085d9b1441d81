"""The Redis key schema of everything this project adds to RQ's own keys.

All keys live under one prefix so `factory recover` and tests can find them.
"""

from __future__ import annotations

PREFIX = "mlf"
QUEUE = "mlf"  # the one RQ queue name used by default


def attempts(job_id: str) -> str:
    """INCR counter: the attempt number of each start of the job."""
    return f"{PREFIX}:attempts:{job_id}"


def lease(job_id: str) -> str:
    """String `<worker>|<attempt>` with a TTL; gone = the attempt is presumed dead."""
    return f"{PREFIX}:lease:{job_id}"


def state(job_id: str) -> str:
    """Hash: attempt, worker, step, total, checkpoint_step, resumed_from, error, counters."""
    return f"{PREFIX}:state:{job_id}"


def checkpoints(job_id: str) -> str:
    """List of published checkpoint records (JSON), newest first, trimmed to `keep`."""
    return f"{PREFIX}:ckpts:{job_id}"


def result(job_id: str) -> str:
    """The final result (JSON), written once through a fenced compare-and-set."""
    return f"{PREFIX}:result:{job_id}"


def failures(job_id: str) -> str:
    """Hash: failure signature -> count, for poison-job detection."""
    return f"{PREFIX}:failures:{job_id}"


def job_plans(job_id: str) -> str:
    """Set of the plan ids that contain the job (the index behind jobs.plan.plans_with)."""
    return f"{PREFIX}:job-plans:{job_id}"


def plan(plan_id: str) -> str:
    """The plan as submitted (JSON)."""
    return f"{PREFIX}:plan:{plan_id}"


OPEN_PLANS = f"{PREFIX}:plans:open"  # set of plan ids not yet complete
ALL_PLANS = f"{PREFIX}:plans:all"  # sorted set: plan id -> submit time
DURATIONS = f"{PREFIX}:durations"  # hash: "<kind>:<model>" -> seconds the last run took
CODE = f"{PREFIX}:code"  # hash: code version -> {"wheel", "sha256"} of the wheel `submit` shipped
