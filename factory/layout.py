"""The storage layout under the storage root ("home"), as in DESIGN.md.

    data/raw/<file>                          raw bars (`submit --raw` copies them here)
    data/processed/<SYMBOL>/<dataset_id>/    datasets
    checkpoints/<job_id>/                    a job's checkpoints and their manifest
    models/<job_id>/                         bundles (models/.staged/<job_id>-<attempt>/ first)
    results/<plan_id>/                       a plan's report
    ledger/<plan_id>.json                    the plan as submitted

Every path that a spec, a result, a manifest or the ledger records is relative to
the root (POSIX separators): a laptop, a Colab tab and a container mount it at
different places. `relative_to_home` makes such a path, `resolve_in_home` reads one
back and refuses an absolute path or one that climbs out of the root.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath

from factory.errors import FactoryError

DEFAULT_HOME = "factory_home"
STAGED = ".staged"


class StoragePathError(FactoryError):
    """A recorded path that is not relative to the storage root (or climbs out of it)."""


def resolve_home(home: str | os.PathLike | None) -> Path:
    """`home`, else $FACTORY_HOME, else ./factory_home."""
    chosen = home or os.environ.get("FACTORY_HOME") or DEFAULT_HOME
    return Path(chosen).expanduser().absolute()


def plain_name(value: str, what: str) -> str:
    """`value` as one path component (no separator, not '.' or '..')."""
    if not isinstance(value, str) or value in ("", ".", "..") or any(c in value for c in "/\\\0"):
        raise StoragePathError(f"{what} {value!r} is not a plain file name")
    return value


def raw_dir(home: Path) -> Path:
    return home / "data" / "raw"


def processed_dir(home: Path, symbol: str) -> Path:
    return home / "data" / "processed" / plain_name(symbol, "symbol")


def dataset_dir(home: Path, symbol: str, dataset_id: str) -> Path:
    return processed_dir(home, symbol) / plain_name(dataset_id, "dataset id")


def checkpoints_dir(home: Path, job_id: str) -> Path:
    return home / "checkpoints" / plain_name(job_id, "job id")


def bundle_dir(home: Path, job_id: str) -> Path:
    return home / "models" / plain_name(job_id, "job id")


def staged_bundle_dir(home: Path, job_id: str, attempt: int) -> Path:
    return home / "models" / STAGED / f"{plain_name(job_id, 'job id')}-{int(attempt)}"


def results_dir(home: Path, plan_id: str) -> Path:
    return home / "results" / plain_name(plan_id, "plan id")


def ledger_dir(home: Path) -> Path:
    return home / "ledger"


def ledger_file(home: Path, plan_id: str) -> Path:
    return ledger_dir(home) / f"{plain_name(plan_id, 'plan id')}.json"


def within_home(home: Path, path: str | os.PathLike) -> str | None:
    """`path` relative to `home` (POSIX separators), or None when it lies outside.

    Compared as written first (so a symlink inside the root stays inside), then
    with every symlink resolved (so `/Users/me/Drive` and its real path agree)."""
    pairs = (
        (
            Path(os.path.normpath(os.path.abspath(path))),
            Path(os.path.normpath(os.path.abspath(home))),
        ),
        (Path(path).resolve(), Path(home).resolve()),
    )
    for target, root in pairs:
        if target.is_relative_to(root):
            return target.relative_to(root).as_posix()
    return None


def relative_to_home(home: Path, path: str | os.PathLike) -> str:
    """What to record for `path`: its path relative to the storage root; refused outside it."""
    rel = within_home(home, path)
    if rel is None:
        raise StoragePathError(
            f"{path} is outside the storage root {home}; fix: put it under the root "
            "(every recorded path is relative to the root)"
        )
    return rel


def resolve_in_home(home: Path, rel: object, what: str = "path") -> Path:
    """A recorded root-relative path (untrusted: from Redis or a file) under this `home`.

    Refuses anything but a relative POSIX path that stays inside the root: an absolute
    path, a drive, a backslash or a '..' component is an error naming `what`."""
    if not isinstance(rel, str) or not rel.strip():
        raise StoragePathError(f"{what} {rel!r} is not a path relative to the storage root")
    parts = PurePosixPath(rel).parts
    if (
        rel.startswith(("/", "~"))
        or "\\" in rel
        or "\0" in rel
        or (len(rel) > 1 and rel[1] == ":")
        or ".." in parts
    ):
        raise StoragePathError(
            f"{what} {rel!r} is absolute or leaves the storage root; refusing it (a recorded "
            "path must be relative to the root, e.g. models/<job_id>)"
        )
    return Path(home).joinpath(*parts)


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


def code_dir(home: Path) -> Path:
    """Wheels of the exact code each plan runs (written by `submit`)."""
    return home / "code"


def code_wheel_name(version: str) -> str:
    """The file name of the wheel of code version `version` (PEP 427)."""
    return f"ml_factory-{version}-py3-none-any.whl"
