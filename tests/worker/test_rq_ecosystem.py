"""Our queue, workers and jobs show up in RQ's stock tools: `rq info` (with -S json)
and rq-dashboard (with --json), each run as its own process against a real cluster."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest

from tests.conftest import REPO_ROOT
from tests.redis_server import free_port
from tests.runner import factory_cmd, job_result, job_state, run_factory, wait_for


def test_rq_info_lists_our_queue_and_worker(cluster):
    rq = shutil.which("rq")
    if rq is None:
        pytest.skip("the rq command-line tool is not on PATH")
    cluster.submit(params=("profile=tiny",))
    cluster.worker("visible-worker")

    def info() -> str:
        out = subprocess.run(
            [rq, "info", "-u", cluster.url, "-S", "json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return out.stdout if "visible-worker" in out.stdout else ""

    text = wait_for(info, 60, "rq info to show the worker")
    assert "mlf" in text


def _get_json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return json.loads(reply.read())
    except (urllib.error.URLError, ConnectionError, ValueError):
        return None


def test_factory_dashboard_shows_our_queue_workers_and_jobs(cluster, tmp_path):
    """`factory dashboard` serves the stock rq-dashboard: our queue, a busy worker with
    its current job, and a finished job with its result, all read as JSON."""
    pytest.importorskip("rq_dashboard", reason="pip install -e '.[dev]' installs it")
    quick = cluster.submit(params=("profile=tiny",))["jobs"][0]["id"]
    slow = cluster.submit()["jobs"][0]["id"]  # queued behind it: keeps the worker busy
    cluster.worker("dashboard-worker")
    wait_for(lambda: job_result(cluster.client, quick), 120, "the quick job")
    wait_for(lambda: job_state(cluster.client, slow).get("status") == "started", 60, "slow")
    port = free_port()
    log = open(tmp_path / "dashboard.log", "wb")  # noqa: SIM115 - owned by the process
    proc = subprocess.Popen(
        factory_cmd("dashboard", "--redis-url", cluster.url, "--port", str(port)),
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/0/data"

    def log_tail() -> str:
        return (tmp_path / "dashboard.log").read_text(errors="replace")[-3000:]

    try:
        queues = wait_for(lambda: _get_json(f"{base}/queues.json"), 60, "the dashboard")
        assert "mlf" in [q["name"] for q in queues["queues"]]
        workers = _get_json(f"{base}/workers.json")
        assert workers is not None, log_tail()
        mine = next(w for w in workers["workers"] if w["name"] == "dashboard-worker")
        assert mine["current_job"]["job_id"] == slow  # a busy worker's job, read as JSON
        finished = _get_json(f"{base}/jobs/mlf/finished/50/asc/1.json")
        assert quick in [j["id"] for j in finished["jobs"]]
        job = _get_json(f"{base}/job/{quick}.json")
        assert job["id"] == quick and job["status"] == "finished", log_tail()
        assert job["description"] == "train xgboost" and job["result"]["attempt"] == 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_dashboard_without_redis_says_so(tmp_path):
    port = free_port()
    out = run_factory("dashboard", "--redis-url", f"redis://127.0.0.1:{port}/0")
    assert out.returncode == 2 and "error:" in out.stderr and "Redis" in out.stderr
