"""Reading model parameters: profiles, casting string overrides, shared value checks.

Light on purpose (no torch, no xgboost, no numpy): `submit` validates `--param` values
with it before anything is enqueued. Each Params class is a frozen `TrainingParams`
dataclass in its family's module (models/boosting_params.py, models/deep_params.py)
that carries its own `PROFILES`, {profile name: overrides of the class defaults};
`params_from` builds one from a profile and string overrides, cast by field type,
unknown keys refused.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Union

from factory.errors import ConfigError

Profiles = dict[str, dict[str, Any]]  # {profile name: overrides of the class defaults}

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


def profiles_of(params_cls: type) -> Profiles:
    """The profiles `params_cls` itself defines (a subclass does not inherit them)."""
    profiles = vars(params_cls).get("PROFILES")
    if profiles is None:
        raise TypeError(f"{params_cls.__name__} defines no PROFILES of its own")
    return profiles


def params_from(params_cls: type, profile: str, overrides: dict[str, Any]) -> Any:
    """`params_cls` at `profile`, with `overrides` cast by field type; unknown keys refused."""
    profiles = profiles_of(params_cls)
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


def tiny_and_default(tiny: dict[str, Any]) -> Profiles:
    """The profiles of a Params class: "tiny" (seconds on a CPU: tests, smoke runs; it
    checkpoints at every boundary, and its permutation importance is one pass over 300
    validation rows) and "default" (real sizes: the class defaults)."""
    quick = {"checkpoint_min_interval_s": 0.0, "importance_rows": 300, "importance_repeats": 1}
    return {"tiny": quick | tiny, "default": {}}


# the `calibration` parameter of every model (factory.models.calibration)
CALIBRATION_METHODS = ("none", "temperature", "sigmoid", "isotonic")
CALIBRATIONS = ("auto", *CALIBRATION_METHODS)
# the `sample_weight` parameter of every model (factory.training.weights)
SAMPLE_WEIGHTS = ("none", "uniqueness", "uniqueness_decay")
DEFAULT_TIME_DECAY = 0.5
# used after training (calibration, feature importance): a resume ignores them
POST_FIT_PARAMS = ("calibration", "importance_rows", "importance_repeats")


@dataclass(frozen=True)
class TrainingParams:
    """The fields every model's Params has: its profile, checkpoint cadence, seed,
    sample weights, calibration and feature importance;
    and the checks that each subclass declares of its own fields: `POSITIVE` ones must
    be > 0, `FRACTIONS` must lie in (0, 1].

    A model checkpoints at every round/epoch boundary of its cadence, but skips a
    boundary while its last checkpoint is younger than `checkpoint_min_interval_s`
    (a stop request, the end of training and the `checkpoint_every_s` bound always
    checkpoint). On small data a boundary can come every second; each checkpoint is a
    write to storage and a Redis call, so this keeps both bounded.
    """

    POSITIVE: ClassVar[tuple[str, ...]] = ("checkpoint_every_s",)
    FRACTIONS: ClassVar[tuple[str, ...]] = ()

    profile: str = "default"
    checkpoint_every_s: float = 120.0
    # 60 s: a checkpoint costs a Redis command (issue 11's bill), and at most a minute of
    # work is redone after a kill
    checkpoint_min_interval_s: float = 60.0  # in [0, checkpoint_every_s]
    seed: int = 0
    # fitted on the validation rows after the prior shift (factory.models.calibration):
    # auto = temperature for sequence models, sigmoid for the others; none = shift only
    calibration: str = "auto"
    # the train rows' weights (factory.training.weights): none = the balanced class
    # weights alone; uniqueness = times each label's average uniqueness over its span
    # [t, t1] (AFML 4.4), renormalised within each class; uniqueness_decay = also times
    # AFML 4.5's linear time decay, `time_decay` (in (-1, 1]) the oldest label's factor.
    # Default none: on the planted-signal bench (bench/uniqueness.py) uniqueness did not
    # help the tiny models (mixed, within run-to-run noise)
    sample_weight: str = "none"
    time_decay: float = DEFAULT_TIME_DECAY  # used by sample_weight=uniqueness_decay only
    # permutation importance on at most this many validation rows (0: skip it; the gain
    # importance of boosting models is always given), each feature permuted this often
    importance_rows: int = 2000
    importance_repeats: int = 2

    def __post_init__(self) -> None:
        check_positive(self, *self._declared("POSITIVE"))
        fractions = self._declared("FRACTIONS")
        bad = [f"{n}={getattr(self, n)}" for n in fractions if not 0 < getattr(self, n) <= 1]
        if bad:
            raise ConfigError(f"parameters must lie in (0, 1]: {', '.join(bad)}")
        if self.calibration not in CALIBRATIONS:
            raise ConfigError(
                f"calibration={self.calibration!r} is unknown; "
                f"fix: one of {', '.join(CALIBRATIONS)}"
            )
        self._check_weights()
        if self.importance_rows < 0 or self.importance_repeats < 1:
            raise ConfigError(
                f"importance_rows={self.importance_rows} must be >= 0 (0 skips) and "
                f"importance_repeats={self.importance_repeats} >= 1"
            )
        low, high = self.checkpoint_min_interval_s, self.checkpoint_every_s
        if not 0 <= low <= high:
            raise ConfigError(
                f"checkpoint_min_interval_s={low} must lie in [0, checkpoint_every_s={high}]; "
                "fix: lower it (0 checkpoints at every boundary)"
            )

    def _check_weights(self) -> None:
        if self.sample_weight not in SAMPLE_WEIGHTS:
            raise ConfigError(
                f"sample_weight={self.sample_weight!r} is unknown; "
                f"fix: one of {', '.join(SAMPLE_WEIGHTS)}"
            )
        if not -1.0 < self.time_decay <= 1.0:
            raise ConfigError(
                f"time_decay={self.time_decay} must lie in (-1, 1] (1: no decay, 0: down "
                "to 0 for the oldest label, below 0: the oldest fraction gets no weight)"
            )
        if self.sample_weight != "uniqueness_decay" and self.time_decay != DEFAULT_TIME_DECAY:
            raise ConfigError(
                f"time_decay={self.time_decay} has no effect with "
                f"sample_weight={self.sample_weight}; fix: add sample_weight=uniqueness_decay"
            )

    @classmethod
    def _declared(cls, name: str) -> list[str]:
        """The field names that `cls` and its bases declare in their own `name` tuple."""
        return [field for c in reversed(cls.__mro__) for field in vars(c).get(name, ())]
