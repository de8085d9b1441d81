"""A CPCV plan (3 groups, 2 tested: 3 splits and 2 test paths per model) of xgboost and
lightgbm (tiny) on two real workers, through the ensemble and the report."""

from __future__ import annotations

import itertools
import json

from tests.runner import job_result, wait_for
from tests.worker.conftest import run_factory_submit

CPCV = ["--cv", "cpcv", "--groups", "3", "--test-groups", "2"]


def test_a_cpcv_plan_runs_every_split_and_stacks_on_its_paths(cluster):
    args = ["--models", "xgboost,lightgbm", *CPCV, "--param", "profile=tiny"]
    args += ["--symbol", "MES", "--dataset", str(cluster.dataset), "--horizon", "5"]
    args += ["--redis-url", cluster.url, "--home", str(cluster.home), "--json"]
    proc = run_factory_submit(*args)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert sorted(j["kind"] for j in plan["jobs"]) == (
        ["cv"] * 6 + ["ensemble", "report", "train", "train"]
    )
    cluster.worker("w1")
    cluster.worker("w2")
    report = next(j["id"] for j in plan["jobs"] if j["kind"] == "report")
    wait_for(lambda: job_result(cluster.client, report), 600, "the report")

    results = {j["id"]: job_result(cluster.client, j["id"]) for j in plan["jobs"]}
    assert all(r is not None for r in results.values())
    scheme = {"scheme": "cpcv", "groups": 3, "test_groups": 2}
    cv = [r for r in results.values() if r["kind"] == "cv"]
    for model in ("xgboost", "lightgbm"):
        splits = sorted((r for r in cv if r["model"] == model), key=lambda r: r["fold"])
        assert [r["fold"] for r in splits] == list(range(3))
        assert all(r["cv"] == scheme and r["folds"] == 3 for r in splits)
        assert [tuple(r["test_groups"]) for r in splits] == list(
            itertools.combinations(range(3), 2)
        )
    eligible = cv[0]["rows"]["eligible"]
    (ensemble,) = [r for r in results.values() if r["kind"] == "ensemble"]
    assert ensemble["cv"] == scheme | {"stacked_on": "path 0"}
    assert ensemble["oof_rows"] == eligible and ensemble["oof_rows_dropped"] == 0
    for model in ("xgboost", "lightgbm"):
        paths = ensemble["cv_paths"][model]
        assert len(paths) == 2 and all(p["n"] == eligible for p in paths)
    board = cluster.factory("results", "--plan", plan["plan_id"], "--json")
    assert board.returncode == 0, board.stderr
    rows = json.loads(board.stdout)["leaderboard"]
    assert any(r["model"].startswith("ensemble") for r in rows)
    assert all(r["cv_folds"] == 3 for r in rows if r["model"] in ("xgboost", "lightgbm"))
