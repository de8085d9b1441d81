"""One job, one id: a worker's train job and `factory train` on the same dataset."""

from __future__ import annotations

from factory.data.config import DatasetConfig
from factory.data.dataset import build_dataset
from factory.data.synthetic import synthetic_bars
from factory.training.identity import train_job_id
from factory.version import code_version
from jobs.submission import Submission, plan_for


def _train_spec(plan):
    return next(e.spec for e in plan.entries if e.spec.kind == "train")


def test_a_plans_train_job_has_the_id_factory_train_gives_it(tmp_path):
    raw = tmp_path / "MES_1m.csv"
    synthetic_bars("MES", days=3, seed=1).to_csv(raw)
    home = tmp_path / "home"
    sub = Submission(
        models=("xgboost",), symbol="MES", raw=raw, horizon=5, params=("profile=tiny",), home=home
    )
    plan = plan_for(sub)
    data = next(e.spec for e in plan.entries if e.spec.kind == "data")
    train = _train_spec(plan)
    # the dataset the data job will build has the id the plan expected
    built = build_dataset(
        home / data.dataset["raw_path"], DatasetConfig.from_dict(data.dataset["config"]), home
    )
    assert train.dataset == {"from_job": data.job_id, "dataset_id": built.dataset_id}
    local = train_job_id(code_version(), "MES", built.dataset_id, "xgboost", 5, {"profile": "tiny"})
    assert train.job_id == local
    # a plan on the dataset built already: the same job, the same id
    again = plan_for(
        Submission(
            models=("xgboost",),
            symbol="MES",
            dataset=built.dataset_dir,
            horizon=5,
            params=("max_depth=3", "profile=tiny"),  # tiny's own depth, spelled out
            home=home,
        )
    )
    assert _train_spec(again).job_id == local
