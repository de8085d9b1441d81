"""`factory redis status|stop`: the embedded Redis that local commands start under --home.

Without REDIS_URL, `factory demo` and every other local command share one embedded
redis-server per storage root (jobs/embedded.py). It keeps running after they exit,
so that `factory status` still works; `factory redis stop` shuts it down (its AOF keeps
the data, and the next local command starts it again).
"""

from __future__ import annotations

import argparse
import json

from submitter.common import add_home_arg, home_of


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "redis", help="status or stop of the embedded Redis under --home (no REDIS_URL)"
    )
    p.add_argument("action", choices=("status", "stop"), help="what to do")
    add_home_arg(p)
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(handler=run_redis)


def run_redis(args: argparse.Namespace) -> int:
    from jobs.embedded import embedded_status, stop_embedded

    home = home_of(args)
    before = embedded_status(home)
    stopped = stop_embedded(home) if args.action == "stop" else False
    out = {"home": str(home), "embedded": before, "stopped": stopped}
    if args.json:
        print(json.dumps(out))
    elif before is None:
        print(f"no embedded Redis under {home} (none was started there)")
    elif args.action == "stop":
        verb = "stopped" if stopped else "was not running:"
        print(f"{verb} embedded Redis on 127.0.0.1:{before['port']} ({before['folder']})")
    else:
        state = "running" if before["running"] else "not running"
        pid = f", pid {before['pid']}" if before["pid"] else ""
        print(f"embedded Redis {state} on 127.0.0.1:{before['port']}{pid} ({before['folder']})")
    return 0
