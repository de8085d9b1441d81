"""Storage preflight: the storage root must be writable (with room) before a job is claimed.

Also the storage layout for worker/ and submitter/, which never import factory
themselves: `Layout` (every path under the root) and `resolve_home` (the one way to
choose the root from --home, $FACTORY_HOME or ./factory_home)."""

from __future__ import annotations

from pathlib import Path

from factory.layout import Layout, ensure_writable, resolve_home

__all__ = ["MIN_FREE_BYTES", "Layout", "preflight", "resolve_home"]

MIN_FREE_BYTES = 256 * 2**20


def preflight(home: Path, min_free_bytes: int = MIN_FREE_BYTES) -> Path:
    """Raise a one-line FactoryError when `home` cannot take checkpoints and results."""
    layout = Layout(home)
    ensure_writable(layout.checkpoints_root(), min_free_bytes)
    ensure_writable(layout.models_root())
    ensure_writable(layout.ledger_dir())
    return home
