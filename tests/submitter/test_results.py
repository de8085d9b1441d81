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


def _overfitting(pbo_available=True):
    pbo = {"available": False, "reason": "3 periods in 2 blocks leave halves of under 2 periods"}
    if pbo_available:
        pbo = {"available": True, "pbo": 0.25, "combinations": 12870, "rows": 60, "blocks": 16}
        pbo["strategies"] = 3
    no_trades = {"available": False, "reason": "the returns do not vary (no trades?)"}
    return {
        "trials": 3,
        "pbo": pbo,
        "searches": {},
        "deflated_sharpe": {"a": {"available": True, "dsr": 0.4}, "ensemble:logistic": no_trades},
    }


def test_the_odds_of_a_fluke_are_shown_and_in_the_json(tmp_path):
    _board(tmp_path)
    path = tmp_path / "results" / "plan-abc" / "leaderboard.json"
    board = json.loads(path.read_text())
    board["leaderboard"][0]["deflated_sharpe"] = 0.4
    board["overfitting"] = _overfitting()
    path.write_text(json.dumps(board))
    out = run_factory("results", "--home", str(tmp_path), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["overfitting"] == _overfitting()
    out = run_factory("results", "--home", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "DSR" in out.stdout.splitlines()[1] and "0.4000" in out.stdout
    assert "(PBO): 0.250 (12870 splits of 60 test days in 16 blocks, 3 strategies)" in out.stdout
    assert "best of 3 unskilled strategies" in out.stdout
    assert "ensemble:logistic: not available: the returns do not vary" in out.stdout
    board["overfitting"] = _overfitting(pbo_available=False)
    path.write_text(json.dumps(board))
    out = run_factory("results", "--home", str(tmp_path))
    assert "(PBO): not available: 3 periods in 2 blocks" in out.stdout


def test_a_board_from_before_the_odds_of_a_fluke_still_shows(tmp_path):
    _board(tmp_path)
    out = run_factory("results", "--home", str(tmp_path))
    assert out.returncode == 0 and "PBO" not in out.stdout
    assert "overfitting" not in json.loads(
        run_factory("results", "--home", str(tmp_path), "--json").stdout
    )
