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


def trial(job_id: str) -> str:
    """Hash {number, params, attempt}: the study trial a trial job asked for, written once
    (fenced on the lease) so that a resumed trial never asks again (jobs.trial)."""
    return f"{PREFIX}:trial:{job_id}"


def study_journal(study: str) -> str:
    """Prefix of a study's Optuna journal: `<prefix>:log_number`, `<prefix>:log:<n>`
    (the layout of Optuna's JournalRedisBackend; jobs.search)."""
    return f"{PREFIX}:optuna:{study}"


def study_meta(study: str) -> str:
    """Hash: started_at (the search's clock, for --tune-hours) and best (JSON, pinned once
    by the first job that trains the best configuration)."""
    return f"{PREFIX}:study:{study}"


OPEN_PLANS = f"{PREFIX}:plans:open"  # set of plan ids not yet complete
ALL_PLANS = f"{PREFIX}:plans:all"  # sorted set: plan id -> submit time
DURATIONS = f"{PREFIX}:durations"  # hash: "<kind>:<model>" -> seconds the last run took
# who scanned for dead leases last, with a TTL until the next pass is due fleet-wide
# (jobs.reaper): while it lives, no worker scans again
REAPER_MARK = f"{PREFIX}:reaper:mark"
CODE = f"{PREFIX}:code"  # hash: code version -> {"wheel", "sha256"} of the wheel `submit` shipped
