"""Helpers for tests that run real worker processes against a real redis-server."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from tests.conftest import REPO_ROOT

TEST_TTL_S = 4.0  # short leases keep the kill tests fast
TEST_REAPER_S = 1.0


def factory_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "submitter.cli", *args]


def run_factory(*args: str, timeout: float = 120, env: dict | None = None):
    return subprocess.run(
        factory_cmd(*args),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def start_worker(
    url: str, home: Path, name: str, *extra: str, log: Path | None = None, ttl_s: float = TEST_TTL_S
) -> subprocess.Popen:
    """A real `factory worker` process in its own session (so a test can kill its tree)."""
    out = open(log or home / f"{name}.log", "ab")  # noqa: SIM115 - the process owns it
    cmd = factory_cmd(
        "worker",
        "--redis-url",
        url,
        "--home",
        str(home),
        "--name",
        name,
        "--lease-ttl",
        str(ttl_s),
        "--reaper-interval",
        str(TEST_REAPER_S),
        "--data-cache",
        str(home / ".cache"),  # each test its own cache: no dataset copy leaks between tests
        *extra,
    )
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        cmd, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )


def tree_pids(proc: subprocess.Popen) -> list[int]:
    try:
        parent = psutil.Process(proc.pid)
        return [proc.pid] + [c.pid for c in parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def signal_tree(proc: subprocess.Popen, sig: int) -> list[int]:
    pids = tree_pids(proc)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    return pids


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        signal_tree(proc, signal.SIGKILL)
        proc.wait(timeout=10)


def wait_for(
    predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2
) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def job_state(client, job_id: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in client.hgetall(f"mlf:state:{job_id}").items()}


def job_result(client, job_id: str) -> dict | None:
    raw = client.get(f"mlf:result:{job_id}")
    return json.loads(raw) if raw else None


def alive(pid: int) -> bool:
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
