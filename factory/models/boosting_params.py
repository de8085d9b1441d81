"""Hyperparameters of the boosting models (xgboost, lightgbm, catboost) and their profiles.

Light on purpose, as models/params.py: the registry lists these classes without
importing a boosting library. Each class carries `PROFILES`: "tiny" trains in well
under a second on a CPU (tests, smoke runs), "default" has real sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from factory.errors import ConfigError
from factory.models.params import Profiles, TrainingParams, tiny_and_default
from factory.models.spaces import Space

# the learning rate every boosting space searches (early stopping picks the rounds)
_LEARNING_RATE = ("float", 0.01, 0.3, "log")

CATBOOST_BOOTSTRAPS = ("Bayesian", "Bernoulli", "MVS", "No")

# every boosting model's tiny profile starts from these
_TINY = dict(
    n_estimators=40,
    learning_rate=0.3,
    early_stopping_rounds=10,
    checkpoint_every_rounds=10,
    nthread=2,
)


@dataclass(frozen=True)
class BoostingParams(TrainingParams):
    """The fields every boosting model has: rounds, early stopping, round cadence, threads."""

    POSITIVE = ("n_estimators", "learning_rate", "early_stopping_rounds")
    POSITIVE += ("checkpoint_every_rounds", "nthread")

    n_estimators: int = 2000
    learning_rate: float = 0.05
    early_stopping_rounds: int = 100
    checkpoint_every_rounds: int = 100
    nthread: int = 4


@dataclass(frozen=True)
class XGBoostParams(BoostingParams):
    """Histogram trees; row/column sampling below 1 makes a resumed run not bit-exact."""

    PROFILES: ClassVar[Profiles] = tiny_and_default(
        _TINY | {"max_depth": 3, "subsample": 1.0, "colsample_bytree": 1.0, "max_bin": 64}
    )
    POSITIVE = ("max_depth", "max_bin")
    FRACTIONS = ("subsample", "colsample_bytree")
    # `submit --tune xgboost` (factory.models.spaces); sampling below 1 makes a resumed
    # trial not bit-exact, which its result says
    SEARCH_SPACE: ClassVar[Space] = {
        "max_depth": ("int", 2, 10),
        "learning_rate": _LEARNING_RATE,
        "min_child_weight": ("float", 0.5, 20.0, "log"),
        "subsample": ("float", 0.5, 1.0),
        "colsample_bytree": ("float", 0.5, 1.0),
        "reg_lambda": ("float", 1e-3, 10.0, "log"),
    }

    max_depth: int = 6
    min_child_weight: float = 1.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    max_bin: int = 256
    device: str = "cpu"

    @property
    def sampling(self) -> bool:
        return self.subsample < 1 or self.colsample_bytree < 1


@dataclass(frozen=True)
class LightGBMParams(BoostingParams):
    """Leaf-wise trees; bagging or feature_fraction makes a resumed run not bit-exact."""

    PROFILES: ClassVar[Profiles] = tiny_and_default(
        _TINY
        | {"num_leaves": 7, "min_data_in_leaf": 20, "max_bin": 63}
        | {"feature_fraction": 1.0, "bagging_fraction": 1.0, "bagging_freq": 0}
    )
    POSITIVE = ("num_leaves", "min_data_in_leaf", "max_bin")
    FRACTIONS = ("feature_fraction", "bagging_fraction")
    SEARCH_SPACE: ClassVar[Space] = {
        "num_leaves": ("int", 7, 255, "log"),
        "min_data_in_leaf": ("int", 10, 500, "log"),
        "learning_rate": _LEARNING_RATE,
        "feature_fraction": ("float", 0.5, 1.0),
        "bagging_fraction": ("float", 0.5, 1.0),
        "lambda_l2": ("float", 1e-3, 10.0, "log"),
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
    """Symmetric (oblivious) trees; a resumed run is bit-exact, row/feature sampling or
    not: a CatBoost snapshot holds the whole learning state."""

    PROFILES: ClassVar[Profiles] = tiny_and_default(_TINY | {"depth": 4, "border_count": 32})
    POSITIVE = ("depth", "border_count")
    FRACTIONS = ("rsm", "subsample")
    # the bootstrap stays the job's own (Bayesian by default): its temperature is searched
    SEARCH_SPACE: ClassVar[Space] = {
        "depth": ("int", 3, 10),
        "learning_rate": _LEARNING_RATE,
        "l2_leaf_reg": ("float", 1.0, 30.0, "log"),
        "bagging_temperature": ("float", 0.0, 5.0),
        "rsm": ("float", 0.5, 1.0),
        "border_count": ("categorical", [32, 64, 128, 254]),
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
        if self.bootstrap_type not in CATBOOST_BOOTSTRAPS:
            raise ConfigError(
                f"bootstrap_type={self.bootstrap_type}; "
                f"fix: one of {', '.join(CATBOOST_BOOTSTRAPS)}"
            )
