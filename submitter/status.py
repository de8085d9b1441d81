"""`factory status`, `factory cancel`, `factory retry` and `factory recover`."""

from __future__ import annotations

import argparse
import json
import sys
import time

from submitter.common import add_connection_args, connection_of, home_of, table

COLUMNS = [
    ("job", "id"),
    ("kind", "kind"),
    ("model", "model"),
    ("status", "status"),
    ("att", "attempt"),
    ("worker", "worker"),
    ("step", "progress"),
    ("ckpt", "checkpoint_step"),
    ("ckpt age s", "checkpoint_age_s"),
    ("resumed", "resumed_from"),
    ("lease age s", "lease_age_s"),
    ("error", "error"),
]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("status", help="one row per job of a plan (runs the reaper too)")
    p.add_argument("--plan", help="plan id (default: the open plans, else the latest)")
    p.add_argument("--json", action="store_true", help="one JSON object with a `jobs` list")
    p.add_argument("--watch", action="store_true", help="refresh until every job has ended")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes")
    add_connection_args(p)
    p.set_defaults(handler=run_status)

    for name, help_ in (
        ("cancel", "cancel a job or every unfinished job of a plan"),
        ("retry", "requeue failed or canceled jobs (they resume from their checkpoints)"),
    ):
        q = subparsers.add_parser(name, help=help_)
        target = q.add_mutually_exclusive_group(required=True)
        target.add_argument("--plan", help="plan id")
        target.add_argument("--job", help="job id")
        add_connection_args(q)
        q.set_defaults(handler=run_cancel if name == "cancel" else run_retry)

    r = subparsers.add_parser(
        "recover", help="rebuild a plan's queue state from the ledger after Redis lost it"
    )
    r.add_argument("--plan", required=True, help="plan id")
    add_connection_args(r)
    r.set_defaults(handler=run_recover)


def print_rows(rows: list[dict]) -> None:
    for row in rows:
        row["id"] = row["id"][:44]
        row["progress"] = f"{row['step']}/{row['total']}" if row.get("total") else None
        if row.get("error"):
            row["error"] = row["error"][:60]
    print(table(rows, COLUMNS))


def _plan_ids(connection, args) -> list[str]:
    from jobs import keys

    if args.plan:
        return [args.plan]
    open_ids = sorted(p.decode() for p in connection.smembers(keys.OPEN_PLANS))
    latest = [p.decode() for p in connection.zrange(keys.ALL_PLANS, -1, -1)]
    return open_ids or latest


def _snapshot(connection, args) -> dict:
    from jobs.errors import RunnerError
    from jobs.lease import Leases
    from jobs.plan import load_plan
    from jobs.reaper import Reaper
    from jobs.status import job_rows

    Reaper(connection, Leases(connection), ["mlf"]).reap_once()
    plans = []
    for plan_id in _plan_ids(connection, args):
        plan = load_plan(connection, plan_id)
        if plan is None:
            raise RunnerError(
                f"plan {plan_id} is not in Redis; fix: check the id, or run "
                f"`factory recover --plan {plan_id}` if Redis lost it"
            )
        rows = job_rows(connection, plan)
        plans.append({"plan_id": plan_id, "jobs": rows} | _searches(connection, plan, rows))
    return {"plans": plans, "jobs": [j for p in plans for j in p["jobs"]]}


SEARCH_COLUMNS = [
    ("study", "study"),
    ("model", "model"),
    ("trials", "trials"),
    ("done", "done"),
    ("running", "running"),
    ("pruned", "pruned"),
    ("failed", "failed"),
    ("skipped", "skipped"),
    ("waiting", "waiting"),
    ("metric", "metric"),
    ("best", "best_shown"),
    ("best trial", "best_trial"),
]


def _searches(connection, plan, rows: list[dict]) -> dict:
    """{"searches": one row per study} for a plan with a search (`submit --tune`), else {}."""
    from jobs.status import search_rows

    found = search_rows(connection, plan, rows)
    return {"searches": found} if found else {}


def print_searches(searches: list[dict]) -> None:
    """The search progress of a plan: trials per state and the best validation value."""
    if not searches:
        return
    shown = [
        s | {"best_shown": None if s["best"] is None else f"{s['best']:.5f}"} for s in searches
    ]
    print("\nsearch (validation metric; `factory results` lists the best trials)")
    print(table(shown, SEARCH_COLUMNS))


ENDED = {"finished", "failed", "canceled", "stopped"}


def run_status(args: argparse.Namespace) -> int:
    connection = connection_of(args)
    while True:
        snap = _snapshot(connection, args)
        if args.json:
            print(json.dumps(snap))
        else:
            if args.watch and sys.stdout.isatty():
                print("\033[2J\033[H", end="")
            for plan in snap["plans"]:
                print(f"plan {plan['plan_id']}  ({time.strftime('%H:%M:%S')})")
                print_rows(plan["jobs"])
                print_searches(plan.get("searches", []))
            if not snap["plans"]:
                print("no plans yet: submit one with `submit --models ... --symbol ...`")
        done = all(j["status"] in ENDED for j in snap["jobs"])
        if not args.watch or done:
            return 0
        sys.stdout.flush()
        time.sleep(args.interval)


def _targets(connection, args) -> list[str]:
    from jobs.errors import RunnerError
    from jobs.plan import load_plan

    if args.job:
        return [args.job]
    plan = load_plan(connection, args.plan)
    if plan is None:
        raise RunnerError(f"plan {args.plan} is not in Redis")
    return [e.job_id for e in plan.entries]


def run_cancel(args: argparse.Namespace) -> int:
    from jobs.control import cancel_job

    connection = connection_of(args)
    done = [j for j in _targets(connection, args) if cancel_job(connection, j, "canceled by user")]
    print(f"canceled {len(done)} job(s)")
    return 0


def run_retry(args: argparse.Namespace) -> int:
    from jobs import keys
    from jobs.control import requeue_job
    from jobs.reaper import fetch

    connection = connection_of(args)
    count = 0
    for job_id in _targets(connection, args):
        job = fetch(connection, job_id)
        if job is None or job.get_status() not in ("failed", "canceled", "stopped"):
            continue
        connection.delete(keys.failures(job_id))
        connection.hset(
            keys.state(job_id), mapping={"status": "retried", "error": "", "final_error": ""}
        )
        requeue_job(connection, job_id)
        count += 1
    print(f"requeued {count} job(s); they resume from their last checkpoints")
    return 0


def run_recover(args: argparse.Namespace) -> int:
    from jobs.recover import recover_plan

    out = recover_plan(connection_of(args), home_of(args), args.plan)
    print(
        f"plan {out['plan_id']}: {len(out['restored'])} job(s) re-enqueued, "
        f"{len(out['present'])} still in Redis"
    )
    return 0
