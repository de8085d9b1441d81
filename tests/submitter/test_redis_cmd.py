"""`factory redis status|stop` on the embedded Redis of a home (a real redis-server)."""

from __future__ import annotations

import json

from jobs.connection import connect
from jobs.embedded import embedded_url, stop_embedded
from tests.runner import run_factory


def test_status_and_stop_of_the_embedded_redis(tmp_path):
    home = tmp_path / "home"
    none = run_factory("redis", "status", "--home", str(home))
    assert none.returncode == 0 and "no embedded Redis" in none.stdout
    url = embedded_url(home)
    try:
        connect(url, home).set("kept", "1")
        status = run_factory("redis", "status", "--home", str(home), "--json")
        assert status.returncode == 0, status.stderr
        info = json.loads(status.stdout)["embedded"]
        assert info["running"] and info["pid"] and str(info["port"]) in url
        password = url.split(":")[2].split("@")[0]
        assert password not in status.stdout  # never printed
        stopped = run_factory("redis", "stop", "--home", str(home))
        assert stopped.returncode == 0 and "stopped embedded Redis" in stopped.stdout
        again = run_factory("redis", "stop", "--home", str(home))
        assert "was not running" in again.stdout
        assert connect(embedded_url(home), home).get("kept") == b"1"  # AOF kept the data
    finally:
        stop_embedded(home)
