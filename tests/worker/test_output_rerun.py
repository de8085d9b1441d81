"""A fold's output that never reaches the shared storage (issue 11, point 2): the
ensemble waits `--storage-visibility-wait` for it, then the fold runs again as a new
attempt and the ensemble waits for it; nothing fails and no budget is spent."""

from __future__ import annotations

import json
import shutil

from factory.files import tree_sha256
from tests.runner import job_result, job_state, wait_for

TINY = ("profile=tiny", "n_estimators=30", "checkpoint_every_rounds=5")


def _first_fold_done(client, fold_ids):
    for job_id in fold_ids:
        result = job_result(client, job_id)
        if result is not None:
            return job_id, result
    return None


def test_a_fold_output_that_never_arrives_runs_the_fold_again(cluster):
    plan = cluster.submit("xgboost,lightgbm", TINY, cv=True)
    jobs = {j["id"]: j for j in plan["jobs"]}
    folds = [j for j, info in jobs.items() if info["kind"] == "cv"]
    cluster.worker("w1", "--storage-visibility-wait", "2")
    fold, first = wait_for(lambda: _first_fold_done(cluster.client, folds), 300, "a fold")
    shutil.rmtree(cluster.home / first["bundle"])  # never synced from its session
    report = next(j for j, info in jobs.items() if info["kind"] == "report")
    wait_for(lambda: job_result(cluster.client, report), 600, "the report", interval=0.5)

    again = job_result(cluster.client, fold)
    assert again["attempt"] > first["attempt"]  # a new attempt of the fold
    assert again["output_sha256"] == tree_sha256(cluster.home / again["bundle"])
    state = job_state(cluster.client, fold)
    assert state["output_reruns"] == "1" and "never arrived" in state["rerun_reason"]
    ensemble = next(j for j, info in jobs.items() if info["kind"] == "ensemble")
    assert job_result(cluster.client, ensemble)["oof_rows_dropped"] == 0
    assert job_state(cluster.client, ensemble)["waits_for"] == fold
    # no failure was counted anywhere, and every job finished exactly once
    assert not cluster.client.keys("mlf:failures:*")
    status = cluster.factory("status", "--plan", plan["plan_id"], "--json")
    assert status.returncode == 0, status.stderr
    assert all(j["status"] == "finished" for j in json.loads(status.stdout)["jobs"])
