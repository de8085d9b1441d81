"""The session budget and the storage preflight of a worker."""

from __future__ import annotations

import time

from tests.runner import job_result, job_state, run_factory, wait_for
from tests.worker.conftest import SLOW_XGB
from tests.worker.test_recovery import _checkpointed, _train_id
from worker.session import SessionBudget


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
