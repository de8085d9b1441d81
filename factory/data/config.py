"""The dataset pipeline's configuration: one frozen dataclass, parsed once.

Unknown keys are rejected, never dropped. Units are in the names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from factory.errors import ConfigError

DEFAULT_HORIZONS = (5, 10, 15, 20)
AUTO_TZ = "auto"  # tz: detected from the daily break (factory.data.timezone)


def timeframe_minutes(timeframe: str) -> int:
    """Minutes in a bar of `timeframe` ('1min', '5min', '1h', '4h')."""
    try:
        delta = pd.Timedelta(pd.tseries.frequencies.to_offset(timeframe))
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"timeframe {timeframe!r} is not understood; fix: use e.g. 1min, 5min, 15min, 1h"
        ) from exc
    minutes = delta.total_seconds() / 60
    if minutes < 1 or minutes != int(minutes):
        raise ConfigError(
            f"timeframe {timeframe!r} is not a whole number of minutes >= 1; fix: use e.g. 5min"
        )
    return int(minutes)


@dataclass(frozen=True)
class DatasetConfig:
    """Everything that decides the content of a dataset (and so its id)."""

    symbol: str
    tick_size: float
    tick_value_usd: float = 0.0
    tz: str = "UTC"
    timeframe: str = "1min"
    horizons: tuple[int, ...] = DEFAULT_HORIZONS
    atr_window_bars: int = 14
    barrier_up_atr: float = 2.0
    barrier_down_atr: float = 2.0
    cost_ticks_per_side: float = 1.0
    train_frac: float = 0.70
    val_frac: float = 0.15
    embargo_min: int | None = None
    lookback_bars: int = 64
    drop_out_of_session: bool = True
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.extra:
            raise ConfigError(f"unknown dataset config keys {sorted(self.extra)}")
        object.__setattr__(self, "horizons", tuple(int(h) for h in self.horizons))
        self._check()

    def _check(self) -> None:
        timeframe_minutes(self.timeframe)
        if not self.horizons or min(self.horizons) < 1:
            raise ConfigError(
                "horizons must be positive bar counts; fix: e.g. --horizons 5,10,15,20"
            )
        if len(set(self.horizons)) != len(self.horizons):
            raise ConfigError(f"horizons {list(self.horizons)} repeat a value; fix: list each once")
        if not (0 < self.train_frac < 1 and 0 < self.val_frac < 1):
            raise ConfigError("train_frac and val_frac must lie in (0, 1)")
        if self.train_frac + self.val_frac >= 1:
            raise ConfigError("train_frac + val_frac must leave rows for the test split")
        if self.atr_window_bars < 2 or self.lookback_bars < 1:
            raise ConfigError("atr_window_bars must be >= 2 and lookback_bars >= 1")
        if self.barrier_up_atr <= 0 or self.barrier_down_atr <= 0:
            raise ConfigError("barrier multipliers must be > 0")
        if self.embargo_min is not None and self.embargo_min < self.min_embargo_min:
            raise ConfigError(
                f"embargo_min={self.embargo_min} is shorter than the longest horizon "
                f"({self.min_embargo_min} min); fix: raise it or leave it unset"
            )
        if self.tz == AUTO_TZ:
            return
        try:
            pd.Timestamp("2020-01-01").tz_localize(self.tz)
        except Exception as exc:  # pytz / zoneinfo raise different types
            raise ConfigError(
                f"timezone {self.tz!r} is unknown; fix: use an IANA name like America/New_York "
                "(or auto)"
            ) from exc

    @property
    def timeframe_min(self) -> int:
        return timeframe_minutes(self.timeframe)

    @property
    def max_horizon(self) -> int:
        return max(self.horizons)

    @property
    def min_embargo_min(self) -> int:
        return self.max_horizon * self.timeframe_min

    @property
    def effective_embargo_min(self) -> int:
        return self.embargo_min if self.embargo_min is not None else self.min_embargo_min

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetConfig:
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(
                f"unknown dataset config keys {unknown}; fix: use only {sorted(names)}"
            )
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("extra")
        out["horizons"] = list(self.horizons)
        return out

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def dataset_id_for(raw_sha256: str, config: DatasetConfig) -> str:
    """The id of the dataset built from the raw file with `raw_sha256` under `config` by
    this data code: known before the build (a plan names it at submit)."""
    from factory.version import data_code_version

    payload = {"raw_sha256": raw_sha256, "config": config.to_dict(), "code": data_code_version()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
