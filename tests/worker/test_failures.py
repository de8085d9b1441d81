"""Poison jobs, corrupt checkpoints, bad storage and jobs that name other callables."""

from __future__ import annotations

import json
import signal

import psutil
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from factory.training.checkpoint import CheckpointStore
from tests.runner import job_result, job_state, run_factory, signal_tree, wait_for
from tests.worker.test_recovery import _train_id, _uninterrupted_sha


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_job_failing_the_same_way_three_times_is_failed_and_dependents_canceled(cluster):
    plan = cluster.submit(params=("profile=tiny",))
    job = _train_id(plan)
    ledger = json.loads((cluster.home / "ledger" / f"{plan['plan_id']}.json").read_text())
    copied = cluster.home / ledger["jobs"][0]["spec"]["dataset"]["dataset_dir"]  # under --home
    (copied / "features.parquet").unlink()  # every attempt now fails the same way
    cluster.worker("w1", "--storage-visibility-wait", "1")  # each waits 1 s for it to sync
    wait_for(
        lambda: job_state(cluster.client, job).get("status") == "failed",
        90,
        "the poison job to be failed",
    )
    state = job_state(cluster.client, job)
    assert state["attempt"] == "3"
    assert "features.parquet" in state["final_error"] and "Traceback" in state["final_error"]
    status = json.loads(cluster.factory("status", "--json").stdout)
    rows = {j["kind"]: j for j in status["jobs"]}
    assert rows["train"]["status"] == "failed"
    assert rows["report"]["status"] == "canceled" and job in rows["report"]["error"]


def test_a_truncated_newest_checkpoint_falls_back_to_the_previous_one(cluster, tmp_path):
    plan = cluster.submit()
    job = _train_id(plan)
    first = cluster.worker("w1")
    store = CheckpointStore(cluster.home, job)
    wait_for(lambda: len(store.records()) >= 2, 60, "two checkpoints")
    killed = signal_tree(first, signal.SIGKILL)
    first.wait(timeout=30)
    # the horse too: a checkpoint it finished after the listing would be the newest
    wait_for(lambda: not any(map(_alive, killed)), 30, "the killed processes to end", 0.05)
    newest, previous = store.records()[:2]
    booster = store.job_dir / newest.dirname / "booster.ubj"
    booster.write_bytes(booster.read_bytes()[:100])  # a half-synced file
    cluster.worker("w2")
    result = wait_for(lambda: job_result(cluster.client, job), 300, "the job to finish")
    state = job_state(cluster.client, job)
    log = (cluster.home / "w2.log").read_text(errors="replace")
    assert f"skipping corrupt checkpoint {newest.dirname}:" in log  # the truncated one
    if state["attempt"] == "2":  # a later attempt (fenced under load) resumes from its own
        assert int(state["resumed_from"]) == previous.step < newest.step
    assert result["test_predictions_sha256"] == _uninterrupted_sha(cluster.dataset, tmp_path)


def test_an_unwritable_home_is_refused_before_any_job_is_claimed(cluster, tmp_path):
    plan = cluster.submit(params=("profile=tiny",))
    job = _train_id(plan)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    proc = run_factory(
        "worker", "--burst", "--redis-url", cluster.url, "--home", str(blocker / "home")
    )
    assert proc.returncode == 2
    assert "cannot write" in proc.stderr and "fix:" in proc.stderr
    assert not cluster.client.exists(f"mlf:attempts:{job}")
    assert (
        Job.fetch(job, connection=cluster.client, serializer=JSONSerializer).get_status()
        == "queued"
    )


def test_durability_drive_off_drive_is_refused_before_any_job_is_claimed(cluster):
    plan = cluster.submit(params=("profile=tiny",))
    proc = run_factory(
        "worker", "--burst", "--durability", "drive", "--redis-url", cluster.url,
        "--home", str(cluster.home),
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: --durability drive: the storage root {cluster.home} is not under a Drive "
        "mount (.../MyDrive); fix: --durability none, or a storage root on Drive"
    ]
    assert not cluster.client.exists(f"mlf:attempts:{_train_id(plan)}")


def test_a_job_naming_another_callable_is_refused_and_runs_nothing(cluster, tmp_path):
    marker = tmp_path / "pwned"
    queue = Queue("mlf", connection=cluster.client, serializer=JSONSerializer)
    evil = queue.enqueue("os.system", f"touch {marker}", job_id="evil")
    odd = queue.enqueue(
        "jobs.entry.run_job",
        json.dumps({"kind": "shell", "symbol": "X", "code": "x"}),
        job_id="odd",
    )
    proc = run_factory("worker", "--burst", "--redis-url", cluster.url, "--home", str(cluster.home))
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
    for job in (evil, odd):
        job.refresh()
        assert job.get_status() == "failed"
        assert "refused" in job_state(cluster.client, job.id)["error"]


def test_a_job_whose_params_no_retry_can_fix_fails_at_its_first_attempt(cluster):
    """A ConfigError (a permanent error: its class says so) fails the job at once."""
    plan = cluster.submit(params=("profile=tiny",))
    ledger = json.loads((cluster.home / "ledger" / f"{plan['plan_id']}.json").read_text())
    spec = dict(next(j["spec"] for j in ledger["jobs"] if j["spec"]["kind"] == "train"))
    spec["params"] = {**spec.get("params", {}), "no_such_param": "1"}
    queue = Queue("mlf", connection=cluster.client, serializer=JSONSerializer)
    queue.enqueue("jobs.entry.run_job", json.dumps(spec), job_id="bad-params")
    cluster.worker("w1")
    wait_for(
        lambda: job_state(cluster.client, "bad-params").get("status") == "failed",
        90,
        "the job to be failed",
    )
    state = job_state(cluster.client, "bad-params")
    assert state["attempt"] == "1"
    assert "no_such_param" in state["final_error"]
