"""The one job id (factory.training.identity)."""

from __future__ import annotations

import pytest

from factory.errors import ConfigError
from factory.training.identity import job_id, train_job_id


def _id(dataset="d1", horizon=5, code="0.1.0+src.a", **params):
    return train_job_id(code, "MES", dataset, "xgboost", horizon, params or {"profile": "tiny"})


def test_a_train_id_depends_on_the_resolved_params():
    a = _id(profile="tiny", max_depth="3")
    assert a == _id(profile="tiny")  # 3 is tiny's depth: one job, spelled two ways
    assert a != _id(profile="tiny", max_depth="4")
    assert a != _id(dataset="d2") != _id(horizon=10)
    assert a != _id(code="0.1.0+src.b")  # other code, another job
    assert a.startswith("train-mes-xgboost-") and len(a.rsplit("-", 1)[1]) == 20


def test_unknown_params_are_refused():
    with pytest.raises(ConfigError, match="max_dept"):
        _id(max_dept="3")


def test_the_id_reads_kind_symbol_label_and_fold():
    assert job_id("cv", "MGC", "lstm", {"a": 1}, fold=2).startswith("cv-mgc-lstm-f2-")
    assert job_id("cv", "MGC", "lstm", {"a": 1}) != job_id("cv", "MGC", "lstm", {"a": 2})
