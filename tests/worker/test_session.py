"""The session budget and the storage preflight of a worker."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import worker.cli
import worker.session
from tests.runner import job_result, job_state, run_factory, wait_for
from tests.worker.conftest import SLOW_XGB
from tests.worker.test_recovery import _checkpointed, _train_id
from worker.session import SessionBudget, SessionStart, find_session_start

SLEEP = "import time; time.sleep(60)"


@pytest.fixture
def spawn(tmp_path: Path):
    """Start real child processes (killed at teardown); returns their psutil.Process."""
    started: list[subprocess.Popen] = []

    def start(*argv: str) -> psutil.Process:
        if started:
            time.sleep(0.05)  # create times are counted in clock ticks: keep them apart
        started.append(subprocess.Popen([sys.executable, *argv]))
        child = psutil.Process(started[-1].pid)
        # its command line shows its argv only once the forked child has exec'd
        wait_for(lambda: child.cmdline()[-1:] == list(argv[-1:]), 10, "the child to exec", 0.01)
        return child

    yield start
    for proc in started:
        proc.kill()
        proc.wait(timeout=10)


def _kernel_script(tmp_path: Path) -> str:
    script = tmp_path / "ipykernel_launcher.py"
    script.write_text(SLEEP + "\n")
    return str(script)


def _unreadable(error: Exception):
    class Unreadable:
        pid = 999_999

        def cmdline(self):
            raise error

        def create_time(self):
            raise error

    return Unreadable()


def _worker_help() -> str:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    worker.cli.register(sub)
    return " ".join(sub.choices["worker"].format_help().split())


def test_the_session_starts_with_the_oldest_jupyter_process(spawn, tmp_path):
    decoy = spawn("-c", SLEEP)  # older, but no Jupyter process
    kernel = spawn(_kernel_script(tmp_path))
    server = spawn("-c", SLEEP, "/usr/local/bin/jupyter-notebook")  # younger
    assert decoy.create_time() < kernel.create_time() < server.create_time()
    found = find_session_start(processes=psutil.Process().children())
    assert found.source == "jupyter"
    assert found.at == kernel.create_time() != psutil.boot_time()
    assert f"pid {kernel.pid}," in found.detail


def test_the_whole_machine_is_searched_by_default(spawn, tmp_path):
    kernel = spawn(_kernel_script(tmp_path))
    found = find_session_start()
    assert found.source == "jupyter"
    assert psutil.boot_time() <= found.at <= kernel.create_time()


def test_without_a_jupyter_process_the_session_counts_from_boot(spawn, tmp_path):
    spawn(_kernel_script(tmp_path))
    for found in (
        find_session_start(names=("mlf-no-such-program",)),
        find_session_start(processes=[]),
        find_session_start(processes=psutil.Process().children(), names=("jupyter-lab",)),
    ):
        assert found == (psutil.boot_time(), "uptime", found.detail)
        assert found.detail.startswith("machine boot")
    from_uptime = time.time() - worker.session.machine_uptime_s()
    assert abs(psutil.boot_time() - from_uptime) < 2


def test_unreadable_processes_are_skipped_and_other_errors_raised(spawn, tmp_path):
    kernel = spawn(_kernel_script(tmp_path))
    errors = (psutil.AccessDenied(1), psutil.NoSuchProcess(2), psutil.ZombieProcess(3))
    processes = [*map(_unreadable, errors), kernel, *map(_unreadable, errors)]
    assert find_session_start(processes=processes).at == kernel.create_time()
    with pytest.raises(ValueError, match="not a psutil error"):
        find_session_start(processes=[kernel, _unreadable(ValueError("not a psutil error"))])


def test_the_budget_records_its_measure(monkeypatch):
    now = time.time()
    started = SessionStart(now - 3600, "jupyter", "oldest Jupyter process (pid 1, started x)")
    budget = SessionBudget.start(max_session_hours=2, session_start=started)
    assert budget.ends_at == now + 3600 and budget.source == "jupyter"
    assert budget.describe().startswith("session budget from oldest Jupyter process (pid 1,")
    assert "h left" in budget.describe()
    with pytest.raises(dataclasses.FrozenInstanceError):
        budget.source = "uptime"  # type: ignore[misc]
    here = find_session_start()
    budget = SessionBudget.start(max_session_hours=2)
    assert (budget.source, budget.ends_at) == (here.source, here.at + 7200)

    def no_lookup(*args, **kwargs):
        raise AssertionError("the session start was looked up despite ends_in_s")

    monkeypatch.setattr(worker.session, "find_session_start", no_lookup)
    budget = SessionBudget.start(ends_in_s=600)
    assert budget.source == "--session-ends-in"
    assert budget.describe().startswith("session budget from --session-ends-in 600 s:")


def test_worker_help_names_the_measure(spawn, tmp_path, monkeypatch):
    spawn(_kernel_script(tmp_path))
    text = _worker_help()
    assert (
        "counted from the start of the runtime's oldest Jupyter process, "
        "else from machine boot (on this machine now: oldest Jupyter process (pid "
    ) in text
    boot = SessionStart(0.0, "uptime", "machine boot (booted 06:00:00)")
    monkeypatch.setattr(worker.session, "find_session_start", lambda: boot)
    assert "(on this machine now: machine boot (booted 06:00:00); default 11.5" in _worker_help()


def test_budget_arithmetic():
    budget = SessionBudget.start(ends_in_s=100, handback_margin_s=30)
    assert 99 < budget.remaining_s() <= 100
    assert not budget.must_hand_back()
    assert budget.fits(60) and not budget.fits(80)
    assert SessionBudget.start(ends_in_s=10, handback_margin_s=30).must_hand_back()


def test_a_worker_whose_session_ends_hands_back_and_another_finishes(cluster):
    # far longer than the session left
    long_run = (*(p for p in SLOW_XGB if not p.startswith("n_estimators")), "n_estimators=3000")
    plan = cluster.submit(params=long_run)
    job = _train_id(plan)
    ends_in = 30.0
    started = time.monotonic()
    first = cluster.worker("w1", "--session-ends-in", str(ends_in), "--handback-margin", "15")
    wait_for(lambda: _checkpointed(cluster.client, job), 60, "a first checkpoint")
    assert first.wait(timeout=60) == 0
    assert time.monotonic() - started < ends_in + 5, "the worker outlived its session"
    state = job_state(cluster.client, job)
    assert state["handbacks"] == "1" and job_result(cluster.client, job) is None
    handed_back_at = int(state["checkpoint_step"])
    cluster.worker("w2")
    wait_for(lambda: job_result(cluster.client, job), 300, "the job to finish")
    assert int(job_state(cluster.client, job)["resumed_from"]) == handed_back_at


def test_a_job_that_cannot_fit_in_the_session_is_not_started(cluster):
    plan = cluster.submit()
    job = _train_id(plan)
    cluster.client.hset("mlf:durations", "train:xgboost", "3600")
    cluster.worker("w1", "--session-ends-in", "600", "--handback-margin", "10")
    log = cluster.home / "w1.log"
    wait_for(lambda: log.exists() and "declined" in log.read_text(), 60, "the job declined")
    assert "session budget from --session-ends-in 600 s:" in log.read_text()
    assert not cluster.client.exists(f"mlf:attempts:{job}")


def test_a_full_storage_root_is_refused_before_a_job_is_claimed(cluster):
    plan = cluster.submit(params=("profile=tiny",))
    job = _train_id(plan)
    proc = run_factory(
        "worker",
        "--burst",
        "--min-free-mb",
        "1e12",
        "--redis-url",
        cluster.url,
        "--home",
        str(cluster.home),
    )
    assert proc.returncode == 2
    assert "MiB free" in proc.stderr and "fix:" in proc.stderr
    assert not cluster.client.exists(f"mlf:attempts:{job}")
