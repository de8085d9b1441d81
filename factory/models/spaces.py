"""Hyperparameter search spaces: one declarative form, one function that samples it.

A model's space is `SEARCH_SPACE` on its Params class (models/boosting_params.py,
models/deep_params.py), read through the registry (`ModelEntry.search_space`): a dict
of parameter name -> one of

    ("int", low, high)                  an integer in [low, high]
    ("int", low, high, "log")           the same, sampled on a log scale
    ("float", low, high)                a float in [low, high]
    ("float", low, high, "log")         the same, sampled on a log scale
    ("categorical", [choice, ...])      one of the choices (str, int, float or bool)

Every name is a field of the Params class; whatever the space does not name keeps the
job's own value (its profile and `--param` overrides). `suggest` turns a space into
`trial.suggest_*` calls; the trial is duck-typed (an Optuna trial under a worker), so
this module imports no search library and stays as light as the registry. Values are
handed to the model as the strings `--param` takes (`as_param_strings`), cast back by
field type (models/params.py), so a trial trains exactly what `submit --param` would.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from factory.errors import ConfigError

KINDS = ("int", "float", "categorical")
Space = dict[str, tuple]


def check_space(space: Space, params_cls: type) -> Space:
    """`space`, once every entry is well formed and names a field of `params_cls`; else a
    one-line ConfigError naming the entry."""
    fields = {f.name for f in dataclasses.fields(params_cls)}
    for name, spec in space.items():
        if name not in fields or name == "profile":
            raise ConfigError(f"search space of {params_cls.__name__}: {name!r} is not a field")
        _check_entry(f"{params_cls.__name__}.{name}", spec)
    return space


def _check_entry(name: str, spec: Any) -> None:
    if not isinstance(spec, tuple) or not spec or spec[0] not in KINDS:
        raise ConfigError(f"search space {name}: {spec!r} is not one of {KINDS}")
    kind = spec[0]
    if kind == "categorical":
        choices = spec[1] if len(spec) == 2 else None
        if not isinstance(choices, (list, tuple)) or not choices:
            raise ConfigError(f"search space {name}: categorical needs a list of choices")
        return
    log = len(spec) == 4 and spec[3] == "log"
    if len(spec) not in (3, 4) or (len(spec) == 4 and not log):
        raise ConfigError(f"search space {name}: want ({kind!r}, low, high[, 'log'])")
    low, high = spec[1], spec[2]
    number = int if kind == "int" else (int, float)
    if not (isinstance(low, number) and isinstance(high, number) and low < high):
        raise ConfigError(f"search space {name}: bounds {low!r}, {high!r} (want low < high)")
    if log and low <= 0:
        raise ConfigError(f"search space {name}: a log scale needs low > 0")


def suggest(trial: Any, space: Space) -> dict[str, Any]:
    """One value per entry of `space`, asked of `trial` (`suggest_int`, `suggest_float`,
    `suggest_categorical`); in the space's order. A trial that already holds a value for
    a name answers it again (Optuna does): asking twice never samples twice."""
    values: dict[str, Any] = {}
    for name, spec in space.items():
        kind, log = spec[0], len(spec) == 4
        if kind == "int":
            values[name] = trial.suggest_int(name, spec[1], spec[2], log=log)
        elif kind == "float":
            values[name] = trial.suggest_float(name, float(spec[1]), float(spec[2]), log=log)
        else:
            values[name] = trial.suggest_categorical(name, list(spec[1]))
    return values


def as_param_strings(values: dict[str, Any]) -> dict[str, str]:
    """Sampled values as `--param` strings (floats in full: repr round-trips exactly)."""
    out = {}
    for name, value in values.items():
        if isinstance(value, float):
            out[name] = repr(value) if math.isfinite(value) else str(value)
        else:
            out[name] = str(value)
    return out


def describe(space: Space) -> list[dict[str, Any]]:
    """The space as rows {name, kind, range, scale}: what `factory models --space` prints."""
    rows = []
    for name, spec in space.items():
        if spec[0] == "categorical":
            rows.append({"name": name, "kind": "categorical", "range": json.dumps(list(spec[1]))})
            continue
        scale = "log" if len(spec) == 4 else "linear"
        rows.append(
            {"name": name, "kind": spec[0], "range": f"[{spec[1]}, {spec[2]}]", "scale": scale}
        )
    return rows


def to_json(space: Space) -> dict[str, list]:
    """The space as JSON (tuples as lists): what `factory models --space --json` prints."""
    out: dict[str, list] = {}
    for name, spec in space.items():
        out[name] = [spec[0], list(spec[1])] if spec[0] == "categorical" else list(spec)
    return out
