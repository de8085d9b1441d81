"""A 12-trial search of xgboost (tiny profile) on two real workers, one killed mid-trial:
the study holds exactly 12 complete or pruned trials, none sampled twice, and the best
configuration is trained, cross-validated and ensembled (with a fixed lightgbm: stacking
needs two models) and reported."""

from __future__ import annotations

import json
import signal

import pytest

from tests.runner import job_result, job_state, signal_tree, wait_for
from tests.worker.conftest import run_factory_submit

pytest.importorskip("optuna")
TRIALS = 12
# trials long enough (about a second, a checkpoint every 5 rounds) to be killed mid-way;
# max_depth fixed (not searched) keeps every trial that short
PARAMS = (
    "profile=tiny",
    "xgboost.max_depth=3",
    "xgboost.n_estimators=60",
    "xgboost.checkpoint_every_rounds=5",
    "xgboost.early_stopping_rounds=1000",
)


def _submit(cluster) -> dict:
    args = ["--tune", "xgboost", "--models", "xgboost,lightgbm", "--trials", str(TRIALS)]
    args += ["--symbol", "MES", "--dataset", str(cluster.dataset), "--horizon", "5"]
    args += ["--folds", "2", "--redis-url", cluster.url, "--home", str(cluster.home), "--json"]
    for p in PARAMS:
        args += ["--param", p]
    proc = run_factory_submit(*args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _trial_in_training(client, trial_ids: list[str]) -> dict | None:
    for job_id in trial_ids:
        state = job_state(client, job_id)
        number = client.hget(f"mlf:trial:{job_id}", "number")
        checkpointed = int(state.get("checkpoint_step") or 0) > 0
        running = state.get("status") == "started" and checkpointed and number is not None
        if running and job_result(client, job_id) is None:
            return {"id": job_id, "worker": state["worker"], "number": int(number)}
    return None


def _journal(client, study: str) -> list[dict]:
    last = int(client.get(f"mlf:optuna:{study}:log_number"))
    raw = client.mget([f"mlf:optuna:{study}:log:{i}" for i in range(last + 1)])
    return [json.loads(r) for r in raw]


def test_a_search_survives_a_kill_mid_trial_and_trains_its_best(cluster):
    from jobs.search import open_study

    plan = _submit(cluster)
    trial_ids = [j["id"] for j in plan["jobs"] if j["kind"] == "trial"]
    assert len(trial_ids) == TRIALS
    workers = {"w1": cluster.worker("w1"), "w2": cluster.worker("w2")}
    victim = wait_for(lambda: _trial_in_training(cluster.client, trial_ids), 300, "a trial")
    signal_tree(workers[victim["worker"]], signal.SIGKILL)
    cluster.worker("w3")
    report = next(j["id"] for j in plan["jobs"] if j["kind"] == "report")
    wait_for(lambda: job_result(cluster.client, report), 600, "the report")

    killed = job_result(cluster.client, victim["id"])
    assert killed["attempt"] >= 2 and killed["trial_number"] == victim["number"]
    results = {j: job_result(cluster.client, j) for j in trial_ids}
    study_name = results[trial_ids[0]]["study"]
    study = open_study(cluster.client, study_name)
    trials = study.trials
    assert len(trials) == TRIALS  # asked once per trial job: no orphan, no second ask
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials) == TRIALS
    by_job = {t.user_attrs["job_id"]: t for t in trials}
    assert set(by_job) == set(trial_ids)
    for job_id, result in results.items():
        trial = by_job[job_id]
        assert result["trial_number"] == trial.number
        assert result["state"] == trial.state.name.lower()
        assert {k: str(v) for k, v in trial.params.items()} == {
            k: str(type(trial.params[k])(v)) for k, v in result["params"].items()
        }
    # never sampled again: one journal entry per (trial, parameter), kill or not
    sampled = [
        (g["trial_id"], g["param_name"])
        for g in _journal(cluster.client, study_name)
        if g["op_code"] == 5
    ]
    assert len(sampled) == len(set(sampled)) == TRIALS * len(trials[0].params)
    assert "max_depth" not in trials[0].params  # fixed by --param: not searched
    points = {json.dumps(r["params"], sort_keys=True) for r in results.values()}
    assert len(points) == TRIALS

    final = next(j["id"] for j in plan["jobs"] if j["kind"] == "train" and j["model"] == "xgboost")
    trained = job_result(cluster.client, final)
    assert trained["from_study"]["number"] == study.best_trial.number
    for key, value in study.best_trial.params.items():
        assert trained["params"][key] == value
    assert trained["params"]["max_depth"] == 3
    ensemble = next(j["id"] for j in plan["jobs"] if j["kind"] == "ensemble")
    assert set(job_result(cluster.client, ensemble)["members"]) == {"xgboost", "lightgbm"}

    shown = cluster.factory("results", "--plan", plan["plan_id"], "--json")
    assert shown.returncode == 0, shown.stderr
    search = json.loads(shown.stdout)["searches"]["xgboost"]
    assert search["best"][0]["number"] == study.best_trial.number
    assert (cluster.home / "results" / plan["plan_id"] / "optimization_history.png").is_file()
    status = json.loads(cluster.factory("status", "--plan", plan["plan_id"], "--json").stdout)
    row = status["plans"][0]["searches"][0]
    assert row["done"] + row["pruned"] == TRIALS and row["best_trial"] == study.best_trial.number
    assert all(j["status"] == "finished" for j in status["jobs"])
    again = _submit(cluster)
    assert again["created"] is False and again["plan_id"] == plan["plan_id"]
