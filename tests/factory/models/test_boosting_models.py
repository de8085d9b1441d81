"""LightGBM and CatBoost: where checkpoints fall, sampling on resume, early stopping.

The contract every model meets is tested in test_models.py; these are the boosting
specifics (see factory/models/lightgbm_model.py and catboost_model.py).
"""

from __future__ import annotations

import pytest

from factory.data.config import DatasetConfig
from factory.data.dataset import build_dataset
from factory.data.synthetic import synthetic_bars, write_raw
from factory.models import get_model
from factory.training.checkpoint import CheckpointStore
from factory.training.context import StopTraining
from factory.training.local_context import LocalContext
from factory.training.training_data import load_training_data
from tests.factory.models.test_models import params_of

BOOSTING = ("lightgbm", "catboost")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    raw = write_raw(synthetic_bars("MES", days=6, seed=3), home / "MES_1m.parquet")
    config = DatasetConfig(symbol="MES", tick_size=0.25, tick_value_usd=1.25, horizons=(5,))
    return load_training_data(build_dataset(raw, config, home).dataset_dir, 5)


def _fit(name, params, data, ctx):
    return get_model(name)(params).fit(data, ctx)


def _stop_after(store, n_checkpoints: int) -> LocalContext:
    box = {}
    box["ctx"] = LocalContext(store, stop=lambda: len(box["ctx"].checkpoint_steps) >= n_checkpoints)
    return box["ctx"]


def _interrupted_then_resumed(name, params, data, path, n_checkpoints=1):
    store = CheckpointStore(path, "job")
    first = _stop_after(store, n_checkpoints)
    with pytest.raises(StopTraining):
        _fit(name, params, data, first)
    model = _fit(name, params, data, LocalContext(store))
    return first, model


def _whole(name, params, data, path):
    return _fit(name, params, data, LocalContext(CheckpointStore(path, "job")))


@pytest.mark.parametrize("name", BOOSTING)
def test_a_checkpoint_every_round_by_wall_time_changes_nothing(name, data, tmp_path):
    """Checkpoints after every round (wall time bound) and a resume from round 5 give
    the uninterrupted result."""
    whole = _whole(name, params_of(name), data, tmp_path / "whole")
    params = params_of(name, checkpoint_every_s="1e-9")
    first, model = _interrupted_then_resumed(name, params, data, tmp_path / "cut", 5)
    assert first.checkpoint_steps == [1, 2, 3, 4, 5]
    assert model.resumed_from_ == 5 and model.fit_summary()["bit_exact"] is True
    assert model.checkpoint_steps_[:3] == [6, 7, 8]
    assert (
        model.predict_proba(data, "test").tobytes() == whole.predict_proba(data, "test").tobytes()
    )


@pytest.mark.parametrize("name", BOOSTING)
def test_early_stopping_survives_a_resume(name, data, tmp_path):
    params = params_of(
        name, n_estimators="300", early_stopping_rounds="4", checkpoint_every_rounds="2"
    )
    whole = _whole(name, params, data, tmp_path / "whole")
    assert whole.stop_reason_ == "early_stopping"
    assert whole.n_rounds_ == whole.best_iteration_ + 1 + 4 < 300
    _, model = _interrupted_then_resumed(name, params, data, tmp_path / "cut", 2)
    assert model.resumed_from_ == 4
    keys = ("best_iteration", "best_val_mlogloss", "rounds", "stop_reason", "bit_exact")
    assert {k: model.fit_summary()[k] for k in keys} == {k: whole.fit_summary()[k] for k in keys}
    assert (
        model.predict_proba(data, "test").tobytes() == whole.predict_proba(data, "test").tobytes()
    )


def test_catboost_with_sampling_resumes_bit_exactly(data, tmp_path):
    params = params_of("catboost", bootstrap_type="Bernoulli", subsample="0.7", rsm="0.5")
    whole = _whole("catboost", params, data, tmp_path / "whole")
    _, model = _interrupted_then_resumed("catboost", params, data, tmp_path / "cut")
    assert model.fit_summary()["resumed"] is True and model.fit_summary()["bit_exact"] is True
    assert (
        model.predict_proba(data, "test").tobytes() == whole.predict_proba(data, "test").tobytes()
    )


def test_lightgbm_with_sampling(data, tmp_path):
    """Bagging and feature sampling: where checkpoints fall changes nothing (the booster
    stays in memory), but a resumed run is not bit-exact, and says so even when the
    finished job is read back."""
    sampling = {"bagging_fraction": "0.7", "bagging_freq": "1", "feature_fraction": "0.7"}
    whole = _whole("lightgbm", params_of("lightgbm", **sampling), data, tmp_path / "whole")
    every = params_of("lightgbm", checkpoint_every_s="1e-9", **sampling)
    cut = _whole("lightgbm", every, data, tmp_path / "every")
    assert len(cut.checkpoint_steps_) == 30 and cut.fit_summary()["bit_exact"] is True
    assert cut.predict_proba(data, "test").tobytes() == whole.predict_proba(data, "test").tobytes()

    params = params_of("lightgbm", **sampling)
    _, model = _interrupted_then_resumed("lightgbm", params, data, tmp_path / "cut")
    assert model.fit_summary()["resumed"] is True and model.fit_summary()["bit_exact"] is False
    again = _fit("lightgbm", params, data, LocalContext(CheckpointStore(tmp_path / "cut", "job")))
    assert again.checkpoint_steps_ == [] and again.fit_summary()["bit_exact"] is False


@pytest.mark.parametrize("name", BOOSTING)
def test_a_finished_job_is_rebuilt_from_its_last_checkpoint(name, data, tmp_path):
    store = CheckpointStore(tmp_path, "job")
    whole = _fit(name, params_of(name), data, LocalContext(store))
    again = _fit(name, params_of(name), data, LocalContext(store))
    assert again.resumed_from_ == 30 and again.checkpoint_steps_ == []
    assert (
        again.predict_proba(data, "test").tobytes() == whole.predict_proba(data, "test").tobytes()
    )
