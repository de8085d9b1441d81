"""Storage preflight: the storage root must be writable (with room) before a job is claimed.

Also the layout paths the submitter needs (it never imports factory itself)."""

from __future__ import annotations

from pathlib import Path

from factory.layout import ensure_writable, ledger_dir, results_dir

__all__ = ["MIN_FREE_BYTES", "ledger_dir", "preflight", "results_dir"]

MIN_FREE_BYTES = 256 * 2**20


def preflight(home: Path, min_free_bytes: int = MIN_FREE_BYTES) -> Path:
    """Raise a one-line FactoryError when `home` cannot take checkpoints and results."""
    for sub in ("checkpoints", "models", "ledger"):
        ensure_writable(home / sub, min_free_bytes if sub == "checkpoints" else 0)
    return home
