"""A dead session costs at most one checkpoint interval: real workers, real signals."""

from __future__ import annotations

import json
import signal
import time

from factory.training.checkpoint import CheckpointStore
from factory.training.local_context import LocalContext
from factory.training.train import train_model
from tests.runner import (
    TEST_REAPER_S,
    TEST_TTL_S,
    alive,
    job_result,
    job_state,
    signal_tree,
    tree_pids,
    wait_for,
)
from tests.worker.conftest import SLOW_XGB


def _train_id(plan: dict, model: str = "xgboost") -> str:
    return next(j["id"] for j in plan["jobs"] if j["kind"] == "train" and j["model"] == model)


def _checkpointed(client, job_id: str) -> bool:
    return int(job_state(client, job_id).get("checkpoint_step") or 0) > 0


def _uninterrupted_sha(dataset, tmp_path, params=SLOW_XGB) -> str:
    values = dict(p.split("=", 1) for p in params)
    ctx = LocalContext(CheckpointStore(tmp_path / "reference", "ref"))
    result, _ = train_model(dataset, "xgboost", 5, values, ctx)
    return result["test_predictions_sha256"]


def test_sigkill_mid_training_resumes_from_checkpoint_elsewhere(cluster, tmp_path):
    plan = cluster.submit()
    job = _train_id(plan)
    first = cluster.worker("w1")
    wait_for(lambda: _checkpointed(cluster.client, job), 60, "a first checkpoint")
    horse_pids = tree_pids(first)
    killed_at = time.monotonic()
    signal_tree(first, signal.SIGKILL)
    assert job_result(cluster.client, job) is None, "training ended before the kill: make it longer"
    wait_for(lambda: not any(alive(p) for p in horse_pids), 10, "the work horse to die too")

    cluster.worker("w2")
    wait_for(lambda: job_state(cluster.client, job).get("attempt") == "2", 60, "attempt 2")
    resumed_after = time.monotonic() - killed_at
    result = wait_for(lambda: job_result(cluster.client, job), 300, "the job to finish")
    state = job_state(cluster.client, job)
    assert int(state["resumed_from"]) > 0
    assert result["attempt"] == 2 and result["resumed"] is True
    assert resumed_after <= TEST_TTL_S + 2 * TEST_REAPER_S + 10
    assert result["test_predictions_sha256"] == _uninterrupted_sha(cluster.dataset, tmp_path)
    status = json.loads(cluster.factory("status", "--json").stdout)
    row = next(j for j in status["jobs"] if j["id"] == job)
    assert row["status"] == "finished" and row["resumed_from"] > 0


def test_a_frozen_worker_that_wakes_up_publishes_nothing(cluster):
    plan = cluster.submit()
    job = _train_id(plan)
    zombie = cluster.worker("zombie")
    wait_for(lambda: _checkpointed(cluster.client, job), 60, "a first checkpoint")
    signal_tree(zombie, signal.SIGSTOP)
    cluster.worker("w2")
    wait_for(lambda: job_state(cluster.client, job).get("attempt") == "2", 60, "attempt 2")
    wait_for(lambda: _checkpointed_by(cluster.client, job, 2), 60, "attempt 2 to checkpoint")
    signal_tree(zombie, signal.SIGCONT)
    result = wait_for(lambda: job_result(cluster.client, job), 300, "the job to finish")
    time.sleep(TEST_TTL_S)  # give the zombie every chance to write
    assert result["attempt"] == 2
    records = [json.loads(r) for r in cluster.client.lrange(f"mlf:ckpts:{job}", 0, -1)]
    assert records and all(r["attempt"] == 2 for r in records)
    manifest = CheckpointStore(cluster.home, job).records()
    assert all(r.attempt == 2 for r in manifest)
    assert zombie.poll() is None, "the zombie worker should live on after fencing itself"
    log = (cluster.home / "zombie.log").read_text()
    assert "superseded" in log or "lease lost" in log


def _checkpointed_by(client, job_id: str, attempt: int) -> bool:
    records = [json.loads(r) for r in client.lrange(f"mlf:ckpts:{job_id}", 0, -1)]
    return bool(records) and records[0]["attempt"] == attempt


def test_a_dead_worker_is_reaped_while_every_other_worker_is_busy(cluster):
    plan = cluster.submit(
        "xgboost,lstm",
        (
            *SLOW_XGB[:1],
            "xgboost.n_estimators=300",
            "xgboost.checkpoint_every_rounds=5",
            "xgboost.early_stopping_rounds=1000",
            "lstm.epochs=40",
            "lstm.patience=100",
        ),
    )
    jobs = [_train_id(plan, "xgboost"), _train_id(plan, "lstm")]
    a, b = cluster.worker("a"), cluster.worker("b")
    wait_for(
        lambda: all(job_state(cluster.client, j).get("worker") for j in jobs),
        60,
        "both workers to be busy",
    )
    victim_job = next(j for j in jobs if job_state(cluster.client, j)["worker"] == "a")
    attempt = job_state(cluster.client, victim_job)["attempt"]
    signal_tree(a, signal.SIGKILL)
    killed_at = time.time()
    # reaped_attempt stays set even if a worker claims the requeued job at once
    wait_for(
        lambda: job_state(cluster.client, victim_job).get("reaped_attempt") == attempt,
        60,
        "the reaper of the busy worker to requeue the job",
    )
    reaped_at = float(job_state(cluster.client, victim_job)["reaped_at"])
    assert reaped_at - killed_at <= TEST_TTL_S + 2 * TEST_REAPER_S + 3
    assert b.poll() is None


def test_sigterm_checkpoints_hands_the_job_back_and_exits(cluster):
    plan = cluster.submit()
    job = _train_id(plan)
    first = cluster.worker("w1")
    wait_for(lambda: _checkpointed(cluster.client, job), 60, "a first checkpoint")
    first.send_signal(signal.SIGTERM)  # the worker process only, as Colab's stop button does
    assert first.wait(timeout=60) == 0
    state = job_state(cluster.client, job)
    assert state["handbacks"] == "1" and state.get("preemptions") is None
    assert not cluster.client.exists(f"mlf:failures:{job}")
    handed_back_at = int(state["checkpoint_step"])
    cluster.worker("w2")
    result = wait_for(lambda: job_result(cluster.client, job), 300, "the job to finish")
    assert int(job_state(cluster.client, job)["resumed_from"]) == handed_back_at
    assert result["attempt"] == 2
