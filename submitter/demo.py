"""`factory demo`: the whole product on one machine, in a few minutes.

Starts (or reuses) the embedded Redis, generates bars (or takes --raw), starts
worker processes, submits the plan, shows live status, optionally kills a worker
mid-training (--chaos) to show the job resuming elsewhere, and ends with the
leaderboard and where the results are.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from submitter.common import add_connection_args, home_of, table

DEMO_LEASE_TTL_S = 10.0  # short leases so that --chaos recovers in seconds
ENDED = {"finished", "failed", "canceled", "stopped"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="run the whole thing locally: workers, plan, status", description=__doc__
    )
    p.add_argument("--workers", type=int, default=2, help="local worker processes (2)")
    p.add_argument("--models", default="xgboost,lstm,patchtst", help="models to train")
    p.add_argument(
        "--chaos",
        action="store_true",
        help="kill a worker mid-training and watch the job resume elsewhere",
    )
    p.add_argument("--raw", type=Path, help="your bars (default: synthetic MES bars)")
    p.add_argument("--symbol", default="MES", help="symbol of the bars (%(default)s)")
    p.add_argument("--tz", default="UTC", help="timezone of --raw's naive timestamps")
    p.add_argument("--days", type=int, default=10, help="sessions of synthetic bars (10)")
    p.add_argument("--horizon", type=int, default=10, help="label horizon in bars (%(default)s)")
    p.add_argument("--folds", type=int, default=3, help="CV folds (%(default)s)")
    p.add_argument(
        "--param", action="append", default=None, help="[MODEL.]KEY=VALUE (default: profile=tiny)"
    )
    p.add_argument(
        "--timeout", type=float, default=900, help="give up after this many seconds (%(default)s)"
    )
    add_connection_args(p)
    p.set_defaults(handler=run_demo)


def _start_workers(n: int, url: str, home: Path, first: int = 0) -> list[subprocess.Popen]:
    env = dict(os.environ, REDIS_URL=url, PYTHONUNBUFFERED="1")  # the URL never on a cmdline
    procs = []
    for i in range(first, first + n):
        log = open(home / f"demo-worker-{i}.log", "ab")  # noqa: SIM115 - owned by the process
        cmd = [
            sys.executable,
            "-m",
            "submitter.cli",
            "worker",
            "--home",
            str(home),
            "--name",
            f"demo-w{i}",
            "--lease-ttl",
            str(DEMO_LEASE_TTL_S),
        ]
        procs.append(
            subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )
    return procs


def _kill_tree(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    import psutil

    try:
        pids = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue


def _submit(args, home: Path, connection):
    from jobs.demo import synthetic_raw
    from jobs.plan import enqueue_plan
    from jobs.submission import Submission, plan_for

    raw = args.raw or synthetic_raw(home, args.symbol, args.days)
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    sub = Submission(
        models=models,
        symbol=args.symbol,
        raw=raw,
        tz=args.tz,
        horizon=args.horizon,
        folds=args.folds,
        params=tuple(args.param or ["profile=tiny"]),
        home=home,
    )
    plan = plan_for(sub)
    created = enqueue_plan(connection, plan, home)
    print(
        f"plan {plan.plan_id} {'submitted' if created else 'already submitted'}: "
        f"{len(plan.entries)} jobs, {len(models)} models, {args.folds} folds"
    )
    return plan


class Chaos:
    """Kills the worker of the first train job that has checkpointed; then watches it resume."""

    def __init__(self) -> None:
        self.victim: dict | None = None
        self.reported = False

    def step(self, rows: list[dict], workers: list[subprocess.Popen], start_more) -> None:
        if self.victim is None:
            row = next(
                (
                    r
                    for r in rows
                    if r["kind"] == "train"
                    and r["status"] == "started"
                    and (r["checkpoint_step"] or 0) > 0
                    and r["worker"]
                ),
                None,
            )
            if row is None:
                return
            index = int(row["worker"].removeprefix("demo-w"))
            if index >= len(workers):
                return
            _kill_tree(workers[index])
            self.victim = row
            print(
                f"\nchaos: SIGKILL worker {row['worker']} while it trains {row['model']} "
                f"(checkpoint at step {row['checkpoint_step']})\n"
            )
            workers.extend(start_more(1, len(workers)))
            return
        row = next(r for r in rows if r["id"] == self.victim["id"])
        if (
            not self.reported
            and (row["attempt"] or 0) > self.victim["attempt"]
            and row["resumed_from"] is not None
        ):
            print(
                f"\nchaos: {row['model']} resumed on {row['worker']} from step "
                f"{row['resumed_from']} (attempt {row['attempt']})\n"
            )
            self.reported = True


def _show(rows: list[dict]) -> None:
    from submitter.status import COLUMNS

    for row in rows:
        row["progress"] = f"{row['step']}/{row['total']}" if row.get("total") else None
        row["id"] = row["id"][:32]
    print(time.strftime("%H:%M:%S"))
    print(table(rows, [c for c in COLUMNS if c[1] != "error"]))
    sys.stdout.flush()


def run_demo(args: argparse.Namespace) -> int:
    from jobs.connection import connect, resolve_redis_url
    from jobs.status import job_rows
    from jobs.storage import Layout

    home = home_of(args)
    home.mkdir(parents=True, exist_ok=True)
    url, embedded = resolve_redis_url(args.redis_url, home)
    connection = connect(url, home)
    where = f"embedded, under {Layout(home).redis_dir()}" if embedded else "REDIS_URL"
    print(f"Redis: {where}")
    plan = _submit(args, home, connection)
    workers = _start_workers(args.workers, url, home)
    chaos = Chaos() if args.chaos else None
    deadline = time.monotonic() + args.timeout
    try:
        rows = job_rows(connection, plan)
        while not all(r["status"] in ENDED for r in rows):
            if time.monotonic() > deadline:
                print(f"demo: gave up after {args.timeout:.0f} s", file=sys.stderr)
                return 1
            time.sleep(2.0)
            rows = job_rows(connection, plan)
            if chaos:
                chaos.step(rows, workers, lambda n, first: _start_workers(n, url, home, first))
            _show([dict(r) for r in rows])
    finally:
        for proc in workers:
            _kill_tree(proc, signal.SIGTERM)
    _summary(connection, plan, home)
    if embedded:
        print(
            f"the embedded Redis keeps running for that; stop it: factory redis stop --home {home}"
        )
    return 0 if all(r["status"] == "finished" for r in rows) else 1


def _summary(connection, plan, home: Path) -> None:
    from jobs.status import result_of
    from jobs.storage import Layout

    print("\nleaderboard (test period)")
    rows = []
    for entry in plan.entries:
        result = result_of(connection, entry.job_id)
        if not result or entry.spec.kind not in ("train", "ensemble"):
            continue
        test = (result.get("metrics") or {}).get("test", {})
        rows.append(
            {
                "model": entry.spec.model or "ensemble",
                "attempt": result.get("attempt"),
                "accuracy": _fmt(test.get("accuracy")),
                "macro_f1": _fmt(test.get("macro_f1")),
                "log_loss": _fmt(test.get("log_loss")),
                "bundle": result.get("bundle"),
            }
        )
    rows.sort(key=lambda r: float(r["log_loss"] or "inf"))
    print(
        table(
            rows,
            [
                ("model", "model"),
                ("attempt", "attempt"),
                ("accuracy", "accuracy"),
                ("macro F1", "macro_f1"),
                ("log loss", "log_loss"),
                ("bundle", "bundle"),
            ],
        )
    )
    layout = Layout(home)
    results = layout.results_dir(plan.plan_id)
    print(f"\nresults: {results}  models: {layout.models_root()}")
    print(f"again: factory status --plan {plan.plan_id} --home {home}")
    results.mkdir(parents=True, exist_ok=True)
    (results / "demo_leaderboard.json").write_text(json.dumps(rows))


def _fmt(value) -> str | None:
    return None if value is None else f"{value:.4f}"
