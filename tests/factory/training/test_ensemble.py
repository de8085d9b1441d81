"""Aligning OOF predictions, the two meta-learners, and an ensemble of a tiny plan."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from factory.errors import ConfigError, FactoryError
from factory.training.ensemble import assemble_oof, model_proba, run_ensemble
from factory.training.stacking import GreedySelection, LogisticStacker, meta_from_dict
from tests.factory import evalplan

TIMES = pd.date_range("2024-01-08 15:00", periods=12, freq="1min", tz="UTC", name="timestamp")


def frame(rows, seed=0, y=None):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet([1, 1, 1], size=len(rows))
    out = pd.DataFrame(p, columns=["p_down", "p_flat", "p_up"], index=TIMES[rows])
    out["y"] = (np.asarray(rows) % 3) if y is None else y
    return out


def test_alignment_drops_rows_missing_from_any_model_and_counts_them():
    frames = {
        "a": [frame(range(0, 5)), frame(range(5, 10))],  # rows 0..9
        "b": [frame(range(6, 12), 1), frame(range(2, 6), 2)],  # rows 2..11, folds unordered
    }
    aligned, dropped = assemble_oof(frames)
    assert aligned.index.equals(TIMES[2:10]) and dropped == 4  # 0, 1, 10, 11
    assert list(aligned.columns) == [
        "y",
        *[f"{m}:p_{c}" for m in "ab" for c in ("down", "flat", "up")],
    ]
    expected = pd.concat(frames["b"]).sort_index().loc[TIMES[2:10], ["p_down", "p_flat", "p_up"]]
    assert np.array_equal(model_proba(aligned, "b"), expected.to_numpy())
    assert np.array_equal(aligned["y"].to_numpy(), np.arange(2, 10) % 3)


def test_alignment_refuses_duplicates_and_disagreeing_labels():
    with pytest.raises(FactoryError, match="more than one fold"):
        assemble_oof({"a": [frame(range(5)), frame(range(4, 8))], "b": [frame(range(8))]})
    with pytest.raises(FactoryError, match="labels differ"):
        assemble_oof({"a": [frame(range(5))], "b": [frame(range(5), y=np.zeros(5, int))]})
    with pytest.raises(FactoryError, match="no out-of-fold"):
        assemble_oof({"a": [frame(range(5))], "b": []})


def bases(n=600, seed=0):
    """y and three base models: informative, weakly informative, noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    onehot = np.eye(3)[y]
    good = 0.5 * onehot + 0.5 * rng.dirichlet([1, 1, 1], size=n)
    weak = 0.15 * onehot + 0.85 * rng.dirichlet([1, 1, 1], size=n)
    noise = rng.dirichlet([2, 2, 2], size=n)
    return y, [good, weak, noise]


@pytest.mark.parametrize("cls", [LogisticStacker, GreedySelection])
def test_meta_learners_give_valid_probabilities_no_worse_than_the_worst_base(cls):
    y, probas = bases()
    meta = cls().fit(probas, y)
    p = meta.predict_proba(probas)
    assert p.shape == (len(y), 3) and (p >= 0).all() and (p <= 1).all()
    assert np.allclose(p.sum(axis=1), 1.0)
    base_losses = [log_loss(y, b, labels=[0, 1, 2]) for b in probas]
    ens = log_loss(y, p, labels=[0, 1, 2])
    assert ens <= max(base_losses)
    if cls is GreedySelection:
        assert ens <= min(base_losses) + 1e-12
        assert meta.weights_.sum() == pytest.approx(1.0) and meta.weights_[0] > 0
    again = meta_from_dict(json.loads(json.dumps(meta.to_dict())))
    assert np.allclose(again.predict_proba(probas), p)


def test_logistic_stacker_is_sklearns_multinomial_regression():
    y, probas = bases(seed=1)
    meta = LogisticStacker(C=0.5).fit(probas, y)
    X = np.hstack(
        [
            np.log(np.clip(b, 1e-6, None) / np.clip(b, 1e-6, None).sum(1, keepdims=True))
            for b in probas
        ]
    )
    ref = LogisticRegression(C=0.5, max_iter=1000).fit(X, y)
    assert np.allclose(meta.predict_proba(probas), ref.predict_proba(X), atol=1e-10)
    # two classes only: still three columns, the absent class near 0
    two = LogisticStacker().fit(probas, np.where(y == 2, 1, y))
    p = two.predict_proba(probas)
    assert p.shape == (len(y), 3) and p[:, 2].max() < 1e-9


def test_unknown_method_and_too_few_members_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="logistic, greedy"):
        run_ensemble(tmp_path, 5, {"a": [], "b": []}, {"a": "x", "b": "y"}, method="vote")
    with pytest.raises(ConfigError, match=">= 2 members"):
        run_ensemble(tmp_path, 5, {"a": []}, {"a": "x"})


@pytest.mark.parametrize("method", ["logistic", "greedy"])
def test_ensemble_of_a_tiny_plan(method, tmp_path):
    plan = evalplan.plan()
    bundles = {m: r["bundle"] for m, r in plan.train.items()}
    result, bundle = run_ensemble(
        plan.dataset_dir, evalplan.HORIZON, plan.oof, bundles, method, tmp_path / "ens"
    )
    assert json.loads(json.dumps(result)) == result
    assert result["members"] == ["xgboost", "lstm"] and result["oof_rows_dropped"] == 0
    assert result["oof_rows"] == sum(len(f) for f in plan.oof["xgboost"])
    fit = result["metrics"]["oof_fit"]["log_loss"]
    assert fit <= max(m["oof"]["log_loss"] for m in result["member_metrics"].values()) + 1e-9
    test = result["metrics"]["test"]
    assert test["n"] == plan.train["xgboost"]["metrics"]["test"]["n"]
    assert {"log_loss_skill", "brier_skill", "confusion_matrix", "backtest"} <= set(test)
    files = json.loads((bundle / "bundle.json").read_text())["files"]
    assert {"ensemble.json", "dataset.json", "members/xgboost/model.ubj"} <= set(files)


def test_leaderboard_report_of_a_tiny_plan(tmp_path):
    from factory.evaluation.report import build_leaderboard, sort_rows, write_report

    plan = evalplan.plan()
    bundles = {m: r["bundle"] for m, r in plan.train.items()}
    ens, _ = run_ensemble(plan.dataset_dir, evalplan.HORIZON, plan.oof, bundles, "greedy")
    rows = build_leaderboard(plan.train, plan.cv, ens)
    assert [r["model"] for r in rows] == ["xgboost", "lstm", "ensemble:greedy"]
    assert rows[0]["cv_folds"] == evalplan.FOLDS and rows[0]["cv_log_loss"] > 0
    paths = write_report(rows, tmp_path / "results" / "plan1", sort_by="log_loss")
    for key in (
        "csv",
        "markdown",
        "json",
        "leaderboard_png",
        "equity_png",
        "confusion_png",
        "reliability_png",
    ):
        assert paths[key].is_file() and paths[key].stat().st_size > 0, key
    assert paths["leaderboard_png"].read_bytes()[:4] == b"\x89PNG"
    board = json.loads(paths["json"].read_text())["leaderboard"]
    losses = [r["log_loss"] for r in board]
    assert losses == sorted(losses) and {r["model"] for r in board} == {r["model"] for r in rows}
    csv = pd.read_csv(paths["csv"])
    assert list(csv["model"]) == [r["model"] for r in board]
    assert "| model |" in paths["markdown"].read_text()
    best_f1 = sort_rows(rows, "macro_f1")[0]["macro_f1"]
    assert best_f1 == max(r["macro_f1"] for r in rows)
    with pytest.raises(ConfigError, match="unknown sort metric"):
        sort_rows(rows, "nope")
