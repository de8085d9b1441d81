"""Planted signals (factory.data.signals): causal, learnable, and not learnable once the
labels are shuffled — the suite's end-to-end check that features, labels, splits and
windows line up. bench/planted_signal.py runs it for every model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from factory.data.config import DatasetConfig
from factory.data.dataset import build_dataset
from factory.data.signals import SIGNALS, parse_signals, planted_drift
from factory.data.synthetic import synthetic_bars, write_raw
from factory.errors import ConfigError
from factory.evaluation.scores import (
    chance_macro_f1,
    class_prior,
    classification_report,
    decide,
)
from factory.models import get_model, resolve_params
from factory.training.checkpoint import CheckpointStore
from factory.training.local_context import LocalContext
from factory.training.training_data import load_training_data

ALL = tuple(sorted(SIGNALS))


def test_every_drift_uses_only_the_past_and_the_clock():
    rng = np.random.default_rng(0)
    z, sigma = rng.standard_normal(600), np.full(600, 1e-4)
    tod = (18 * 60 + np.arange(600) * 3) % 1440  # sweeps the clock, both windows included
    before = planted_drift(ALL, z, sigma, tod)
    changed = z.copy()
    changed[300:] = 10.0  # corrupt the future from minute 300 on
    after = planted_drift(ALL, changed, sigma, tod)
    np.testing.assert_array_equal(before[:301], after[:301])  # minute 300 sees up to 299
    assert not np.array_equal(before[301:], after[301:])  # the test can fail
    for name in ALL:
        assert np.abs(planted_drift((name,), z, sigma, tod)).max() > 0, name


def test_signal_names_are_checked():
    assert parse_signals("reversal, momentum") == ("momentum", "reversal")
    assert parse_signals(None) == ()
    with pytest.raises(ConfigError, match=r"unknown signal\(s\) \['alpha'\]; fix: use any of"):
        parse_signals("momentum,alpha")


def test_no_signal_leaves_the_bars_as_they_were():
    plain = synthetic_bars("MES", days=2, seed=4)
    assert plain.equals(synthetic_bars("MES", days=2, seed=4, signals=()))
    assert not plain.equals(synthetic_bars("MES", days=2, seed=4, signals=("time_of_day",)))


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    home = tmp_path_factory.mktemp("planted")
    bars = synthetic_bars("MES", days=20, seed=3, signals=ALL)
    raw = write_raw(bars, home / "MES_planted.parquet")
    config = DatasetConfig(symbol="MES", tick_size=0.25, horizons=(5,), lookback_bars=32)
    data = load_training_data(build_dataset(raw, config, home).dataset_dir, 5)
    y = data.y.copy()
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):  # labels shuffled within each split
        rows = data.split_rows(split)
        y[rows] = rng.permutation(y[rows])
    return home, data, dataclasses.replace(data, y=y)


def skill_on_test(model_name: str, data, home, tag: str) -> tuple[float, float, float]:
    """(log-loss skill, macro-F1, chance macro-F1) on test of a tiny model fitted on data."""
    params = resolve_params(model_name, {"profile": "tiny"})
    ctx = LocalContext(CheckpointStore(home, f"{model_name}-{tag}"))
    model = get_model(model_name)(params).fit(data, ctx).calibrate(data)
    y, prior = data.labels("test"), class_prior(data.labels("train"))
    proba = model.predict_proba(data, "test")
    report = classification_report(y, proba, prior)
    return report["log_loss_skill"], report["macro_f1"], chance_macro_f1(y, decide(proba, prior))


@pytest.mark.parametrize("model_name", ["xgboost", "lightgbm", "catboost", "lstm"])
def test_a_planted_signal_is_learned_and_shuffled_labels_are_not(planted, model_name):
    home, data, shuffled = planted
    skill, f1, chance = skill_on_test(model_name, data, home, "planted")
    assert skill > 0.01 and f1 > chance + 0.03, (skill, f1, chance)
    skill, f1, chance = skill_on_test(model_name, shuffled, home, "shuffled")
    assert skill < 0.005 and f1 < chance + 0.02, (skill, f1, chance)
