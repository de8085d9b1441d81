"""One row per job of a plan: what `factory status` shows (and `--json` prints)."""

from __future__ import annotations

import json
import time
from typing import Any

import redis
from rq.job import Job
from rq.serializers import JSONSerializer

from jobs import keys
from jobs.plan import Plan

FIELDS = (
    "id",
    "kind",
    "model",
    "status",
    "attempt",
    "worker",
    "step",
    "total",
    "checkpoint_step",
    "checkpoint_age_s",
    "resumed_from",
    "lease_age_s",
    "error",
)


def _int(value: bytes | None) -> int | None:
    try:
        return int(float(value)) if value not in (None, b"") else None
    except ValueError:
        return None


def _age(value: bytes | None, now: float) -> float | None:
    return round(now - float(value), 1) if value not in (None, b"") else None


def job_rows(connection: redis.Redis, plan: Plan) -> list[dict[str, Any]]:
    now = time.time()
    ids = [e.job_id for e in plan.entries]
    jobs = dict(
        zip(ids, Job.fetch_many(ids, connection=connection, serializer=JSONSerializer), strict=True)
    )
    pipe = connection.pipeline()
    for job_id in ids:
        pipe.hgetall(keys.state(job_id))
        pipe.get(keys.lease(job_id))
        pipe.pttl(keys.lease(job_id))
    replies = pipe.execute()
    rows = []
    for i, entry in enumerate(plan.entries):
        state = {k.decode(): v for k, v in replies[3 * i].items()}
        lease, pttl_ms = replies[3 * i + 1], replies[3 * i + 2]
        row = _row(entry, jobs[entry.job_id], state, lease, now)
        if row["status"] == "started" and _renewal_overdue(row["lease_age_s"], pttl_ms):
            row["status"] = "lease expiring"  # its worker stopped renewing: dead or cut off
        rows.append(row)
    return rows


def _renewal_overdue(age_s: float | None, pttl_ms: int | None) -> bool:
    """Whether a live lease missed its renewals: a worker renews every TTL/3, so a lease
    not renewed for half its TTL (the age plus what is left of it) belongs to a worker
    that died or lost Redis, and expires within the rest."""
    if age_s is None or pttl_ms is None or pttl_ms < 0:
        return False
    return age_s > (age_s + pttl_ms / 1000) / 2


def _status(entry, job, state: dict) -> str:
    if state.get("status") == b"canceled":
        return "canceled"
    if job is None:
        return "missing"
    status = job.get_status(refresh=False)
    return str(status.value if hasattr(status, "value") else status)


def _row(entry, job, state: dict, lease: bytes | None, now: float) -> dict[str, Any]:
    live = lease is not None
    return {
        "id": entry.job_id,
        "kind": entry.spec.kind,
        "model": entry.spec.model or ("+".join(entry.spec.members) or ""),
        "status": _status(entry, job, state),
        "attempt": _int(state.get("attempt")),
        "worker": (state.get("worker", b"").decode() or None) if live else None,
        "step": _int(state.get("step")),
        "total": _int(state.get("total")),
        "checkpoint_step": _int(state.get("checkpoint_step")),
        "checkpoint_age_s": _age(state.get("checkpoint_at"), now),
        "resumed_from": _int(state.get("resumed_from")),
        "lease_age_s": _age(state.get("renewed_at"), now) if live else None,
        "error": (state.get("error") or b"").decode() or None,
    }


def result_of(connection: redis.Redis, job_id: str) -> dict[str, Any] | None:
    raw = connection.get(keys.result(job_id))
    return json.loads(raw) if raw else None


SEARCH_FIELDS = ("study", "model", "metric", "trials", "done", "running", "pruned", "failed")
SEARCH_FIELDS += ("skipped", "waiting", "best", "best_trial")


def search_rows(
    connection: redis.Redis, plan: Plan, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One row per study of the plan (`submit --tune`): its trials done (complete),
    running, pruned, failed, skipped (time budget), waiting, and the best value so far,
    from the trial jobs' statuses (`rows`, of job_rows) and final results (one MGET):
    the same records the study is told (jobs.search)."""
    from jobs.search import STUDY, direction_of

    trials = [e for e in plan.entries if e.spec.kind == "trial"]
    if not trials:
        return []
    status = {r["id"]: r["status"] for r in rows}
    raws = connection.mget([keys.result(e.job_id) for e in trials])
    out: dict[str, dict[str, Any]] = {}
    for entry, raw in zip(trials, raws, strict=True):
        study = entry.spec.params.get(STUDY, "")
        metric = entry.spec.params.get("search.metric", "log_loss")
        row = out.setdefault(study, dict.fromkeys(SEARCH_FIELDS, 0) | _search_head(entry, metric))
        row["trials"] += 1
        result = json.loads(raw) if raw else None
        if result is None:
            started = status.get(entry.job_id) in ("started", "lease expiring")
            row["running" if started else "waiting"] += 1
            continue
        state = result.get("state")
        row[{"complete": "done"}.get(state, state) if state in _ENDED else "failed"] += 1
        value = result.get("value")
        if state == "complete" and isinstance(value, (int, float)):
            best, minimize = row["best"], direction_of(metric) == "minimize"
            if best is None or (value < best if minimize else value > best):
                row["best"], row["best_trial"] = value, result.get("trial_number")
    return list(out.values())


_ENDED = ("complete", "pruned", "failed", "skipped")


def _search_head(entry, metric: str) -> dict[str, Any]:
    from jobs.search import STUDY

    return {
        "study": entry.spec.params.get(STUDY, ""),
        "model": entry.spec.model,
        "metric": metric,
        "best": None,
        "best_trial": None,
    }
