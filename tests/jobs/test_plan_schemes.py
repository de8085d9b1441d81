"""Plans of each CV scheme: one cv job per split and model, the scheme in every cv and
ensemble spec (ids differ per scheme), purged plans as they always were."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from factory.training.cv_schemes import CvScheme
from jobs.plan import Plan, build_plan
from jobs.spec import JobSpec, SpecError
from jobs.submission import Submission, SubmitError, plan_for
from jobs.versioning import code_version

MODELS = ["xgboost", "lstm"]


def base() -> JobSpec:
    dataset = {"dataset_dir": "data/processed/MES/abc", "dataset_id": "abc"}
    return JobSpec(kind="data", symbol="MES", code=code_version(), dataset=dataset)


def plan_of(scheme: CvScheme | None = None, folds: int = 5) -> Plan:
    return build_plan(base(), MODELS, 5, {"xgboost": {"profile": "tiny"}}, folds, scheme=scheme)


def of_kind(plan: Plan, kind: str) -> list[JobSpec]:
    return [e.spec for e in plan.entries if e.spec.kind == kind]


@pytest.mark.parametrize(
    ("scheme", "splits"),
    [
        (CvScheme(folds=4), 4),
        (CvScheme("walk-forward", steps=3), 3),
        (CvScheme("walk-forward", steps=6, window="sliding"), 6),
        (CvScheme("cpcv", groups=6, test_groups=2), math.comb(6, 2)),
        (CvScheme("cpcv", groups=5, test_groups=3), math.comb(5, 3)),
    ],
)
def test_a_plan_has_one_cv_job_per_split_and_model(scheme, splits):
    plan = plan_of(scheme)
    cv = of_kind(plan, "cv")
    assert len(cv) == splits * len(MODELS)
    for model in MODELS:
        folds = [s for s in cv if s.model == model]
        assert [s.fold for s in folds] == list(range(splits))
        assert all(s.folds == splits and s.cv == scheme.to_spec() for s in folds)
    (ens,) = of_kind(plan, "ensemble")
    assert ens.cv == scheme.to_spec() and ens.folds == splits
    ens_deps = next(e.depends_on for e in plan.entries if e.spec.kind == "ensemble")
    assert {s.job_id for s in cv} <= set(ens_deps)
    for entry in plan.entries:  # what Redis and the ledger hold reads back the same
        assert JobSpec.from_json(entry.spec.to_json()) == entry.spec
    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_job_ids_differ_per_scheme_and_purged_ids_are_unchanged():
    purged, default = plan_of(CvScheme(folds=5)), plan_of()
    assert purged.job_ids == default.job_ids
    for spec in of_kind(purged, "cv") + of_kind(purged, "ensemble"):
        assert "cv" not in spec.to_dict()  # the spec, and so its id, as before schemes
    plans = [
        purged,
        plan_of(CvScheme("walk-forward", steps=5)),
        plan_of(CvScheme("walk-forward", steps=5, window="sliding")),
        plan_of(CvScheme("cpcv", groups=5, test_groups=1)),  # also 5 splits
    ]
    ids = [{s.job_id for s in of_kind(p, "cv") + of_kind(p, "ensemble")} for p in plans]
    for i in range(len(ids)):
        for j in range(i + 1, len(ids)):
            assert not ids[i] & ids[j]
    # train and report jobs do not depend on the scheme
    assert {s.job_id for s in of_kind(plans[0], "train")} == {
        s.job_id for s in of_kind(plans[3], "train")
    }


def test_no_cv_means_no_cv_jobs_and_no_ensemble_whatever_the_scheme():
    plan = build_plan(
        base(), MODELS, 5, {}, cv=False, scheme=CvScheme("cpcv", groups=4, test_groups=2)
    )
    assert not of_kind(plan, "cv") and not of_kind(plan, "ensemble")


def cv_spec(**changes) -> dict:
    spec = of_kind(plan_of(CvScheme("cpcv", groups=4, test_groups=2)), "cv")[0].to_dict()
    return spec | changes


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"folds": 5}, "6 splits, not folds=5"),
        ({"cv": {"scheme": "cpcv", "groups": 4}}, "is not a CV scheme"),
        ({"cv": {"scheme": "cpcv", "groups": 4, "test_groups": True}}, "whole numbers"),
        ({"cv": {"scheme": "nope"}}, "is not a CV scheme"),
        ({"cv": "cpcv"}, "must be an object"),
        ({"kind": "train", "fold": -1, "folds": 0}, "a train job names a CV scheme"),
    ],
)
def test_a_crafted_scheme_is_refused_in_one_line(changes, named):
    with pytest.raises(SpecError) as caught:
        JobSpec.from_dict(cv_spec(**changes))
    message = str(caught.value)
    assert named in message and "\n" not in message and caught.value.permanent


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"scheme": "cpcv", "groups": 4, "test_groups": 4}, "--test-groups 4"),
        ({"scheme": "walk-forward", "steps": 0}, "--steps 0"),
        ({"scheme": "walk-forward", "window": "rolling"}, "--window 'rolling'"),
        ({"scheme": "kfold"}, "--cv 'kfold'"),
        ({"scheme": "cpcv", "groups": 20, "test_groups": 10}, "at most 100"),
    ],
)
def test_a_bad_scheme_is_a_submit_error_before_anything_else(fields, message):
    sub = Submission(models=("xgboost",), symbol="MES", dataset=Path("nowhere"), **fields)
    with pytest.raises(SubmitError, match=message):
        plan_for(sub)
