"""What the submitter may ask for: model names and parameter checks (no torch imported)."""

from __future__ import annotations

from factory.models import MODEL_NAMES, resolve_params


def model_names() -> list[str]:
    return list(MODEL_NAMES)


def check_params(model: str, params: dict[str, str]) -> None:
    """A one-line ConfigError for an unknown key or a bad value; nothing else."""
    resolve_params(model, params)


def search_space(model: str) -> dict | None:
    """The model's search space (factory.models.spaces), checked; None when it has none."""
    from factory.models import model_entry
    from factory.models.spaces import check_space

    entry = model_entry(model)
    space = entry.search_space
    return None if space is None else check_space(space, entry.params)


def describe_space(model: str) -> tuple[list[dict], dict]:
    """(rows for a table, the JSON form) of the model's search space; ([], {}) for none."""
    from factory.models.spaces import describe, to_json

    space = search_space(model)
    return (describe(space), to_json(space)) if space else ([], {})


def model_rows() -> list[dict]:
    """One row per registered model: its name, profiles and whether it has a search space."""
    from factory.models import MODELS

    return [
        {
            "model": name,
            "profiles": ",".join(sorted(entry.profiles)),
            "search_space": ",".join(entry.search_space or {}) or None,
        }
        for name, entry in MODELS.items()
    ]
