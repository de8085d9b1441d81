"""`submit --tune` as a plan (jobs.search_plan): trials, then the best configuration's
train and CV, then ensemble and report; the same search twice is the same plan."""

from __future__ import annotations

import pytest

from jobs.search import FROM_STUDY
from jobs.search_plan import Tune, TuneError, tune_plan
from jobs.submission import Submission, plan_for


@pytest.fixture
def sub(small_dataset, tmp_path) -> Submission:
    return Submission(
        models=("xgboost", "lightgbm"),
        symbol="MES",
        dataset=small_dataset,
        horizon=5,
        folds=2,
        params=("profile=tiny",),
        home=tmp_path / "home",
    )


def _by_kind(plan, kind: str, model: str | None = None) -> list:
    return [e for e in plan.entries if e.spec.kind == kind and model in (None, e.spec.model)]


def test_a_tuned_model_gets_its_trials_then_its_best_configurations_jobs(sub):
    untuned = plan_for(sub)
    plan = tune_plan(untuned, Tune(("xgboost",), trials=4))
    trials = _by_kind(plan, "trial", "xgboost")
    assert len(trials) == 4 and len({t.job_id for t in trials}) == 4
    study = trials[0].spec.params["search.study"]
    assert {t.spec.params["search.study"] for t in trials} == {study}
    train = _by_kind(plan, "train", "xgboost")[0]
    assert train.spec.params[FROM_STUDY] == study
    assert set(train.depends_on) >= {t.job_id for t in trials}
    for fold in _by_kind(plan, "cv", "xgboost"):
        assert fold.spec.params[FROM_STUDY] == study and fold.depends_on == (train.job_id,)
    # lightgbm is not tuned: its jobs are the untuned plan's
    assert _by_kind(plan, "train", "lightgbm") == _by_kind(untuned, "train", "lightgbm")
    ids = set(plan.job_ids)
    for entry in plan.entries:
        assert set(entry.depends_on) <= ids, entry.spec.kind
    ensemble = _by_kind(plan, "ensemble")[0]
    assert train.job_id in ensemble.depends_on
    # the ensemble and the report are not the untuned plan's (an existing job is reused)
    assert ensemble.job_id != _by_kind(untuned, "ensemble")[0].job_id
    assert plan.submitted["tune"]["xgboost"]["study"] == study


def test_the_same_search_is_the_same_plan_and_another_is_another(sub):
    first = tune_plan(plan_for(sub), Tune(("xgboost",), trials=4))
    assert tune_plan(plan_for(sub), Tune(("xgboost",), trials=4)).plan_id == first.plan_id
    other = tune_plan(plan_for(sub), Tune(("xgboost",), trials=5))
    studies = {e.spec.params.get("search.study") for e in other.entries} - {None}
    assert other.plan_id != first.plan_id
    assert studies.isdisjoint({e.spec.params.get("search.study") for e in first.entries})


@pytest.mark.parametrize(
    "tune",
    [
        Tune(("tcn",)),  # no search space
        Tune(("catboost",)),  # not among the plan's models
        Tune(("xgboost",), trials=0),
        Tune(("xgboost",), metric="sharpe"),
        Tune(("xgboost",), hours=-1),
    ],
)
def test_a_search_that_cannot_be_planned_says_why(sub, tune):
    with pytest.raises(TuneError, match="fix:"):
        tune_plan(plan_for(sub), tune)
