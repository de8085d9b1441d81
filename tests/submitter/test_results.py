"""`factory results` reads the report job's leaderboard, sorts it, explains what is missing."""

from __future__ import annotations

import json

from tests.runner import run_factory


def _board(home, plan_id="plan-abc"):
    folder = home / "results" / plan_id
    folder.mkdir(parents=True)
    rows = [
        {"model": "a", "log_loss": 1.1, "sharpe": 0.5},
        {"model": "b", "log_loss": 0.9, "sharpe": 1.5},
        {"model": "ensemble:logistic", "log_loss": 1.0, "sharpe": None},
    ]
    (folder / "leaderboard.json").write_text(json.dumps({"leaderboard": rows}))
    (home / "ledger").mkdir()
    (home / "ledger" / f"{plan_id}.json").write_text("{}")


def test_sorted_by_log_loss_ascending_and_sharpe_descending(tmp_path):
    _board(tmp_path)
    out = run_factory("results", "--home", str(tmp_path), "--json")
    assert out.returncode == 0, out.stderr
    assert [r["model"] for r in json.loads(out.stdout)["leaderboard"]] == [
        "b",
        "ensemble:logistic",
        "a",
    ]
    out = run_factory(
        "results", "--home", str(tmp_path), "--plan", "plan-abc", "--sort-by", "sharpe", "--json"
    )
    assert [r["model"] for r in json.loads(out.stdout)["leaderboard"]] == [
        "b",
        "a",
        "ensemble:logistic",
    ]


def test_no_results_yet_is_one_line(tmp_path):
    (tmp_path / "ledger").mkdir()
    (tmp_path / "ledger" / "plan-x.json").write_text("{}")
    out = run_factory("results", "--home", str(tmp_path))
    assert out.returncode == 2 and "factory status --plan plan-x" in out.stderr
