"""The storage layout under the storage root ("home"), as in DESIGN.md: one `Layout`.

    data/raw/<file>                          raw bars (`submit --raw` copies them here)
    data/processed/<SYMBOL>/<dataset_id>/    datasets
    checkpoints/<job_id>/                    a job's checkpoints and their manifest
    models/<job_id>/                         bundles (models/.staged/<job_id>-<attempt>/ first;
                                             `factory train` writes models/local/<job_id>/)
    results/<plan_id>/                       a plan's report
    ledger/<plan_id>.json                    the plan as submitted
    code/<wheel>                             the exact code of each plan
    redis/                                   the embedded Redis of local commands

Every path that a spec, a result, a manifest or the ledger records is relative to
the root (POSIX separators): a laptop, a Colab tab and a container mount it at
different places. `Layout.relative` makes such a path, `Layout.resolve` reads one
back and refuses an absolute path or one that climbs out of the root. The storage
root itself is chosen one way: `resolve_home` (--home, else $FACTORY_HOME, else
./factory_home); worker/ and submitter/ reach both through jobs.storage.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from factory.errors import FactoryError

DEFAULT_HOME = "factory_home"
STAGED = ".staged"
LOCAL = "local"


class StoragePathError(FactoryError):
    """A recorded path that is not relative to the storage root (or climbs out of it)."""


def resolve_home(home: str | os.PathLike | None) -> Path:
    """`home`, else $FACTORY_HOME, else ./factory_home (absolute, `~` expanded)."""
    chosen = home or os.environ.get("FACTORY_HOME") or DEFAULT_HOME
    return Path(chosen).expanduser().absolute()


def plain_name(value: str, what: str) -> str:
    """`value` as one path component (no separator, not '.' or '..')."""
    if not isinstance(value, str) or value in ("", ".", "..") or any(c in value for c in "/\\\0"):
        raise StoragePathError(f"{what} {value!r} is not a plain file name")
    return value


def plain_symbol(value: object, what: str = "symbol") -> str:
    """`value` as a symbol the CLI would have written (factory.data.symbols.symbol_spec):
    upper case letters, digits and '_' only; anything else (a path, a space) is refused."""
    if (
        not isinstance(value, str)
        or not value
        or len(value) > 64
        or value != value.strip().upper()
        or not value.replace("_", "").isalnum()
    ):
        raise StoragePathError(
            f"{what} {value!r} is not a plain symbol name; fix: use letters, digits and '_' "
            "only, e.g. MES"
        )
    return value


def relative_parts(rel: object, what: str = "path") -> tuple[str, ...]:
    """The parts of a recorded root-relative path (untrusted: from Redis or a file).

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
            f"{what} {rel!r} is absolute or leaves the storage root; refusing it (a "
            "recorded path must be relative to the root, e.g. models/<job_id>)"
        )
    return parts


def code_wheel_name(version: str) -> str:
    """The file name of the wheel of code version `version` (PEP 427)."""
    return f"ml_factory-{version}-py3-none-any.whl"


@dataclass(frozen=True)
class Layout:
    """Every path under one storage root `home`; no other code builds them by hand.

    Bundles stay at models/<job_id>/, not models/<plan_id>/<job_id>/ as DESIGN.md's
    table has it: a job id is a content hash of the job's spec (dataset, model,
    horizon, resolved params), so every plan that contains the same job shares it.
    Submitting such a plan enqueues nothing new, and the one result of the job names
    one bundle. Under a plan's folder that bundle would belong to whichever plan ran it
    first, a later plan's result and report would point into another plan's folder, and
    recovering or cleaning up one plan could touch another's outputs. Keyed by job id, a
    job has one bundle wherever it is referenced, as checkpoints/<job_id>/ already is;
    what is a plan's own (its report) lives under results/<plan_id>/.
    """

    home: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", Path(self.home))

    @classmethod
    def at(cls, home: str | os.PathLike | None) -> Layout:
        """The layout of the root a --home option names (see `resolve_home`)."""
        return cls(resolve_home(home))

    # ---- inputs -------------------------------------------------------------------

    def raw_dir(self) -> Path:
        return self.home / "data" / "raw"

    def raw_file(self, name: str) -> Path:
        return self.raw_dir() / plain_name(name, "raw file")

    def synthetic_raw_file(
        self, symbol: str, days: int, seed: int, signals: tuple[str, ...] = ()
    ) -> Path:
        """Where synthetic bars of `symbol` (`factory data --synthetic`, the demo) go."""
        planted = "".join(f"_{name}" for name in signals)
        return self.raw_file(f"{symbol}_synthetic_{int(days)}d_s{int(seed)}{planted}.parquet")

    def processed_dir(self, symbol: str) -> Path:
        return self.home / "data" / "processed" / plain_name(symbol, "symbol")

    def dataset_dir(self, symbol: str, dataset_id: str) -> Path:
        return self.processed_dir(symbol) / plain_name(dataset_id, "dataset id")

    # ---- outputs ------------------------------------------------------------------

    def checkpoints_root(self) -> Path:
        return self.home / "checkpoints"

    def checkpoints_dir(self, job_id: str) -> Path:
        return self.checkpoints_root() / plain_name(job_id, "job id")

    def models_root(self) -> Path:
        return self.home / "models"

    def bundle_dir(self, job_id: str) -> Path:
        return self.models_root() / plain_name(job_id, "job id")

    def staged_bundle_dir(self, job_id: str, attempt: int) -> Path:
        """Where attempt `attempt` writes its bundle before the fenced result promotes it."""
        return self.models_root() / STAGED / f"{plain_name(job_id, 'job id')}-{int(attempt)}"

    def local_bundle_dir(self, job_id: str) -> Path:
        """The bundle of `factory train` (run in-process, outside any plan)."""
        return self.models_root() / LOCAL / plain_name(job_id, "job id")

    def results_dir(self, plan_id: str) -> Path:
        return self.home / "results" / plain_name(plan_id, "plan id")

    def ledger_dir(self) -> Path:
        return self.home / "ledger"

    def ledger_file(self, plan_id: str) -> Path:
        return self.ledger_dir() / f"{plain_name(plan_id, 'plan id')}.json"

    def code_dir(self) -> Path:
        """Wheels of the exact code each plan runs (written by `submit`)."""
        return self.home / "code"

    def code_wheel(self, version: str) -> Path:
        return self.code_dir() / code_wheel_name(version)

    def redis_dir(self) -> Path:
        """The embedded Redis's data, config and lock (jobs.embedded)."""
        return self.home / "redis"

    # ---- recorded paths -----------------------------------------------------------

    def within(self, path: str | os.PathLike) -> str | None:
        """`path` relative to the root (POSIX separators), or None when it lies outside.

        Compared as written first (so a symlink inside the root stays inside), then
        with every symlink resolved (so `/Users/me/Drive` and its real path agree)."""
        pairs = (
            (
                Path(os.path.normpath(os.path.abspath(path))),
                Path(os.path.normpath(os.path.abspath(self.home))),
            ),
            (Path(path).resolve(), self.home.resolve()),
        )
        for target, root in pairs:
            if target.is_relative_to(root):
                return target.relative_to(root).as_posix()
        return None

    def relative(self, path: str | os.PathLike) -> str:
        """What to record for `path`: its path relative to the root; refused outside it."""
        rel = self.within(path)
        if rel is None:
            raise StoragePathError(
                f"{path} is outside the storage root {self.home}; fix: put it under the root "
                "(every recorded path is relative to the root)"
            )
        return rel

    def resolve(self, rel: object, what: str = "path") -> Path:
        """A recorded root-relative path (untrusted: from Redis or a file) under this root.

        Refuses anything but a relative POSIX path that stays inside the root: an absolute
        path, a drive, a backslash or a '..' component is an error naming `what`."""
        parts = relative_parts(rel, what)
        return self.home.joinpath(*parts)


def resolve_in_home(home: Path, rel: object, what: str = "path") -> Path:
    """`Layout(home).resolve(rel, what)`, for callers not yet moved to `Layout`."""
    return Layout(home).resolve(rel, what)


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
