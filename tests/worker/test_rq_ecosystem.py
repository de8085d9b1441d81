"""Our queue, workers and jobs show up in RQ's stock tools: `rq info` (with -S json)
and rq-dashboard (with --json), each run as its own process against a real cluster."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest

from tests.redis_server import free_port
from tests.runner import job_result, wait_for


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


def test_rq_dashboard_shows_our_queue_workers_and_jobs(cluster, tmp_path):
    dashboard = shutil.which("rq-dashboard")
    if dashboard is None:
        pytest.skip("rq-dashboard is not installed (pip install -e '.[dev]' installs it)")
    plan = cluster.submit(params=("profile=tiny",))
    cluster.worker("dashboard-worker")
    data_job = next(j["id"] for j in plan["jobs"] if j["kind"] == "data")
    wait_for(lambda: job_result(cluster.client, data_job), 120, "the data job")
    port = free_port()
    log = open(tmp_path / "dashboard.log", "wb")  # noqa: SIM115 - owned by the process
    proc = subprocess.Popen(
        [dashboard, "--redis-url", cluster.url, "--json", "--bind", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/0/data"
    try:
        queues = wait_for(lambda: _get_json(f"{base}/queues.json"), 60, "rq-dashboard to answer")
        assert "mlf" in [q["name"] for q in queues["queues"]]
        workers = _get_json(f"{base}/workers.json")
        assert "dashboard-worker" in [w["name"] for w in workers["workers"]]
        finished = _get_json(f"{base}/jobs/mlf/finished/50/asc/1.json")
        assert data_job in [j["id"] for j in finished["jobs"]]
        job = _get_json(f"{base}/job/{data_job}.json")  # decoded with the JSON serializer
        assert job["id"] == data_job and job["status"] == "finished"
        assert "run_job" in job["description"] and job["result"]["attempt"] == 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
