"""Untrusted input from Redis: crafted specs, malformed queue entries, secrets."""

from __future__ import annotations

import json
import subprocess
import time

import psutil
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from jobs.versioning import code_version
from tests.conftest import REPO_ROOT
from tests.redis_server import RedisServer
from tests.runner import factory_cmd, job_state, run_factory

CONFIG = {"symbol": "MES", "tick_size": 0.25, "tick_value_usd": 1.25, "tz": "UTC"}


def _files(root) -> set[str]:
    return {str(p) for p in root.rglob("*")}


def _data_spec(raw_path: str, symbol: str = "MES") -> str:
    dataset = {"raw_path": raw_path, "raw_sha256": "ab" * 32, "config": CONFIG | {"symbol": symbol}}
    return json.dumps({"kind": "data", "symbol": "MES", "code": code_version(), "dataset": dataset})


def test_a_spec_from_redis_naming_a_path_outside_home_fails_at_once_and_writes_nothing(
    redis_server, tmp_path
):
    home = tmp_path / "drive" / "home"
    home.mkdir(parents=True)
    (home / "data" / "raw").mkdir(parents=True)
    (home / "data" / "raw" / "MES_1m.csv").write_text("time,open,high,low,close,volume\n")
    client = redis_server.client()
    queue = Queue("mlf", connection=client, serializer=JSONSerializer)
    crafted = {
        "symbol-climbs-out": _data_spec("data/raw/MES_1m.csv", symbol="../../../x"),
        "raw-is-absolute": _data_spec("/etc/passwd"),
        "raw-climbs-out": _data_spec("data/raw/../../../../../../etc/passwd"),
    }
    for job_id, spec in crafted.items():
        queue.enqueue("jobs.entry.run_job", spec, job_id=job_id)
    before = _files(tmp_path)
    proc = run_factory("worker", "--burst", "--redis-url", redis_server.url, "--home", str(home))
    assert proc.returncode == 0, proc.stderr
    outside = {p for p in _files(tmp_path) - before if not p.startswith(str(home))}
    assert not outside, outside
    assert not (home / "data" / "processed").exists()
    for job_id in crafted:
        job = Job.fetch(job_id, connection=client, serializer=JSONSerializer)
        state = job_state(client, job_id)
        assert job.get_status() == "failed", (job_id, state)
        assert "attempt" not in state  # refused before any attempt was claimed
        error = state["error"]
        assert error.startswith("refused: bad job spec: ") and "\n" not in error, error
        assert "fix:" in error
    assert "'../../../x'" in job_state(client, "symbol-climbs-out")["error"]
    assert "'/etc/passwd'" in job_state(client, "raw-is-absolute")["error"]


def _good_data_job(home, days: int = 6) -> dict:
    from factory.data.synthetic import synthetic_bars, write_raw
    from factory.files import file_sha256

    raw = write_raw(synthetic_bars("MES", days=days, seed=5), home / "data/raw/MES_1m.parquet")
    good = json.loads(_data_spec("data/raw/MES_1m.parquet"))
    good["dataset"]["raw_sha256"] = file_sha256(raw)
    return good


def test_unreadable_queue_entries_are_moved_aside_and_the_good_job_runs(redis_server, tmp_path):
    home = tmp_path / "home"
    good = _good_data_job(home)
    client = redis_server.client()
    pickling = Queue("mlf", connection=client)  # RQ's default serializer: pickle
    pickling.enqueue("jobs.entry.run_job", json.dumps(good), job_id="pickled")
    pickling.enqueue("jobs.entry.run_job", json.dumps(good), job_id="pickled-stuck")
    client.lrem("rq:queue:mlf", 0, "pickled-stuck")
    client.rpush("rq:queue:mlf", "bad id!")
    client.rpush("rq:queue:mlf:intermediate", "pickled-stuck", "stuck id!")  # a crash's leftovers
    queue = Queue("mlf", connection=client, serializer=JSONSerializer)
    queue.enqueue("jobs.entry.run_job", json.dumps(good), job_id="good")
    proc = run_factory("worker", "--burst", "--redis-url", redis_server.url, "--home", str(home))
    assert proc.returncode == 0, proc.stderr
    assert "unhandled exception" not in proc.stderr, proc.stderr
    assert client.get("mlf:result:good") is not None, proc.stderr
    assert client.lrange("rq:queue:mlf", 0, -1) == []
    assert client.lrange("rq:queue:mlf:intermediate", 0, -1) == []
    moved = {k.decode(): json.loads(v) for k, v in client.hgetall("mlf:quarantine").items()}
    assert sorted(moved) == ["bad id!", "pickled", "pickled-stuck", "stuck id!"]
    assert "not JSON (a pickled job?)" in moved["pickled"]["reason"]
    assert "Job ID must only contain" in moved["bad id!"]["reason"]
    assert all("fix:" in m["reason"] and "\n" not in m["reason"] for m in moved.values())
    assert not client.exists("rq:job:pickled") and client.exists("mlf:quarantine:job:pickled")
    assert "queue entry 'bad id!' moved aside to mlf:quarantine" in proc.stderr


def test_a_scheme_less_url_with_a_password_is_refused_without_showing_it(tmp_path):
    url = "default:S3cr3t@127.0.0.1:16391"
    proc = run_factory("worker", "--burst", "--redis-url", url, "--home", str(tmp_path))
    assert proc.returncode != 0
    assert "S3cr3t" not in proc.stderr + proc.stdout, proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert "has no scheme" in error and "****@127.0.0.1:16391" in error and "fix:" in error


def test_a_password_given_with_redis_url_is_on_no_command_line(tmp_path):
    """Neither the worker's nor its work horse's command line (ps, /proc/<pid>/cmdline)."""
    home = tmp_path / "home"
    good = _good_data_job(home, days=20)
    with RedisServer(tmp_path / "redis", password="S3cr3t-pw") as server:
        client = server.client()
        queue = Queue("mlf", connection=client, serializer=JSONSerializer)
        queue.enqueue("jobs.entry.run_job", json.dumps(good), job_id="good")
        cmd = factory_cmd("worker", "--burst", "--redis-url", server.url, "--home", str(home))
        with open(tmp_path / "worker.log", "wb") as log:
            proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
            seen = _command_lines_once_a_horse_runs(proc)
            assert proc.wait(timeout=120) == 0, (tmp_path / "worker.log").read_text()
        assert client.get("mlf:result:good") is not None
    assert len(seen) >= 2, seen  # the worker and its horse
    assert not [line for line in seen.values() if "S3cr3t" in line], seen
    assert "moved from the command line into REDIS_URL" in (tmp_path / "worker.log").read_text()


def _command_lines_once_a_horse_runs(proc, timeout_s: float = 60.0) -> dict[int, str]:
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            worker = psutil.Process(proc.pid)
            horses = worker.children(recursive=True)
            if horses:
                return {p.pid: " ".join(p.cmdline()) for p in [worker, *horses]}
        except psutil.Error:
            pass
        time.sleep(0.01)
    return {}


def test_every_spelling_of_the_url_option_is_scrubbed_from_the_command_line():
    from worker.cli import scrubbed_argv

    argv = ["-m", "submitter.cli", "worker", "--redis-url", "U1", "--redis=U2", "--red", "U3"]
    argv += ["--reaper-interval", "1", "--home", "h"]
    assert scrubbed_argv(argv) == [
        "-m",
        "submitter.cli",
        "worker",
        "--reaper-interval",
        "1",
        "--home",
        "h",
    ]
