"""`factory dashboard`: rq-dashboard (the stock RQ web view) set up for our Redis.

rq-dashboard is RQ's own web UI; this command starts it on our queue with the JSON
serializer (our jobs are never pickled), on the same Redis as every other command
(`--redis-url`, `REDIS_URL` or the embedded Redis of `--home`, whose password the user
never sees). rq-dashboard 0.9 lists workers without the serializer it was given, so its
workers page fails while one of ours is busy; the command hands it a Worker class that
passes it. Plain `rq-dashboard --redis-url URL --json` works too, but for that page.
"""

from __future__ import annotations

import argparse
import os
from urllib.parse import quote

from submitter.common import add_connection_args, home_of

DEFAULT_PORT = 9181  # rq-dashboard's own default


class DashboardError(Exception):
    user_facing = True


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "dashboard", help="the stock rq-dashboard web view of our queue, workers and jobs"
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="default %(default)s")
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (%(default)s)")
    add_connection_args(p)
    p.set_defaults(handler=run_dashboard)


def _with_ca(url: str) -> str:
    """rq-dashboard opens its own connections from the URL: carry REDIS_CA_CERT into it."""
    ca = os.environ.get("REDIS_CA_CERT", "").strip()
    if url.startswith("rediss://") and ca and "ssl_ca_certs=" not in url:
        url += ("&" if "?" in url else "?") + "ssl_ca_certs=" + quote(ca)
    return url


def build_app(url: str):
    """The rq-dashboard Flask app for `url`, with the JSON serializer everywhere."""
    try:
        import rq_dashboard.web as web
        from rq_dashboard.cli import make_flask_app
    except ImportError:
        raise DashboardError(
            "rq-dashboard is not installed; fix: pip install -e '.[dashboard]' "
            "(or pip install rq-dashboard)"
        ) from None
    from rq import Worker
    from rq.serializers import JSONSerializer

    class JSONWorker(Worker):
        @classmethod
        def all(cls, *args, **kwargs):
            kwargs.setdefault("serializer", JSONSerializer)
            return super().all(*args, **kwargs)

    web.Worker = JSONWorker
    web.config.serializer = JSONSerializer
    app = make_flask_app(None, None, None, "")
    app.config["RQ_DASHBOARD_REDIS_URL"] = _with_ca(url)
    web.setup_rq_connection(app)
    return app


def run_dashboard(args: argparse.Namespace) -> int:
    from jobs.connection import connect, resolve_redis_url
    from jobs.settings import redacted_url

    home = home_of(args)
    url, _ = resolve_redis_url(args.redis_url, home)
    connect(url, home)  # a wrong URL or password: one clear line before the server starts
    app = build_app(url)
    print(
        f"rq-dashboard for {redacted_url(url)} on http://{args.bind}:{args.port} (Ctrl+C stops it)",
        flush=True,
    )
    app.run(host=args.bind, port=args.port)
    return 0
