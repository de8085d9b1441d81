"""The code a plan runs, shipped as a wheel under `<home>/code/` by `submit`.

The wheel is built from the very source files the submitter runs (factory.version
hashes the same files), so it holds exactly the code its version names, whether
the submitter runs from a checkout or from an install. It is built here, not by a
build backend: a pure-Python wheel is a zip with a `.dist-info` folder (PEP 427),
and an installed copy has no pyproject.toml to build from. Its bytes are
deterministic (fixed timestamps and order), so shipping the same code twice
writes nothing new. A worker running other code installs it (worker.code_install).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import redis

from factory.files import file_sha256
from factory.layout import Layout
from factory.version import SOURCE_ROOT, code_version, source_files
from jobs import keys

log = logging.getLogger("jobs.code_wheel")
DIST_NAME = "ml-factory"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can hold: reproducible bytes


@dataclass(frozen=True)
class ShippedCode:
    version: str
    wheel: str  # relative to the storage root
    sha256: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.version, "code_wheel": self.wheel, "code_wheel_sha256": self.sha256}

    @classmethod
    def from_dict(cls, data: dict) -> ShippedCode:
        return cls(data["code"], data["code_wheel"], data["code_wheel_sha256"])


def wheel_path(home: Path, version: str) -> Path:
    """Where the wheel of code `version` lies under the storage root."""
    return Layout(home).code_wheel(version)


def wheel_matches(path: Path, sha256: str | None) -> bool:
    """Whether the wheel at `path` is there and (when a checksum is known) intact."""
    return path.is_file() and (sha256 is None or file_sha256(path) == sha256)


def record(connection: redis.Redis, shipped: ShippedCode) -> None:
    """Tell workers the checksum of a shipped wheel (they verify it before installing)."""
    payload = {"wheel": shipped.wheel, "sha256": shipped.sha256}
    connection.hset(keys.CODE, shipped.version, json.dumps(payload))


def recorded_sha256(connection: redis.Redis, version: str) -> str | None:
    """The sha256 `submit` recorded for the wheel of `version`, or None (untrusted input)."""
    raw = connection.hget(keys.CODE, version)
    if raw is None:
        return None
    try:
        sha = json.loads(raw)["sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"the code record of {version} in Redis is malformed") from exc
    if not (isinstance(sha, str) and len(sha) == 64):
        raise ValueError(f"the code record of {version} in Redis is malformed")
    return sha


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _installed_metadata() -> tuple[list[str], str]:
    """Requires-Dist (without extras) and the entry_points.txt (console scripts, the
    subcommands of `factory`) of the installed distribution."""
    try:
        dist = metadata.distribution(DIST_NAME)
    except metadata.PackageNotFoundError:
        log.warning("%s is not installed: its wheel declares no dependencies", DIST_NAME)
        return [], ""
    requires = [r for r in dist.requires or [] if "extra ==" not in r]
    groups: dict[str, list[str]] = {}
    for entry in dist.entry_points:
        groups.setdefault(entry.group, []).append(f"{entry.name} = {entry.value}")
    sections = [f"[{name}]\n" + "\n".join(sorted(rows)) for name, rows in sorted(groups.items())]
    return requires, "\n\n".join(sections) + "\n" if sections else ""


def wheel_bytes(root: Path = SOURCE_ROOT) -> tuple[str, bytes]:
    """(version, the wheel's bytes) for the source under `root`."""
    version = code_version(root)
    info = f"ml_factory-{version}.dist-info"
    requires, entry_points = _installed_metadata()
    meta = [
        "Metadata-Version: 2.1",
        f"Name: {DIST_NAME}",
        f"Version: {version}",
        "Requires-Python: >=3.10",
    ]
    files: list[tuple[str, bytes]] = [
        (p.relative_to(root).as_posix(), p.read_bytes()) for p in source_files(root)
    ]
    files.append(
        (
            f"{info}/METADATA",
            ("\n".join(meta + [f"Requires-Dist: {r}" for r in requires]) + "\n").encode(),
        )
    )
    wheel_meta = (
        "Wheel-Version: 1.0\nGenerator: ml-factory\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files.append((f"{info}/WHEEL", wheel_meta.encode()))
    if entry_points:
        files.append((f"{info}/entry_points.txt", entry_points.encode()))
    record = [f"{name},{_record_hash(data)},{len(data)}" for name, data in files]
    files.append((f"{info}/RECORD", ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files:
            entry = zipfile.ZipInfo(name, date_time=_EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(entry, data)
    return version, buffer.getvalue()


def ship_code(home: Path, root: Path = SOURCE_ROOT) -> ShippedCode:
    """Write the wheel of this code to `<home>/code/` (atomically, verified) once."""
    version, data = wheel_bytes(root)
    sha = hashlib.sha256(data).hexdigest()
    path = wheel_path(home, version)
    folder = path.parent
    rel = Layout(home).relative(path)
    if path.is_file() and file_sha256(path) == sha:
        return ShippedCode(version, rel, sha)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    if file_sha256(tmp) != sha:
        tmp.unlink(missing_ok=True)
        raise OSError(f"{tmp}: the wheel read back differs from what was written")
    os.replace(tmp, path)
    return ShippedCode(version, rel, sha)
