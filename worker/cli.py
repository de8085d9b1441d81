"""`factory worker`: run a leased worker in this terminal (Ctrl+C hands the job back)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEFAULT_PREEMPTION_BUDGET = 20  # jobs.reaper's (not imported here: `factory --help` is fast)
DEFAULT_VISIBILITY_WAIT_S = 180.0  # jobs.attempt_env's (a test checks they agree)
DURABILITY_CHECKS = ("none", "drive")  # jobs.durable.CHECKS (likewise)
DEFAULT_LEASE_TTL_S = 36.0  # jobs.lease's (likewise)
URL_OPTION = "--redis-url"
URL_HELP = (
    "Redis URL (default $REDIS_URL, else the embedded Redis); prefer REDIS_URL: a URL with "
    "a password given here is moved into the environment (ps shows command lines to all)"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "worker",
        help="run a worker that takes jobs from the queue",
        description="Run a worker with leases: a job whose worker dies is resumed from its "
        "last checkpoint by another worker. Ctrl+C (or SIGTERM) checkpoints and hands the "
        "job back.",
    )
    p.add_argument(URL_OPTION, help=URL_HELP)
    p.add_argument("--home", help="storage root (default $FACTORY_HOME, else ./factory_home)")
    p.add_argument("--name", help="worker name (default host-pid-random)")
    p.add_argument("--burst", action="store_true", help="quit when the queues are empty")
    p.add_argument("--queues", nargs="+", help="queues to work (default: mlf)")
    p.add_argument(
        "--lease-ttl",
        type=float,
        default=DEFAULT_LEASE_TTL_S,
        help="lease TTL in seconds, renewed at 2/3 of it (%(default)s)",
    )
    p.add_argument(
        "--reaper-interval",
        type=float,
        help="most seconds between reaper passes (default: lease TTL / 2; passes are also "
        "timed to the soonest lease expiry)",
    )
    _session_options(p)
    _storage_options(p)
    p.add_argument(
        "--install",
        choices=("auto", "never"),
        default="auto",
        help="a job submitted with other code: 'auto' installs the plan's wheel from "
        "<home>/code/ for it (default), 'never' leaves it queued for another worker",
    )
    p.add_argument(
        "--reconcile-interval",
        type=float,
        default=900.0,
        metavar="S",
        help="seconds between the fleet's reconciler passes, which put back any job left "
        "in no well-formed state, e.g. by a worker killed between winning a reap and "
        "requeueing the job (900; each pass costs Redis commands)",
    )
    p.add_argument("--max-jobs", type=int, help="quit after this many jobs")
    p.add_argument("--log-level", default="INFO")
    p.set_defaults(handler=run)


def _storage_options(p: argparse.ArgumentParser) -> None:
    """Free space, the local data cache, and how late and how surely the storage syncs."""
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
        "--storage-visibility-wait",
        type=float,
        default=DEFAULT_VISIBILITY_WAIT_S,
        metavar="S",
        help="seconds a job waits for a file another job wrote (a checkpoint, a fold's or "
        "a model's output) to appear in the storage and verify, as Drive shows another "
        "session's writes late (%(default)s); then it falls back (see README)",
    )
    p.add_argument(
        "--durability",
        choices=DURABILITY_CHECKS,
        default="none",
        help="before publishing a checkpoint or an output, wait (up to "
        "--storage-visibility-wait) until the platform confirms the copy reached durable "
        "storage: 'drive' asks the Drive API (Colab, after google.colab.auth"
        ".authenticate_user()) for its MD5; 'none' (default) cannot tell",
    )


def _session_options(p: argparse.ArgumentParser) -> None:
    """The session budget, the hand-back before its end, and the preemption budget."""
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
        "--preemption-budget",
        type=int,
        default=DEFAULT_PREEMPTION_BUDGET,
        metavar="N",
        help="fail a job whose worker died N+1 times in a row with no new checkpoint in "
        "between (a guard against a job that kills its worker; preemptions of a job that "
        f"progressed count once) ({DEFAULT_PREEMPTION_BUDGET})",
    )


def _session_hours_help() -> str:
    """The --max-session-hours help, naming the measure found on this machine now."""
    from worker.session import find_session_start

    found = find_session_start().detail.replace("%", "%%")
    return (
        "session budget in hours, counted from the start of the runtime's oldest Jupyter "
        f"process, else from machine boot (on this machine now: {found}; default 11.5, Colab)"
    )


def _is_url_option(arg: str) -> bool:
    """`--redis-url`, `--redis-url=URL` or an abbreviation argparse accepts (`--redis`)."""
    name = arg.split("=", 1)[0]
    return len(name) >= len("--red") and URL_OPTION.startswith(name)


def scrubbed_argv(argv: list[str]) -> list[str]:
    """`argv` without any --redis-url option and its value."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif _is_url_option(arg):
            skip = "=" not in arg
        else:
            out.append(arg)
    return out


def move_url_to_env(url: str) -> None:
    """A --redis-url with a password on this process's command line (which `ps` shows
    every user, for the worker and each work horse it forks) is moved into $REDIS_URL:
    the process runs again (same pid, os.execve) without it. Called in-process (a
    notebook), there is nothing to move."""
    from jobs.settings import holds_secret

    argv = list(getattr(sys, "orig_argv", sys.argv))
    if not holds_secret(url) or not any(url in arg for arg in argv[1:]):
        return
    print(
        "factory worker: the Redis URL was moved from the command line into REDIS_URL so "
        "that ps does not show it (set REDIS_URL instead of --redis-url)",
        file=sys.stderr,
        flush=True,
    )
    os.execve(
        sys.executable, [sys.executable, *scrubbed_argv(argv[1:])], os.environ | {"REDIS_URL": url}
    )


def run(args: argparse.Namespace) -> int:
    from worker.run import run_worker

    if args.redis_url:
        move_url_to_env(args.redis_url)

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
        preemption_budget=args.preemption_budget,
        storage_visibility_wait_s=args.storage_visibility_wait,
        reconcile_interval_s=args.reconcile_interval,
        durability=args.durability,
    )
    return 0
