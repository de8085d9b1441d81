"""The report's odds of a fluke: PBO across the leaderboard's rows and DSR of each, from
the daily P&L of their test backtests (plus a search's trials)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from factory.evaluation.backtest import daily_matrix
from factory.evaluation.overfitting import deflated_sharpe, pbo, sharpe_ratios
from factory.evaluation.report import build_leaderboard, overfitting_report, write_report

DAYS = pd.bdate_range("2024-01-02", periods=60)


def _daily(pnl, days=DAYS) -> dict:
    return {"date": [str(d.date()) for d in days], "pnl_usd": [float(v) for v in pnl]}


def _result(pnl, kind="train", days=DAYS) -> dict:
    backtest = {"daily": _daily(pnl, days), "sharpe": 1.0, "trades": 5}
    return {"kind": kind, "metrics": {"test": {"log_loss": 1.0, "backtest": backtest}}}


def _plan(seed=0):
    rng = np.random.default_rng(seed)
    train = {
        "good": _result(rng.normal(40, 100, 60)),
        "noise": _result(rng.normal(0, 100, 60)),
        "rare": _result(np.where(rng.random(60) < 0.2, rng.normal(0, 100, 60), 0.0)),
    }
    ensemble = _result(rng.normal(30, 100, 60), kind="ensemble") | {"method": "logistic"}
    return build_leaderboard(train, None, ensemble)


def _trial(number, pnl, state="complete") -> dict:
    return _result(pnl, kind="trial") | {"model": "good", "trial_number": number, "state": state}


def test_daily_matrix_aligns_series_by_trading_day():
    m = daily_matrix(
        {
            "a": {"date": ["2024-01-02", "2024-01-03"], "pnl_usd": [1.0, 2.0]},
            "b": {"date": ["2024-01-03", "2024-01-04"], "pnl_usd": [3.0, -1.0]},
            "c": {"date": [], "pnl_usd": []},
        }
    )
    assert list(m.columns) == ["a", "b", "c"] and len(m) == 3
    assert m.to_numpy().tolist() == [[1.0, 0.0, 0.0], [2.0, 3.0, 0.0], [0.0, -1.0, 0.0]]


def test_overfitting_of_a_plan_counts_every_row_as_a_trial():
    rows = _plan()
    o = overfitting_report(rows)
    assert o["models"] == ["good", "noise", "rare", "ensemble:logistic"]
    assert o["trials"] == 4 and o["days"] == 60 and o["searches"] == {}
    p = o["pbo"]
    assert p["available"] and p["blocks"] == 16 and p["combinations"] == 12870
    m = daily_matrix({r["model"]: r["equity"] for r in rows})
    assert p["pbo"] == pytest.approx(pbo(m.to_numpy(), 16).pbo)
    variance = sharpe_ratios(m.to_numpy()).var(ddof=1)
    assert o["sharpe_variance"] == pytest.approx(variance)
    for name in o["models"]:
        expected = deflated_sharpe(m[name], 4, variance).dsr
        assert o["deflated_sharpe"][name]["dsr"] == pytest.approx(expected)
    assert o["deflated_sharpe"]["good"]["dsr"] > o["deflated_sharpe"]["noise"]["dsr"]
    assert json.loads(json.dumps(o)) == o


def test_a_search_s_trials_add_to_n_and_get_their_own_pbo():
    rows = _plan()
    rng = np.random.default_rng(5)
    trials = [_trial(i, rng.normal(10, 100, 60)) for i in range(5)]
    trials += [_trial(5, rng.normal(0, 100, 60), state="pruned")]  # not a finished strategy
    o = overfitting_report(rows, trials)
    assert o["trials"] == 4 + 5 and o["deflated_sharpe"]["good"]["trials"] == 9
    assert set(o["deflated_sharpe"]) == set(o["models"])  # trials are not rows
    s = o["searches"]["good"]
    assert s["available"] and s["strategies"] == 5
    assert s["names"] == [f"good#trial{i}" for i in range(5)]
    alone = overfitting_report(rows)["deflated_sharpe"]["good"]["dsr"]
    assert o["deflated_sharpe"]["good"]["dsr"] < alone  # deflated for 9 tries, not 4


def test_the_report_carries_pbo_and_each_row_s_dsr(tmp_path):
    rows = _plan()
    paths = write_report(rows, tmp_path, sort_by="log_loss")
    record = json.loads(paths["json"].read_text())
    o = record["overfitting"]
    assert o["pbo"]["available"] and 0.0 <= o["pbo"]["pbo"] <= 1.0
    dsr = {r["model"]: r["deflated_sharpe"] for r in record["leaderboard"]}
    assert dsr == {m: d["dsr"] for m, d in o["deflated_sharpe"].items()}
    assert paths["pbo_png"].read_bytes()[:4] == b"\x89PNG"
    md = paths["markdown"].read_text()
    assert "## Odds of a fluke" in md and "PBO " in md and "| good |" in md
    assert "deflated_sharpe" in pd.read_csv(paths["csv"]).columns


def test_a_short_test_period_says_why_there_is_no_pbo(tmp_path):
    days = DAYS[:3]
    train = {m: _result([1.0, -2.0, 3.0 + i], days=days) for i, m in enumerate("abc")}
    rows = build_leaderboard(train)
    o = overfitting_report(rows)
    assert not o["pbo"]["available"] and "under 2 periods" in o["pbo"]["reason"]
    assert o["deflated_sharpe"]["a"]["available"]  # 3 returns are enough for the DSR
    paths = write_report(rows, tmp_path)
    assert "pbo_png" not in paths and "PBO not available" in paths["markdown"].read_text()
    one = overfitting_report(build_leaderboard({"a": train["a"]}))
    assert "at least 2 strategies" in one["pbo"]["reason"] and one["trials"] == 1


def test_rows_without_a_backtest_are_left_out():
    rows = build_leaderboard({"a": {"kind": "train", "metrics": {"test": {}}}})
    o = overfitting_report(rows)
    assert o["models"] == [] and not o["pbo"]["available"] and o["deflated_sharpe"] == {}
