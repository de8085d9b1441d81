"""What the user sees around the end of a plan and during recovery (issue 12, point 11)."""

from __future__ import annotations

import os
import signal

import fakeredis

from tests.runner import TEST_TTL_S, job_result, job_state, run_factory, signal_tree, wait_for
from tests.worker.test_recovery import _checkpointed, _train_id


def test_a_finished_plan_leaves_the_open_plans_at_once(cluster):
    plan = cluster.submit(params=("profile=tiny",))
    assert cluster.client.sismember("mlf:plans:open", plan["plan_id"])
    proc = run_factory("worker", "--burst", "--redis-url", cluster.url, "--home", str(cluster.home))
    assert proc.returncode == 0, proc.stderr
    report = next(j["id"] for j in plan["jobs"] if j["kind"] == "report")
    assert job_result(cluster.client, report) is not None, proc.stderr
    assert not cluster.client.sismember("mlf:plans:open", plan["plan_id"]), proc.stderr
    assert f"plan {plan['plan_id']}: every job has ended" in proc.stderr


def test_factory_worker_hands_its_preemption_budget_to_its_reaper(monkeypatch, tmp_path):
    import worker.run
    from submitter.cli import build_parser
    from worker.worker import LeasedWorker

    seen = {}

    class Loop:
        def __init__(self, connection, settings, name, queues, log_level) -> None:
            worker = LeasedWorker(queues, connection=connection, name=name, settings=settings)
            seen["budget"] = worker.reaper.preemption_budget

        def run(self, burst, max_jobs) -> bool:
            return False

    monkeypatch.setattr(worker.run, "_Loop", Loop)
    monkeypatch.setattr(os, "environ", os.environ.copy())  # the worker sets its attempt's
    monkeypatch.setattr(worker.run, "connect", lambda url, home, name=None: fakeredis.FakeRedis())
    args = build_parser().parse_args(
        ["worker", "--home", str(tmp_path), "--preemption-budget", "50", "--min-free-mb", "0"]
    )
    assert args.handler(args) == 0
    assert seen["budget"] == 50


def test_a_worker_fencing_itself_shows_only_its_own_line(cluster):
    """Not RQ's 'Work-horse terminated unexpectedly ... failed' warning first."""
    plan = cluster.submit()
    job = _train_id(plan)
    zombie = cluster.worker("zombie")
    wait_for(lambda: _checkpointed(cluster.client, job), 60, "a first checkpoint")
    signal_tree(zombie, signal.SIGSTOP)
    wait_for(
        lambda: not cluster.client.exists(f"mlf:lease:{job}"), TEST_TTL_S + 10, "the lease to go"
    )
    assert cluster.factory("status").returncode == 0  # its reaper requeues the job
    assert job_state(cluster.client, job).get("reaped_attempt") == "1"
    signal_tree(zombie, signal.SIGCONT)
    log = cluster.home / "zombie.log"
    wait_for(lambda: "writing nothing" in log.read_text(), 60, "the zombie to fence itself")
    text = log.read_text()
    assert "lease lost" in text and "attempt superseded; writing nothing" in text
    assert "terminated unexpectedly" not in text and "Work horse killed" not in text, text


def test_a_plan_submitted_with_a_preemption_budget_is_judged_by_it(cluster):
    from jobs.lease import Leases
    from jobs.reaper import Reaper
    from tests.jobs.test_preemption_budget import _preempt

    plan = cluster.submit("xgboost", ("profile=tiny",), "--preemption-budget", "1")
    job = _train_id(plan)
    assert job_state(cluster.client, job)["preemption_budget"] == "1"
    reaper = Reaper(cluster.client, Leases(cluster.client), ["mlf"])  # factory status's: 20
    assert _preempt(cluster.client, job, reaper, checkpoint_step=None) == [job]
    assert _preempt(cluster.client, job, reaper, checkpoint_step=None) == []
    error = job_state(cluster.client, job)["error"]
    assert error.startswith("preempted 2 times in a row without a new checkpoint (budget 1)")
