"""Search spaces (factory.models.spaces): every model's is well formed, and what a trial
samples from it is a valid set of parameters for that model."""

from __future__ import annotations

import random

import pytest

from factory.errors import ConfigError
from factory.models import MODELS
from factory.models.boosting_params import XGBoostParams
from factory.models.spaces import as_param_strings, check_space, describe, suggest, to_json

SEARCHED = ("xgboost", "lightgbm", "catboost", "lstm", "gru")


class RandomTrial:
    """The three suggest_* calls of an Optuna trial, drawn at random (and remembered)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.params: dict = {}

    def suggest_int(self, name, low, high, log=False):
        return self.params.setdefault(name, self.rng.randint(low, high))

    def suggest_float(self, name, low, high, log=False):
        return self.params.setdefault(name, self.rng.uniform(low, high))

    def suggest_categorical(self, name, choices):
        return self.params.setdefault(name, self.rng.choice(choices))


def test_the_searched_models_have_a_valid_space():
    for name in SEARCHED:
        entry = MODELS[name]
        assert entry.search_space, f"{name} has no search space"
        check_space(entry.search_space, entry.params)


@pytest.mark.parametrize("name", SEARCHED)
def test_sampled_values_are_valid_params_at_every_profile(name):
    entry = MODELS[name]
    for seed in range(20):
        trial = RandomTrial(seed)
        values = suggest(trial, entry.search_space)
        assert suggest(trial, entry.search_space) == values  # asked again: the same answer
        strings = as_param_strings(values)
        for profile in ("tiny", "default"):
            params = entry.resolve({"profile": profile} | strings)
            for key, value in values.items():
                assert getattr(params, key) == value  # the strings round-trip exactly


def test_a_bad_space_is_refused_in_one_line():
    for bad in (
        {"nope": ("int", 1, 2)},
        {"max_depth": ("int", 3, 2)},
        {"max_depth": ("integer", 1, 2)},
        {"learning_rate": ("float", 0.0, 1.0, "log")},
        {"max_bin": ("categorical", [])},
    ):
        with pytest.raises(ConfigError):
            check_space(bad, XGBoostParams)


def test_the_space_prints_as_rows_and_json():
    space = MODELS["xgboost"].search_space
    rows = {r["name"]: r for r in describe(space)}
    assert rows["learning_rate"]["scale"] == "log" and rows["max_depth"]["kind"] == "int"
    assert to_json(space)["learning_rate"] == ["float", 0.01, 0.3, "log"]
