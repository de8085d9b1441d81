"""A whole plan (train, CV folds, ensemble, report) on two real workers, one killed mid-fold."""

from __future__ import annotations

import json
import signal

from tests.runner import job_result, job_state, signal_tree, wait_for

MODELS = "xgboost,lightgbm,lstm"  # two tabular models and one sequence model
PARAMS = ("profile=tiny", "lstm.epochs=8", "lstm.patience=100")


def _started_fold_with_checkpoint(client, plan: dict) -> dict | None:
    for row in plan["jobs"]:
        if row["kind"] != "cv":
            continue
        state = job_state(client, row["id"])
        if state.get("status") == "started" and int(state.get("checkpoint_step") or 0) > 0:
            return {"id": row["id"], "worker": state["worker"]}
    return None


def test_plan_with_cv_and_ensemble_survives_a_kill_during_a_fold(cluster):
    plan = cluster.submit(MODELS, PARAMS, cv=True)
    workers = {"w1": cluster.worker("w1"), "w2": cluster.worker("w2")}
    victim = wait_for(
        lambda: _started_fold_with_checkpoint(cluster.client, plan),
        300,
        "a fold in training with a checkpoint",
    )
    signal_tree(workers[victim["worker"]], signal.SIGKILL)
    cluster.worker("w3")
    report = next(j["id"] for j in plan["jobs"] if j["kind"] == "report")
    wait_for(lambda: job_result(cluster.client, report), 600, "the report")
    assert job_result(cluster.client, victim["id"])["attempt"] >= 2
    for row in plan["jobs"]:
        assert job_result(cluster.client, row["id"]) is not None, f"{row['id']} has no result"
    results = cluster.factory("results", "--plan", plan["plan_id"], "--json")
    assert results.returncode == 0, results.stderr
    names = {r["model"] for r in json.loads(results.stdout)["leaderboard"]}
    assert {"xgboost", "lightgbm", "lstm"} <= names
    assert any(n.startswith("ensemble") for n in names)
    folder = cluster.home / "results" / plan["plan_id"]
    assert (folder / "leaderboard.csv").is_file() and (folder / "leaderboard.png").is_file()
    status = cluster.factory("status", "--plan", plan["plan_id"], "--json")
    for row in json.loads(status.stdout)["jobs"]:
        assert row["status"] == "finished", row
        if row["kind"] in ("train", "cv"):  # progress shows the end, not a lagging report
            assert row["step"] == row["checkpoint_step"] and 0 < row["step"] <= row["total"], row
