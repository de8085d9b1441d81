"""Purged k-fold: purge and embargo against a brute force, no overlap with the test span,
inner splits away from the test fold, and OOF predictions that cover every eligible row
once per model and align between tabular and sequence models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from factory.errors import ConfigError
from factory.training.context import StopTraining
from factory.training.cv import load_fold, purged_kfold, run_cv_fold, save_fold
from factory.training.ensemble import assemble_oof
from factory.training.training_data import load_training_data
from tests.factory import evalplan

NS_MIN = 60_000_000_000


def random_case(seed: int, n: int = 160):
    """A gappy minute index, t1 = t + 0..12 bars ahead (some NaT late: a test fold holding
    one loses every training row after it), a random eligible mask."""
    rng = np.random.default_rng(seed)
    steps = rng.choice([1, 1, 1, 2, 5, 60], size=n)
    index = pd.DatetimeIndex(
        pd.Timestamp("2024-03-04", tz="UTC") + pd.to_timedelta(np.cumsum(steps), unit="min")
    ).as_unit("ns")
    ahead = np.minimum(np.arange(n) + rng.integers(0, 13, size=n), n - 1)
    t1 = pd.Series(index[ahead], index=index)
    t1[(rng.random(n) < 0.1) & (np.arange(n) > 0.7 * n)] = pd.NaT  # unknown ends, late only
    eligible = rng.random(n) < 0.8
    return index, t1, eligible


def brute_force(index, t1, eligible, test, embargo):
    """The training rows of a fold, by the definitions, one row at a time."""
    ts = list(index)
    inf = pd.Timestamp.max.tz_localize("UTC")
    end_of = [inf if pd.isna(v) else v for v in t1]
    start = ts[test[0]]
    end = max(max(end_of[i] for i in test), ts[test[-1]])
    if end == inf:
        until = inf
    elif isinstance(embargo, int):
        last = max(i for i in range(len(ts)) if ts[i] <= end)
        until = ts[last + embargo] if last + embargo < len(ts) else inf
    else:
        until = end + embargo
    train = []
    for r in np.flatnonzero(eligible):
        if r in set(test):
            continue
        overlaps = ts[r] <= end and end_of[r] >= start
        embargoed = end < ts[r] <= until
        if not overlaps and not embargoed:
            train.append(r)
    return np.array(train, dtype=np.int64)


EMBARGOES = [0, 7, pd.Timedelta(minutes=9), pd.Timedelta(0)]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("embargo", EMBARGOES, ids=str)
def test_purge_and_embargo_match_brute_force(seed, embargo):
    index, t1, eligible = random_case(seed)
    folds = purged_kfold(index, t1, eligible, 4, embargo)
    rows = np.flatnonzero(eligible)
    assert np.array_equal(np.concatenate([f.test_rows for f in folds]), rows)
    for f in folds:
        assert (np.diff(rows.searchsorted(f.test_rows)) == 1).all()  # contiguous
        assert np.array_equal(f.train_rows, brute_force(index, t1, eligible, f.test_rows, embargo))
        assert f.purged + f.embargoed + len(f.train_rows) + len(f.test_rows) == len(rows)


@pytest.mark.parametrize("seed", range(6))
def test_no_training_row_overlaps_its_test_span(seed):
    index, t1, eligible = random_case(seed)
    t1_ns = pd.DatetimeIndex(t1).as_unit("ns").asi8.copy()
    ts = index.asi8
    t1_ns[pd.isna(t1).to_numpy()] = np.iinfo(np.int64).max
    embargo = pd.Timedelta(minutes=10)
    for f in purged_kfold(index, t1, eligible, 5, embargo):
        start = ts[f.test_rows[0]]
        end = max(t1_ns[f.test_rows].max(), ts[f.test_rows[-1]])
        for rows in (f.train_rows, f.inner_train_rows, f.inner_val_rows):
            assert not np.isin(rows, f.test_rows).any()
            # [t, t1] of every training row is disjoint from the test span [start, end] ...
            assert ((t1_ns[rows] < start) | (ts[rows] > end)).all()
            # ... and nothing starts inside the embargo after it (nothing at all after an
            # unknown end)
            after = ts[rows] > end
            if end == np.iinfo(np.int64).max:
                assert not after.any()
            else:
                assert (ts[rows][after] > end + embargo.value).all()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("embargo", [3, pd.Timedelta(minutes=4)], ids=str)
def test_inner_split_is_purged_and_never_touches_the_test_fold(seed, embargo):
    index, t1, eligible = random_case(seed, n=300)
    t1_ns = pd.DatetimeIndex(t1).as_unit("ns").asi8.copy()
    t1_ns[pd.isna(t1).to_numpy()] = np.iinfo(np.int64).max
    for f in purged_kfold(index, t1, eligible, 3, embargo):
        inner = np.concatenate([f.inner_train_rows, f.inner_val_rows])
        assert np.isin(inner, f.train_rows).all() and not np.isin(inner, f.test_rows).any()
        assert f.inner_train_rows.max() < f.inner_val_rows.min()
        val_start = index.asi8[f.inner_val_rows[0]]
        assert (t1_ns[f.inner_train_rows] < val_start).all()
        if isinstance(embargo, int):
            assert (f.inner_train_rows <= f.inner_val_rows[0] - embargo).all()
        else:
            assert (index.asi8[f.inner_train_rows] <= val_start - embargo.value).all()


def test_bad_fold_counts_are_refused():
    index, t1, eligible = random_case(0)
    with pytest.raises(ConfigError, match="at least 2"):
        purged_kfold(index, t1, eligible, 1)
    with pytest.raises(ConfigError, match="fewer folds"):
        purged_kfold(index, t1, eligible & (np.arange(len(index)) < 5), 3)


# --- real folds of a tiny plan ------------------------------------------------------


@pytest.fixture(scope="module")
def plan():
    return evalplan.plan()


def test_every_eligible_row_has_exactly_one_oof_prediction_per_model(plan):
    data = load_training_data(plan.dataset_dir, evalplan.HORIZON)
    eligible = data.split_rows("train")
    for model, frames in plan.oof.items():
        oof = pd.concat(frames)
        assert not oof.index.duplicated().any(), model
        assert oof.index.equals(data.index[eligible]), model
        assert np.array_equal(oof["y"].to_numpy(), data.y[eligible])
        assert np.array_equal(oof["row"].to_numpy(), eligible)
        p = oof[["p_down", "p_flat", "p_up"]].to_numpy()
        assert np.allclose(p.sum(axis=1), 1.0) and (p >= 0).all()


def test_tabular_and_sequence_oof_align_on_timestamps(plan):
    tab, seq = pd.concat(plan.oof["xgboost"]), pd.concat(plan.oof["lstm"])
    assert tab.index.equals(seq.index)
    assert np.array_equal(tab["y"].to_numpy(), seq["y"].to_numpy())
    aligned, dropped = assemble_oof(plan.oof)
    assert dropped == 0 and len(aligned) == len(tab)


def test_fold_results_record_rows_and_metrics(plan):
    for model, results in plan.cv.items():
        for k, r in enumerate(results):
            assert (r["model"], r["fold"], r["folds"]) == (model, k, evalplan.FOLDS)
            assert r["embargo"] == 16  # max(horizon 5, lookback 16) bars
            test = r["test_range"]
            assert test["n"] == r["rows"]["test"] == len(plan.oof[model][k])
            for seg in r["train_ranges"]:
                assert seg["last"] < test["first"] or seg["first"] > test["last"]
            assert sum(s["n"] for s in r["train_ranges"]) == r["rows"]["train"]
            m = r["metrics"]["test"]
            assert {"log_loss", "brier_skill", "confusion_matrix", "backtest"} <= set(m)
            assert len(r["oof_sha256"]) == 64


def test_a_fold_resumes_through_its_context(plan, tmp_path):
    """Stopped after its first checkpoint, a fold resumes and ends as an uninterrupted one."""
    args = (plan.dataset_dir, "xgboost", evalplan.HORIZON, evalplan.PARAMS["xgboost"], 0)
    args += (evalplan.FOLDS, None)
    with pytest.raises(StopTraining):
        run_cv_fold(*args, evalplan.context(tmp_path, "cv-f0", stop=lambda: True))
    result, oof = run_cv_fold(*args, evalplan.context(tmp_path, "cv-f0"))
    assert result["resumed"] and result["resumed_from"] == 10
    assert result["oof_sha256"] == plan.cv["xgboost"][0]["oof_sha256"]
    saved = save_fold(result, oof, tmp_path / "fold0")
    again, frame = load_fold(saved)
    assert again == result and frame.equals(oof)
