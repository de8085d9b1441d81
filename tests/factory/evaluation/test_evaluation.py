"""Metrics against hand-computed cases, and the backtest on a constructed path."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from factory.evaluation.backtest import Costs, backtest, trade_plan
from factory.evaluation.scores import (
    class_prior,
    classification_report,
    reliability_curve,
    top_label_calibration_error,
)

# --- classification metrics -----------------------------------------------------------

Y = np.array([0, 1, 2, 2])
P = np.array(
    [
        [0.7, 0.2, 0.1],  # true 0, predicted 0
        [0.1, 0.6, 0.3],  # true 1, predicted 1
        [0.2, 0.2, 0.6],  # true 2, predicted 2
        [0.1, 0.5, 0.4],  # true 2, predicted 1
    ]
)


def test_classification_report_by_hand():
    m = classification_report(Y, P, prior=np.array([0.25, 0.25, 0.5]))
    assert m["n"] == 4 and m["accuracy"] == 0.75
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert m["precision"] == {"down": 1.0, "flat": 0.5, "up": 1.0}
    assert m["recall"] == {"down": 1.0, "flat": 1.0, "up": 0.5}
    f1 = [1.0, 2 * 0.5 * 1.0 / 1.5, 2 * 1.0 * 0.5 / 1.5]
    assert m["macro_f1"] == pytest.approx(np.mean(f1))
    ll = -(math.log(0.7) + math.log(0.6) + math.log(0.6) + math.log(0.4)) / 4
    assert m["log_loss"] == pytest.approx(ll)
    ll_prior = -(math.log(0.25) + math.log(0.25) + 2 * math.log(0.5)) / 4
    assert m["log_loss_prior"] == pytest.approx(ll_prior)
    assert m["log_loss_skill"] == pytest.approx(1 - ll / ll_prior)
    sq = [0.09 + 0.04 + 0.01, 0.01 + 0.16 + 0.09, 0.04 + 0.04 + 0.16, 0.01 + 0.25 + 0.36]
    assert m["brier"] == pytest.approx(np.mean(sq))
    # prior (.25, .25, .5): rows of class 0/1 score .5625+.0625+.25, class 2: 2*.0625+.25
    b_prior = (2 * (0.5625 + 0.0625 + 0.25) + 2 * (0.0625 + 0.0625 + 0.25)) / 4
    assert m["brier_prior"] == pytest.approx(b_prior)
    assert m["brier_skill"] == pytest.approx(1 - np.mean(sq) / b_prior)
    # top labels .7 (right), .6 (right), .6 (right), .5 (wrong): bins 7, 6, 6, 5
    ece = (abs(1 - 0.7) + 2 * abs(1 - 0.6) + abs(0 - 0.5)) / 4
    assert m["calibration_error"] == pytest.approx(ece)


def test_prior_defaults_to_the_labels_frequencies():
    m = classification_report(Y, P)
    assert m["prior"] == [0.25, 0.25, 0.5]
    prior = class_prior(np.array([0, 0, 2]))  # an absent class gets a floor, not 0
    assert prior[1] > 0 and prior.sum() == pytest.approx(1.0)
    assert np.isfinite(classification_report(Y, P, prior)["log_loss_skill"])


def test_calibration_error_of_a_calibrated_bin_is_zero():
    y = np.array([0, 0, 0, 1, 2])  # top label .6 five times, right 3 times
    p = np.tile([0.6, 0.3, 0.1], (5, 1))
    assert top_label_calibration_error(y, p) == pytest.approx(0.0)
    assert top_label_calibration_error(np.array([1]), np.array([[1.0, 0.0, 0.0]])) == 1.0


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="shape"):
        classification_report(Y, P[:, :2])
    with pytest.raises(ValueError, match="0, 1, 2"):
        classification_report(np.array([0, 1, 2, 3]), P)


# --- backtest -----------------------------------------------------------------------

COSTS = Costs(tick_size=0.25, tick_value_usd=1.25, cost_ticks_per_side=1.0)  # $5 a point


def constructed_path():
    """Ten decision bars over two trading days, and their barrier outcomes."""
    day1 = pd.date_range("2024-01-09 14:00", periods=5, freq="1min", tz="UTC")
    day2 = pd.date_range("2024-01-10 14:00", periods=5, freq="1min", tz="UTC")
    index = day1.append(day2)
    opens = [100.0, 100.25, 100.5, 100.5, 99.75, 99.5, 99.0, 99.0, 100.5, 100.0]
    close = [100.0, 100.5, 100.5, 100.0, 99.5, 99.25, 99.0, 100.5, 100.25, 101.0]
    bars = pd.DataFrame({"open": opens, "close": close}, index=index)
    exit_px = {0: 101.0, 1: 101.0, 4: 99.0, 8: 101.0}  # decided rows
    t1 = {0: index[3], 1: index[4], 4: index[6], 8: index[9]}
    exit_ret = np.full(10, np.nan)
    t1_col = pd.Series(pd.NaT, index=index, dtype="datetime64[ns, UTC]")
    for i, px in exit_px.items():
        exit_ret[i] = np.log(px / close[i])
        t1_col.iloc[i] = t1[i]
    labels = pd.DataFrame({"exit_ret_h5": exit_ret, "t1_h5": t1_col}, index=index)
    proba = np.array(
        [
            [0.1, 0.2, 0.7],  # 0: up .7 -> long 100.25 (next open) -> 101: +.75 pt
            [0.1, 0.3, 0.6],  # 1: up, but entry 14:02 is not after the open trade's exit
            [0.2, 0.7, 0.1],  # 2: flat: no trade
            [0.8, 0.1, 0.1],  # 3: down, but no barrier outcome: no trade
            [0.6, 0.3, 0.1],  # 4: down .6 -> short 99.5 -> 99.0: +.5 pt
            [0.2, 0.7, 0.1],  # 5
            [0.2, 0.7, 0.1],  # 6
            [0.4, 0.35, 0.25],  # 7: down .4 < threshold
            [0.9, 0.05, 0.05],  # 8: down .9 -> short 100.0 (next open) -> 101: -1 pt
            [0.2, 0.7, 0.1],  # 9
        ]
    )
    return bars, labels, proba


def test_backtest_of_a_constructed_path():
    bars, labels, proba = constructed_path()
    plan = trade_plan(bars, labels, 5, np.arange(10))
    assert plan["entry_price"].iloc[0] == 100.25 and plan["exit_price"].iloc[0] == pytest.approx(
        101
    )
    assert np.isnan(plan["entry_price"].iloc[9])  # no next bar
    r = backtest(plan, proba, COSTS, threshold=0.5)
    # net per trade: (.75 - .5) * 5 = 1.25; (.5 - .5) * 5 = 0; (-1 - .5) * 5 = -7.5
    assert (r["trades"], r["long"], r["short"], r["skipped_while_in_trade"]) == (3, 1, 2, 1)
    assert r["pnl_usd"] == pytest.approx(-6.25)
    assert r["gross_pnl_usd"] == pytest.approx(1.25)
    assert r["costs_usd"] == pytest.approx(7.5)
    assert r["hit_rate"] == pytest.approx(1 / 3)
    assert r["max_drawdown_usd"] == pytest.approx(7.5)  # equity 0, 1.25, 1.25, -6.25
    assert r["daily"]["date"] == ["2024-01-09", "2024-01-10"]
    assert r["daily"]["pnl_usd"] == pytest.approx([1.25, -7.5])
    daily = np.array([1.25, -7.5])
    assert r["sharpe"] == pytest.approx(daily.mean() / daily.std(ddof=1) * np.sqrt(252))


def test_overlapping_trades_and_no_trades():
    bars, labels, proba = constructed_path()
    plan = trade_plan(bars, labels, 5, np.arange(10))
    r = backtest(plan, proba, COSTS, threshold=0.5, overlap=True)
    assert r["trades"] == 4  # row 1 trades too: long 100.5 -> 101, net 0
    assert r["pnl_usd"] == pytest.approx(-6.25)
    none = backtest(plan, proba, COSTS, threshold=0.95)
    assert none["trades"] == 0 and none["pnl_usd"] == 0.0
    assert none["hit_rate"] is None and none["sharpe"] is None
    assert none["daily"]["pnl_usd"] == [0.0, 0.0]


def test_train_results_carry_the_evaluation():
    from tests.factory import evalplan

    result = evalplan.plan().train["xgboost"]
    for split in ("val", "test"):
        m = result["metrics"][split]
        assert {"accuracy", "macro_f1", "log_loss", "brier", "log_loss_skill"} <= set(m)
        assert {"calibration_error", "confusion_matrix", "precision", "recall"} <= set(m)
    bt = result["metrics"]["test"]["backtest"]
    assert bt["rows"] == result["metrics"]["test"]["n"]
    assert bt["trades"] == bt["long"] + bt["short"]
    # the per-day series that PBO and the deflated Sharpe read: one entry per trading day
    daily = bt["daily"]
    assert len(daily["date"]) == len(daily["pnl_usd"]) == bt["days"]
    assert daily["date"] == sorted(daily["date"])
    assert sum(daily["pnl_usd"]) == pytest.approx(bt["pnl_usd"])


def test_the_reliability_curve_bins_the_top_label():
    y = np.array([0, 0, 1, 2])
    p = np.array([[0.95, 0.03, 0.02], [0.91, 0.05, 0.04], [0.5, 0.3, 0.2], [0.1, 0.35, 0.55]])
    curve = reliability_curve(y, p)
    assert curve["count"] == [2, 2]  # bins [0.5, 0.6) and [0.9, 1]
    assert curve["accuracy"] == [0.5, 1.0]
    assert curve["confidence"] == pytest.approx([0.525, 0.93])


def test_chance_macro_f1_is_what_calls_independent_of_the_labels_score():
    from factory.evaluation.scores import chance_macro_f1

    rng = np.random.default_rng(0)
    y = rng.choice(3, size=200_000, p=[0.2, 0.6, 0.2])
    calls = rng.choice(3, size=len(y), p=[1 / 3, 1 / 3, 1 / 3])
    observed = classification_report(y, np.eye(3)[calls] * 0.9 + 0.1 / 3)["macro_f1"]
    assert chance_macro_f1(y, calls) == pytest.approx(observed, abs=0.005)
    assert chance_macro_f1(y, np.ones_like(y)) == pytest.approx(0.75 / 3, abs=0.005)
