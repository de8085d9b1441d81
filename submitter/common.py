"""What every submitter command shares: --redis-url/--home, the connection, output."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

FIX_MARK = "; fix: "


def add_connection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--redis-url",
        help="Redis URL (default $REDIS_URL, else the embedded Redis "
        "of --home); rediss:// with a password works; never printed",
    )
    add_home_arg(p)


def add_home_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--home", help="storage root (default $FACTORY_HOME, else ./factory_home)")


def home_of(args: argparse.Namespace) -> Path:
    """The storage root of --home, chosen as every command chooses it (jobs.storage),
    once it is a folder this process can write (else one line naming it and the fix)."""
    from jobs.storage import ensure_writable, resolve_home

    return ensure_writable(resolve_home(args.home))


def error_line(exc: BaseException, as_json: bool = False) -> str:
    """What a command prints of a one-line error: `error: <message>`, or with --json one
    JSON object {"error": <problem>, "fix": <fix>} (for stdout)."""
    if not as_json:
        return f"error: {exc}"
    problem, mark, fix = str(exc).partition(FIX_MARK)
    return json.dumps({"error": problem, "fix": fix if mark else ""})


def connection_of(args: argparse.Namespace):
    from jobs.connection import connect

    return connect(args.redis_url, home_of(args))


def table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A plain text table of `rows` with (header, key) columns."""
    cells = [[h for h, _ in columns]]
    for row in rows:
        cells.append(["-" if row.get(k) is None else str(row.get(k)) for _, k in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )
