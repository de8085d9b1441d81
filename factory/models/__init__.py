"""The model registry: one `ModelEntry` per model name, the one place that lists them.

An entry names the model's class ("module:Class", imported only when the model is
asked for) and its Params dataclass, which carries the model's profiles (and, when a
model has one, its hyperparameter search space, `SEARCH_SPACE`). The Params classes
live with their family (models/boosting_params.py, models/deep_params.py) and import
neither torch nor a boosting library, so listing names and resolving parameters stay
cheap: the `submit` CLI does both (jobs/catalog.py).
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from factory.errors import ConfigError
from factory.models.boosting_params import CatBoostParams, LightGBMParams, XGBoostParams
from factory.models.deep_params import (
    GRUParams,
    ITransformerParams,
    LSTMParams,
    PatchTSTParams,
    TCNParams,
    TFTParams,
)
from factory.models.params import params_from, profiles_of

if TYPE_CHECKING:
    from factory.models.base import Model


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: its name, its class (by path) and its Params dataclass."""

    name: str
    model: str  # "module:Class"
    params: type

    @property
    def profiles(self) -> dict[str, dict[str, Any]]:
        """{profile name: overrides of the Params defaults}."""
        return profiles_of(self.params)

    @property
    def search_space(self) -> dict[str, Any] | None:
        """The model's hyperparameter search space; None until it has one."""
        return getattr(self.params, "SEARCH_SPACE", None)

    def model_class(self) -> type[Model]:
        module, cls = self.model.split(":")
        return getattr(importlib.import_module(module), cls)

    def resolve(self, values: dict[str, Any]) -> Any:
        """The Params from string values; `profile` (default "default") picks the base."""
        overrides = dict(values)
        profile = str(overrides.pop("profile", "default"))
        return params_from(self.params, profile, overrides)


MODELS: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        ModelEntry("xgboost", "factory.models.xgboost_model:XGBoostModel", XGBoostParams),
        ModelEntry("lightgbm", "factory.models.lightgbm_model:LightGBMModel", LightGBMParams),
        ModelEntry("catboost", "factory.models.catboost_model:CatBoostModel", CatBoostParams),
        ModelEntry("lstm", "factory.models.rnn:LSTMModel", LSTMParams),
        ModelEntry("gru", "factory.models.rnn:GRUModel", GRUParams),
        ModelEntry("tcn", "factory.models.tcn:TCNModel", TCNParams),
        ModelEntry("patchtst", "factory.models.patchtst:PatchTSTModel", PatchTSTParams),
        ModelEntry(
            "itransformer", "factory.models.itransformer:ITransformerModel", ITransformerParams
        ),
        ModelEntry("tft", "factory.models.tft:TFTModel", TFTParams),
    )
}
MODEL_NAMES = tuple(MODELS)


def model_entry(name: str) -> ModelEntry:
    """The entry registered as `name`; a one-line error listing the known names."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; fix: use one of {', '.join(MODEL_NAMES)}")
    return MODELS[name]


def get_model(name: str) -> type[Model]:
    """The model class registered as `name`."""
    return model_entry(name).model_class()


def resolve_params(model_name: str, params: dict[str, Any]) -> Any:
    """The model's Params from string values; `profile` (default "default") picks the base."""
    return model_entry(model_name).resolve(params)


def load_model(directory) -> Model:
    """A model saved with `Model.save(directory)`, whatever its kind."""
    from factory.models.base import CONFIG_FILE

    config = json.loads((Path(directory) / CONFIG_FILE).read_text())
    return get_model(config["model"]).load(directory)


__all__ = ["MODELS", "MODEL_NAMES", "ModelEntry", "get_model", "load_model", "model_entry"]
__all__ += ["resolve_params"]
