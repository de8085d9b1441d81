"""Job specs read from Redis are untrusted: every field is checked where it is parsed."""

from __future__ import annotations

import json

import pytest

from jobs.plan import build_plan
from jobs.spec import JobSpec, SpecError
from jobs.versioning import code_version

CONFIG = {"symbol": "MES", "tick_size": 0.25, "tick_value_usd": 1.25, "tz": "UTC"}


def data_spec(**dataset) -> dict:
    fields = {"raw_path": "data/raw/MES_1m.parquet", "raw_sha256": "ab" * 32, "config": CONFIG}
    spec = JobSpec(kind="data", symbol="MES", code=code_version(), dataset=fields | dataset)
    return spec.to_dict()


def test_every_spec_of_a_submitted_plan_passes_the_checks():
    base = JobSpec.from_dict(data_spec())
    plan = build_plan(
        base, ["xgboost", "lstm"], 5, {"xgboost": {"profile": "tiny"}}, data_spec=base
    )
    for entry in plan.entries:
        assert JobSpec.from_json(entry.spec.to_json()) == entry.spec


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"dataset": {"config": CONFIG | {"symbol": "../../../x"}}}, "../../../x"),
        ({"dataset": {"raw_path": "/etc/passwd"}}, "/etc/passwd"),
        ({"dataset": {"raw_path": "data/../../x.csv"}}, "leaves the storage root"),
        ({"symbol": "../x"}, "'../x'"),
        ({"symbol": "mes x"}, "plain symbol"),
        ({"code": "../../x"}, "code"),
        ({"params": {"depth": 4}}, "param 'depth'"),
        ({"horizon": True}, "horizon"),
        ({"dataset": {"config": CONFIG | {"tz": "Mars/Olympus"}}}, "timezone"),
    ],
)
def test_a_crafted_data_spec_is_refused_in_one_line_naming_the_field(change, named):
    raw = data_spec()
    for key, value in change.items():
        raw[key] = raw[key] | value if isinstance(value, dict) and key != "params" else value
    with pytest.raises(SpecError) as caught:
        JobSpec.from_json(json.dumps(raw))
    message = str(caught.value)
    assert named in message and "\n" not in message and "fix:" in message
    assert caught.value.permanent


@pytest.mark.parametrize(
    "dataset",
    [
        {"dataset_dir": "../outside", "dataset_id": "abc"},
        {"dataset_dir": "data/processed/MES/abc", "dataset_id": "../abc"},
        {"from_job": "../../etc"},
        {"from_job": "x", "dataset_dir": "data"},
    ],
)
def test_a_model_job_naming_a_dataset_outside_the_root_is_refused(dataset):
    raw = JobSpec(kind="train", symbol="MES", code=code_version(), model="xgboost").to_dict()
    raw["dataset"], raw["horizon"] = dataset, 5
    with pytest.raises(SpecError, match="bad job spec"):
        JobSpec.from_dict(raw)


def test_a_model_job_for_an_unknown_model_or_fold_is_refused():
    raw = JobSpec(kind="cv", symbol="MES", code=code_version(), model="xgboost").to_dict()
    raw |= {"dataset": {"from_job": "data-mes-1"}, "horizon": 5, "fold": 3, "folds": 3}
    with pytest.raises(SpecError, match="fold 3 of 3"):
        JobSpec.from_dict(raw)
    with pytest.raises(SpecError, match=r"model 'os\.system'"):
        JobSpec.from_dict(raw | {"fold": 0, "model": "os.system"})
    assert JobSpec.from_dict(raw | {"fold": 0}).fold == 0
