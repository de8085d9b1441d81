"""Redis restarts: with AOF nothing is lost; emptied, `factory recover` brings the plan back."""

from __future__ import annotations

from tests.runner import job_result, job_state, wait_for
from tests.worker.test_recovery import _checkpointed, _train_id


def test_redis_restart_with_aof_loses_nothing(cluster):
    plan = cluster.submit()
    job = _train_id(plan)
    cluster.worker("w1")
    wait_for(lambda: _checkpointed(cluster.client, job), 60, "a first checkpoint")
    cluster.server.restart()  # graceful: the AOF holds every acknowledged write
    result = wait_for(lambda: job_result(cluster.client, job), 300, "the job to finish")
    assert result["test_predictions_sha256"]
    assert cluster.client.exists(f"mlf:plan:{plan['plan_id']}")
    status = cluster.factory("status", "--plan", plan["plan_id"], "--json")
    assert status.returncode == 0 and '"finished"' in status.stdout


def test_redis_restarted_empty_is_recovered_from_ledger_and_checkpoints(cluster):
    plan = cluster.submit()
    job = _train_id(plan)
    cluster.worker("w1")
    wait_for(lambda: _checkpointed(cluster.client, job), 60, "a first checkpoint")
    cluster.server.restart(wipe=True)
    assert not cluster.client.exists(f"mlf:plan:{plan['plan_id']}")
    before = cluster.factory("status", "--plan", plan["plan_id"])
    assert before.returncode == 2 and "factory recover" in before.stderr
    recovered = cluster.factory("recover", "--plan", plan["plan_id"])
    assert recovered.returncode == 0, recovered.stderr
    assert cluster.client.hlen("mlf:code") == 1  # the plan's wheel checksum, from the ledger
    result = wait_for(lambda: job_result(cluster.client, job), 300, "the job to finish")
    assert int(job_state(cluster.client, job)["resumed_from"]) > 0
    assert result["resumed"] is True and result["attempt"] >= 2
