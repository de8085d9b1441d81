"""What the submitter may ask for: model names and parameter checks (no torch imported)."""

from __future__ import annotations

from factory.models import MODEL_NAMES, resolve_params


def model_names() -> list[str]:
    return list(MODEL_NAMES)


def check_params(model: str, params: dict[str, str]) -> None:
    """A one-line ConfigError for an unknown key or a bad value; nothing else."""
    resolve_params(model, params)
