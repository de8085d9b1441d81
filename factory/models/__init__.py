"""The model registry: one name per model, each behind the interface of models/base.py.

Model modules (torch, xgboost) are imported only when a model is asked for, so the
registry's names and `factory.models.params` are cheap to import (the CLI uses them).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from factory.errors import ConfigError

if TYPE_CHECKING:
    from factory.models.base import Model

# name -> "module:Class"
MODELS: dict[str, str] = {
    "xgboost": "factory.models.xgboost_model:XGBoostModel",
    "lightgbm": "factory.models.lightgbm_model:LightGBMModel",
    "catboost": "factory.models.catboost_model:CatBoostModel",
    "lstm": "factory.models.lstm:LSTMModel",
    "gru": "factory.models.gru:GRUModel",
    "tcn": "factory.models.tcn:TCNModel",
    "patchtst": "factory.models.patchtst:PatchTSTModel",
    "itransformer": "factory.models.itransformer:ITransformerModel",
    "tft": "factory.models.tft:TFTModel",
}
MODEL_NAMES = tuple(MODELS)


def get_model(name: str) -> type[Model]:
    """The model class registered as `name`; a one-line error listing the known names."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; fix: use one of {', '.join(MODEL_NAMES)}")
    module, cls = MODELS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def load_model(directory) -> Model:
    """A model saved with `Model.save(directory)`, whatever its kind."""
    from factory.models.base import CONFIG_FILE

    config = json.loads((Path(directory) / CONFIG_FILE).read_text())
    return get_model(config["model"]).load(directory)


__all__ = ["MODELS", "MODEL_NAMES", "get_model", "load_model"]
