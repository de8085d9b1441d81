"""Hyperparameters of every model: frozen dataclasses, profiles, casting from strings.

Light on purpose (no torch, no xgboost): `submit` validates `--param` values with it
before anything is enqueued. Each model file takes its Params class from here.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Union

from factory.errors import ConfigError

N_CLASSES = 3  # label -1 / 0 / +1 -> class 0 / 1 / 2 (as factory.training_data)
PROFILE_NAMES = ("tiny", "default")
DEVICES = ("auto", "cpu", "cuda")
AMP_MODES = ("auto", "bf16", "fp16", "off")
_POSITIVE = ("lookback", "hidden_size", "num_layers", "batch_size", "epochs", "learning_rate")
_POSITIVE += ("patience", "checkpoint_every_s", "report_every_batches")


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _cast_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not a boolean")


def _cast(value: Any, kind: Any) -> Any:
    """Cast `value` (usually a string) to the annotated type `kind`."""
    origin = typing.get_origin(kind)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if value is None or str(value).strip().lower() in ("none", "null", ""):
            return None
        return _cast(value, args[0])
    if kind is bool:
        return _cast_bool(value)
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{value!r} is not an integer")
        return int(value) if not isinstance(value, str) else int(value.strip())
    if kind is float:
        return float(value)
    return str(value)


def params_from(
    params_cls: type, profiles: dict[str, dict[str, Any]], profile: str, overrides: dict[str, Any]
) -> Any:
    """`params_cls` at `profile`, with `overrides` cast by field type; unknown keys refused."""
    if profile not in profiles:
        raise ConfigError(
            f"unknown profile {profile!r}; fix: use one of {', '.join(sorted(profiles))}"
        )
    hints = typing.get_type_hints(params_cls)
    valid = [f.name for f in dataclasses.fields(params_cls) if f.name != "profile"]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {', '.join(unknown)} for {params_cls.__name__}; "
            f"fix: use only {', '.join(valid)}"
        )
    values = dict(profiles[profile])
    for key, raw in overrides.items():
        try:
            values[key] = _cast(raw, hints[key])
        except (TypeError, ValueError):
            kind = getattr(hints[key], "__name__", str(hints[key]))
            raise ConfigError(
                f"parameter {key}={raw!r} is not a valid {kind}; fix: pass e.g. "
                f"{key}={values.get(key)}"
            ) from None
    return params_cls(profile=profile, **values)


def check_positive(params: Any, *names: str) -> None:
    """One-line ConfigError unless every named field of `params` is > 0."""
    bad = [f"{n}={getattr(params, n)}" for n in names if not getattr(params, n) > 0]
    if bad:
        raise ConfigError(f"parameters must be > 0: {', '.join(bad)}")


@dataclass(frozen=True)
class XGBoostParams:
    profile: str = "default"
    n_estimators: int = 2000
    learning_rate: float = 0.05
    max_depth: int = 6
    min_child_weight: float = 1.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    max_bin: int = 256
    early_stopping_rounds: int = 100
    checkpoint_every_rounds: int = 100
    checkpoint_every_s: float = 120.0
    seed: int = 0
    nthread: int = 4
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_positive(
            self,
            "n_estimators",
            "learning_rate",
            "max_depth",
            "max_bin",
            "early_stopping_rounds",
            "checkpoint_every_rounds",
            "checkpoint_every_s",
            "nthread",
        )
        if not (0 < self.subsample <= 1 and 0 < self.colsample_bytree <= 1):
            raise ConfigError("subsample and colsample_bytree must lie in (0, 1]")

    @property
    def sampling(self) -> bool:
        return self.subsample < 1 or self.colsample_bytree < 1

    def booster_params(self) -> dict[str, Any]:
        return {
            "objective": "multi:softprob",
            "num_class": N_CLASSES,
            "eval_metric": "mlogloss",
            "tree_method": "hist",
            "device": self.device,
            "learning_rate": self.learning_rate,
            "max_depth": self.max_depth,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "reg_lambda": self.reg_lambda,
            "max_bin": self.max_bin,
            "seed": self.seed,
            "nthread": self.nthread,
            "verbosity": 0,
        }


XGBOOST_TINY = {
    "n_estimators": 40,
    "learning_rate": 0.3,
    "max_depth": 3,
    "subsample": 1.0,
    "colsample_bytree": 1.0,
    "max_bin": 64,
    "early_stopping_rounds": 10,
    "checkpoint_every_rounds": 10,
    "nthread": 2,
}


@dataclass(frozen=True)
class LSTMParams:
    profile: str = "default"
    lookback: int = 64
    hidden_size: int = 128
    num_layers: int = 2
    dropout: float = 0.2
    batch_size: int = 512
    epochs: int = 50
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 8
    grad_clip: float = 1.0
    checkpoint_every_s: float = 120.0
    report_every_batches: int = 100
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: str = "auto"  # auto (fp16 on CUDA, off on CPU) | bf16 (needs cuDNN >= 9.13) | fp16 | off

    def __post_init__(self) -> None:
        check_positive(self, *_POSITIVE)
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout={self.dropout} must lie in [0, 1)")
        if self.device not in DEVICES or self.amp not in AMP_MODES:
            raise ConfigError(
                f"device={self.device} amp={self.amp}; fix: device one of {', '.join(DEVICES)}, "
                f"amp one of {', '.join(AMP_MODES)}"
            )


LSTM_TINY = {
    "lookback": 16,
    "hidden_size": 16,
    "num_layers": 1,
    "dropout": 0.1,
    "batch_size": 128,
    "epochs": 3,
    "learning_rate": 3e-3,
    "weight_decay": 0.0,
    "patience": 3,
    "report_every_batches": 10,
}


# model name -> (Params class, {profile: overrides of the class defaults})
PARAMS: dict[str, tuple[type, dict[str, dict[str, Any]]]] = {
    "xgboost": (XGBoostParams, {"tiny": XGBOOST_TINY, "default": {}}),
    "lstm": (LSTMParams, {"tiny": LSTM_TINY, "default": {}}),
}


def resolve_params(model_name: str, params: dict[str, Any]) -> Any:
    """The model's params from string values; `profile` (default "default") picks the base."""
    if model_name not in PARAMS:
        raise ConfigError(f"unknown model {model_name!r}; fix: use one of {', '.join(PARAMS)}")
    overrides = dict(params)
    profile = str(overrides.pop("profile", "default"))
    params_cls, profiles = PARAMS[model_name]
    return params_from(params_cls, profiles, profile, overrides)
