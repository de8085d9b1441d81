"""The storage layout under the storage root ("home"), as in DESIGN.md."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from factory.errors import FactoryError

DEFAULT_HOME = "factory_home"


def resolve_home(home: str | os.PathLike | None) -> Path:
    """`home`, else $FACTORY_HOME, else ./factory_home."""
    chosen = home or os.environ.get("FACTORY_HOME") or DEFAULT_HOME
    return Path(chosen).expanduser().absolute()


def raw_dir(home: Path) -> Path:
    return home / "data" / "raw"


def processed_dir(home: Path, symbol: str) -> Path:
    return home / "data" / "processed" / symbol


def dataset_dir(home: Path, symbol: str, dataset_id: str) -> Path:
    return processed_dir(home, symbol) / dataset_id


def ensure_writable(path: Path, min_free_bytes: int = 0) -> Path:
    """Create `path` if needed and prove it is writable (and has room); else one-line error."""
    fix = "pass a writable --home or set FACTORY_HOME"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise FactoryError(f"cannot write to {path} ({reason}); fix: {fix}") from exc
    free = shutil.disk_usage(path).free
    if free < min_free_bytes:
        raise FactoryError(
            f"{path} has {free / 2**20:.0f} MiB free, {min_free_bytes / 2**20:.0f} MiB needed; "
            f"fix: free space or {fix}"
        )
    return path
