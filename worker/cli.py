"""`factory worker`: run a leased worker in this terminal (Ctrl+C hands the job back)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "worker",
        help="run a worker that takes jobs from the queue",
        description="Run a worker with leases: a job whose worker dies is resumed from its "
        "last checkpoint by another worker. Ctrl+C (or SIGTERM) checkpoints and hands the "
        "job back.",
    )
    p.add_argument("--redis-url", help="Redis URL (default $REDIS_URL, else the embedded Redis)")
    p.add_argument("--home", help="storage root (default $FACTORY_HOME, else ./factory_home)")
    p.add_argument("--name", help="worker name (default host-pid-random)")
    p.add_argument("--burst", action="store_true", help="quit when the queues are empty")
    p.add_argument("--queues", nargs="+", help="queues to work (default: mlf)")
    p.add_argument("--lease-ttl", type=float, default=30.0, help="lease TTL in seconds (30)")
    p.add_argument(
        "--reaper-interval",
        type=float,
        help="most seconds between reaper passes (default: lease TTL / 2; passes are also "
        "timed to the soonest lease expiry)",
    )
    p.add_argument(
        "--max-session-hours",
        type=float,
        default=11.5,
        help=_session_hours_help(),
    )
    p.add_argument(
        "--session-ends-in",
        type=float,
        metavar="SECONDS",
        help="the session ends this many seconds from now (overrides the session's start)",
    )
    p.add_argument(
        "--handback-margin",
        type=float,
        default=180.0,
        metavar="SECONDS",
        help="checkpoint and hand the job back this long before the end (180)",
    )
    p.add_argument(
        "--min-free-mb",
        type=float,
        default=256.0,
        help="refuse to start when the storage root has less free space (256)",
    )
    p.add_argument(
        "--data-cache",
        type=Path,
        help="local folder datasets are copied to once per session (default: <tmp>/mlf-cache)",
    )
    p.add_argument(
        "--install",
        choices=("auto", "never"),
        default="auto",
        help="a job submitted with other code: 'auto' installs the plan's wheel from "
        "<home>/code/ for it (default), 'never' leaves it queued for another worker",
    )
    p.add_argument("--max-jobs", type=int, help="quit after this many jobs")
    p.add_argument("--log-level", default="INFO")
    p.set_defaults(handler=run)


def _session_hours_help() -> str:
    """The --max-session-hours help, naming the measure found on this machine now."""
    from worker.session import find_session_start

    found = find_session_start().detail.replace("%", "%%")
    return (
        "session budget in hours, counted from the start of the runtime's oldest Jupyter "
        f"process, else from machine boot (on this machine now: {found}; default 11.5, Colab)"
    )


def run(args: argparse.Namespace) -> int:
    from worker.run import run_worker

    run_worker(
        redis_url=args.redis_url,
        home=args.home,
        name=args.name,
        burst=args.burst,
        queues=args.queues,
        lease_ttl_s=args.lease_ttl,
        reaper_interval_s=args.reaper_interval,
        max_jobs=args.max_jobs,
        max_session_hours=args.max_session_hours,
        session_ends_in_s=args.session_ends_in,
        handback_margin_s=args.handback_margin,
        min_free_mb=args.min_free_mb,
        data_cache=args.data_cache,
        install=args.install,
        log_level=args.log_level,
    )
    return 0
