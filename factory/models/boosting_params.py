"""Hyperparameters of the boosting models (xgboost, lightgbm, catboost) and their profiles.

Light on purpose, as models/params.py: the registry lists these classes without
importing a boosting library. Each class carries `PROFILES`: "tiny" trains in well
under a second on a CPU (tests, smoke runs), "default" has real sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from factory.errors import ConfigError
from factory.models.params import check_checkpoint_cadence, check_positive

CATBOOST_BOOTSTRAPS = ("Bayesian", "Bernoulli", "MVS", "No")

# every boosting model's tiny profile starts from these
_TINY = {
    "n_estimators": 40,
    "learning_rate": 0.3,
    "early_stopping_rounds": 10,
    "checkpoint_every_rounds": 10,
    "checkpoint_min_interval_s": 0.0,
    "nthread": 2,
}


@dataclass(frozen=True)
class BoostingParams:
    """The fields every boosting model has: rounds, early stopping, checkpoint cadence."""

    profile: str = "default"
    n_estimators: int = 2000
    learning_rate: float = 0.05
    early_stopping_rounds: int = 100
    checkpoint_every_rounds: int = 100
    checkpoint_every_s: float = 120.0
    checkpoint_min_interval_s: float = 30.0  # see params.check_checkpoint_cadence
    seed: int = 0
    nthread: int = 4

    def __post_init__(self) -> None:
        check_positive(self, "n_estimators", "learning_rate", "early_stopping_rounds")
        check_positive(self, "checkpoint_every_rounds", "checkpoint_every_s", "nthread")
        check_checkpoint_cadence(self)


@dataclass(frozen=True)
class XGBoostParams(BoostingParams):
    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": _TINY | {"max_depth": 3, "subsample": 1.0, "colsample_bytree": 1.0, "max_bin": 64},
        "default": {},
    }

    max_depth: int = 6
    min_child_weight: float = 1.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    max_bin: int = 256
    device: str = "cpu"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "max_depth", "max_bin")
        if not (0 < self.subsample <= 1 and 0 < self.colsample_bytree <= 1):
            raise ConfigError("subsample and colsample_bytree must lie in (0, 1]")

    @property
    def sampling(self) -> bool:
        return self.subsample < 1 or self.colsample_bytree < 1


@dataclass(frozen=True)
class LightGBMParams(BoostingParams):
    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": _TINY
        | {"num_leaves": 7, "min_data_in_leaf": 20, "max_bin": 63}
        | {"feature_fraction": 1.0, "bagging_fraction": 1.0, "bagging_freq": 0},
        "default": {},
    }

    num_leaves: int = 63
    max_depth: int = -1  # -1: no limit
    min_data_in_leaf: int = 100
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1  # 0: no bagging
    lambda_l2: float = 1.0
    max_bin: int = 255

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "num_leaves", "min_data_in_leaf", "max_bin")
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


@dataclass(frozen=True)
class CatBoostParams(BoostingParams):
    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": _TINY | {"depth": 4, "border_count": 32},
        "default": {},
    }

    depth: int = 6
    l2_leaf_reg: float = 3.0
    border_count: int = 254
    rsm: float = 1.0  # share of features tried per split
    bootstrap_type: str = "Bayesian"  # Bayesian | Bernoulli | MVS | No
    bagging_temperature: float = 1.0  # Bayesian only
    subsample: float = 0.8  # Bernoulli and MVS only

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "depth", "border_count")
        if not (0 < self.rsm <= 1 and 0 < self.subsample <= 1):
            raise ConfigError("rsm and subsample must lie in (0, 1]")
        if self.bootstrap_type not in CATBOOST_BOOTSTRAPS:
            raise ConfigError(
                f"bootstrap_type={self.bootstrap_type}; "
                f"fix: one of {', '.join(CATBOOST_BOOTSTRAPS)}"
            )
