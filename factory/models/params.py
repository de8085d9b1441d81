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

N_CLASSES = 3  # label -1 / 0 / +1 -> class 0 / 1 / 2 (as factory.training.training_data)
PROFILE_NAMES = ("tiny", "default")
DEVICES = ("auto", "cpu", "cuda")
AMP_MODES = ("auto", "bf16", "fp16", "off")
_POSITIVE = ("lookback", "batch_size", "epochs", "learning_rate")
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


def check_checkpoint_cadence(params: Any) -> None:
    """`checkpoint_min_interval_s` must lie in [0, checkpoint_every_s].

    A model checkpoints at every round/epoch boundary of its cadence, but skips a
    boundary while its last checkpoint is younger than `checkpoint_min_interval_s`
    (a stop request, the end of training and the `checkpoint_every_s` bound always
    checkpoint). On small data a boundary can come every second; each checkpoint is a
    write to storage and a Redis call, so this keeps both bounded.
    """
    low, high = params.checkpoint_min_interval_s, params.checkpoint_every_s
    if not 0 <= low <= high:
        raise ConfigError(
            f"checkpoint_min_interval_s={low} must lie in [0, checkpoint_every_s={high}]; "
            "fix: lower it (0 checkpoints at every boundary)"
        )


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
    checkpoint_min_interval_s: float = 30.0  # see check_checkpoint_cadence
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
        check_checkpoint_cadence(self)
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
    "checkpoint_min_interval_s": 0.0,
    "nthread": 2,
}


_BOOSTING_POSITIVE = ("n_estimators", "learning_rate", "early_stopping_rounds", "nthread")
_BOOSTING_POSITIVE += ("checkpoint_every_rounds", "checkpoint_every_s")


@dataclass(frozen=True)
class LightGBMParams:
    profile: str = "default"
    n_estimators: int = 2000
    learning_rate: float = 0.05
    num_leaves: int = 63
    max_depth: int = -1  # -1: no limit
    min_data_in_leaf: int = 100
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1  # 0: no bagging
    lambda_l2: float = 1.0
    max_bin: int = 255
    early_stopping_rounds: int = 100
    checkpoint_every_rounds: int = 100
    checkpoint_every_s: float = 120.0
    checkpoint_min_interval_s: float = 30.0  # see check_checkpoint_cadence
    seed: int = 0
    nthread: int = 4

    def __post_init__(self) -> None:
        check_positive(self, *_BOOSTING_POSITIVE, "num_leaves", "min_data_in_leaf", "max_bin")
        check_checkpoint_cadence(self)
        if not (0 < self.feature_fraction <= 1 and 0 < self.bagging_fraction <= 1):
            raise ConfigError("feature_fraction and bagging_fraction must lie in (0, 1]")
        if self.max_depth == 0 or self.max_depth < -1 or self.bagging_freq < 0:
            raise ConfigError(
                f"max_depth={self.max_depth} bagging_freq={self.bagging_freq}; fix: max_depth "
                "-1 (no limit) or > 0, bagging_freq >= 0"
            )

    @property
    def sampling(self) -> bool:
        bagging = self.bagging_fraction < 1 and self.bagging_freq > 0
        return bagging or self.feature_fraction < 1


LIGHTGBM_TINY = {
    "n_estimators": 40,
    "learning_rate": 0.3,
    "num_leaves": 7,
    "min_data_in_leaf": 20,
    "feature_fraction": 1.0,
    "bagging_fraction": 1.0,
    "bagging_freq": 0,
    "max_bin": 63,
    "early_stopping_rounds": 10,
    "checkpoint_every_rounds": 10,
    "checkpoint_min_interval_s": 0.0,
    "nthread": 2,
}

CATBOOST_BOOTSTRAPS = ("Bayesian", "Bernoulli", "MVS", "No")


@dataclass(frozen=True)
class CatBoostParams:
    profile: str = "default"
    n_estimators: int = 2000
    learning_rate: float = 0.05
    depth: int = 6
    l2_leaf_reg: float = 3.0
    border_count: int = 254
    rsm: float = 1.0  # share of features tried per split
    bootstrap_type: str = "Bayesian"  # Bayesian | Bernoulli | MVS | No
    bagging_temperature: float = 1.0  # Bayesian only
    subsample: float = 0.8  # Bernoulli and MVS only
    early_stopping_rounds: int = 100
    checkpoint_every_rounds: int = 100
    checkpoint_every_s: float = 120.0
    checkpoint_min_interval_s: float = 30.0  # see check_checkpoint_cadence
    seed: int = 0
    nthread: int = 4

    def __post_init__(self) -> None:
        check_positive(self, *_BOOSTING_POSITIVE, "depth", "border_count")
        check_checkpoint_cadence(self)
        if not (0 < self.rsm <= 1 and 0 < self.subsample <= 1):
            raise ConfigError("rsm and subsample must lie in (0, 1]")
        if self.bootstrap_type not in CATBOOST_BOOTSTRAPS:
            raise ConfigError(
                f"bootstrap_type={self.bootstrap_type}; "
                f"fix: one of {', '.join(CATBOOST_BOOTSTRAPS)}"
            )


CATBOOST_TINY = {
    "n_estimators": 40,
    "learning_rate": 0.3,
    "depth": 4,
    "border_count": 32,
    "early_stopping_rounds": 10,
    "checkpoint_every_rounds": 10,
    "checkpoint_min_interval_s": 0.0,
    "nthread": 2,
}


@dataclass(frozen=True)
class SequenceParams:
    """Training fields shared by every sequence model (factory/models/deep.py trains them)."""

    profile: str = "default"
    lookback: int = 64
    dropout: float = 0.2
    batch_size: int = 512
    epochs: int = 50
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 8
    grad_clip: float = 1.0
    checkpoint_every_s: float = 120.0
    checkpoint_min_interval_s: float = 30.0  # see check_checkpoint_cadence
    report_every_batches: int = 100
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: str = "auto"  # auto (CUDA: fp16) | bf16 (RNNs need cuDNN >= 9.13) | fp16 | off

    def __post_init__(self) -> None:
        check_positive(self, *_POSITIVE)
        check_checkpoint_cadence(self)
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout={self.dropout} must lie in [0, 1)")
        if self.device not in DEVICES or self.amp not in AMP_MODES:
            raise ConfigError(
                f"device={self.device} amp={self.amp}; fix: device one of {', '.join(DEVICES)}, "
                f"amp one of {', '.join(AMP_MODES)}"
            )


def check_heads(d_model: int, n_heads: int) -> None:
    if d_model % n_heads:
        raise ConfigError(f"d_model={d_model} must be a multiple of n_heads={n_heads}")


# tiny: seconds on a CPU (lookback 16, a few small batches); patience = epochs
_SEQUENCE_TINY = {
    "lookback": 16,
    "dropout": 0.1,
    "batch_size": 128,
    "epochs": 3,
    "learning_rate": 3e-3,
    "weight_decay": 0.0,
    "patience": 3,
    "report_every_batches": 10,
    "checkpoint_min_interval_s": 0.0,
}


@dataclass(frozen=True)
class LSTMParams(SequenceParams):
    hidden_size: int = 128
    num_layers: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "hidden_size", "num_layers")


LSTM_TINY = _SEQUENCE_TINY | {"hidden_size": 16, "num_layers": 1}


@dataclass(frozen=True)
class GRUParams(LSTMParams):
    """The same fields as LSTMParams."""


GRU_TINY = _SEQUENCE_TINY | {"hidden_size": 16, "num_layers": 1}


@dataclass(frozen=True)
class TCNParams(SequenceParams):
    """Bai, Kolter & Koltun 2018; receptive field 1 + 2 (kernel_size - 1)(2^num_levels - 1)."""

    channels: int = 64
    num_levels: int = 5  # dilations 1, 2, 4, 8, 16: receptive field 125 >= lookback 64
    kernel_size: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "channels", "num_levels", "kernel_size")


TCN_TINY = _SEQUENCE_TINY | {"channels": 16, "num_levels": 3, "kernel_size": 3}


@dataclass(frozen=True)
class PatchTSTParams(SequenceParams):
    """Nie et al. 2023: its large-data sizes, lr and batch; the lookback is the dataset's."""

    batch_size: int = 128  # x n_features series per batch (channel independence)
    learning_rate: float = 1e-4
    patch_len: int = 16
    stride: int = 8
    d_model: int = 128
    n_heads: int = 16
    num_layers: int = 3
    d_ff: int = 256
    revin: bool = True  # instance normalisation per series, learnable affine

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "patch_len", "stride", "d_model", "n_heads", "num_layers", "d_ff")
        check_heads(self.d_model, self.n_heads)
        if self.patch_len > self.lookback:
            raise ConfigError(f"patch_len={self.patch_len} must be <= lookback={self.lookback}")


# 3 patches a series: with ~110 features the encoder sees ~330 short sequences a window
PATCHTST_TINY = _SEQUENCE_TINY | {
    "patch_len": 8,
    "stride": 8,
    "d_model": 8,
    "n_heads": 2,
    "num_layers": 1,
    "d_ff": 16,
}


@dataclass(frozen=True)
class ITransformerParams(SequenceParams):
    """Liu et al. 2024 (d_model 512, 8 heads; 3 layers, d_ff 512)."""

    dropout: float = 0.1
    learning_rate: float = 5e-4
    d_model: int = 512
    n_heads: int = 8
    num_layers: int = 3
    d_ff: int = 512
    use_norm: bool = False  # per-variate window normalisation (forecasting); off to classify

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "d_model", "n_heads", "num_layers", "d_ff")
        check_heads(self.d_model, self.n_heads)


ITRANSFORMER_TINY = _SEQUENCE_TINY | {"d_model": 8, "n_heads": 1, "num_layers": 1, "d_ff": 16}


@dataclass(frozen=True)
class TFTParams(SequenceParams):
    """Lim et al. 2021 (hidden 160, 4 heads, dropout 0.1, one LSTM layer, batch 128)."""

    dropout: float = 0.1
    batch_size: int = 128
    hidden_size: int = 160
    embed_size: int = 16  # each feature's own embedding (the paper: hidden_size; costly)
    n_heads: int = 4
    lstm_layers: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "hidden_size", "embed_size", "n_heads", "lstm_layers")
        check_heads(self.hidden_size, self.n_heads)


TFT_TINY = _SEQUENCE_TINY | {"lookback": 8, "hidden_size": 8, "embed_size": 2, "n_heads": 2}


# model name -> (Params class, {profile: overrides of the class defaults})
PARAMS: dict[str, tuple[type, dict[str, dict[str, Any]]]] = {
    "xgboost": (XGBoostParams, {"tiny": XGBOOST_TINY, "default": {}}),
    "lightgbm": (LightGBMParams, {"tiny": LIGHTGBM_TINY, "default": {}}),
    "catboost": (CatBoostParams, {"tiny": CATBOOST_TINY, "default": {}}),
    "lstm": (LSTMParams, {"tiny": LSTM_TINY, "default": {}}),
    "gru": (GRUParams, {"tiny": GRU_TINY, "default": {}}),
    "tcn": (TCNParams, {"tiny": TCN_TINY, "default": {}}),
    "patchtst": (PatchTSTParams, {"tiny": PATCHTST_TINY, "default": {}}),
    "itransformer": (ITransformerParams, {"tiny": ITRANSFORMER_TINY, "default": {}}),
    "tft": (TFTParams, {"tiny": TFT_TINY, "default": {}}),
}


def resolve_params(model_name: str, params: dict[str, Any]) -> Any:
    """The model's params from string values; `profile` (default "default") picks the base."""
    if model_name not in PARAMS:
        raise ConfigError(f"unknown model {model_name!r}; fix: use one of {', '.join(PARAMS)}")
    overrides = dict(params)
    profile = str(overrides.pop("profile", "default"))
    params_cls, profiles = PARAMS[model_name]
    return params_from(params_cls, profiles, profile, overrides)
