"""Files written whole: a file's sha256 (and a manifest's entry of it), a folder that
appears complete or not at all, and guarded copies into a shared storage (a `guard`
called before each chunk may raise to stop the copy: a leased attempt's lease check)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_SHA256 = re.compile(r"[0-9a-f]{64}")


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 4 MiB chunks."""
    return file_digest(path, "sha256")


def file_digest(path: Path, algorithm: str) -> str:
    """The hex digest of a file by `algorithm` (a hashlib name), read in 4 MiB chunks."""
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def atomic_dir(directory: str | Path) -> Iterator[Path]:
    """A fresh temporary sibling of `directory` to fill; when the block ends it is renamed
    into `directory` (replacing an older one), and when the block raises it is removed."""
    final = Path(directory)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".tmp-{final.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_dir(tmp: Path, final: Path) -> None:
    """Rename `tmp` to `final`; an existing `final` is moved aside first, then removed."""
    if not final.exists():
        os.rename(tmp, final)
        return
    old = final.with_name(f".old-{final.name}-{os.getpid()}")
    os.rename(final, old)
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


COPY_CHUNK_BYTES = 4 << 20  # a guarded copy asks its guard again after each chunk


def no_guard() -> None:
    return None


def copy_synced(src: Path, dst: Path, guard: Callable[[], None] = no_guard) -> None:
    """Copy `src` to `dst` and fsync it, calling `guard` before each chunk."""
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while True:
            chunk = fin.read(COPY_CHUNK_BYTES)
            if not chunk:
                break
            guard()
            fout.write(chunk)
        fout.flush()
        os.fsync(fout.fileno())


def copy_tree_guarded(src: Path, dst: Path, guard: Callable[[], None] = no_guard) -> None:
    """Copy folder `src` to a new folder `dst`, file by file through `copy_synced`;
    `guard` is called before `dst` is made and before each chunk of each file."""
    guard()
    dst.mkdir(parents=True)
    for path in sorted(src.rglob("*")):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(exist_ok=True)
        elif path.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            copy_synced(path, target, guard)


@dataclass(frozen=True)
class FileEntry:
    """What a manifest records of one file: its sha256 and size."""

    sha256: str
    bytes: int

    @classmethod
    def of(cls, path: Path) -> FileEntry:
        return cls(file_sha256(path), path.stat().st_size)

    @classmethod
    def from_dict(cls, info: object, name: str) -> FileEntry:
        """An entry read from a file (untrusted); ValueError names the file when malformed."""
        sha = info.get("sha256") if isinstance(info, dict) else None
        size = info.get("bytes") if isinstance(info, dict) else None
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            raise ValueError(f"file {name}: no sha256")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"file {name}: no size in bytes")
        return cls(sha, size)

    def to_dict(self) -> dict[str, object]:
        return {"sha256": self.sha256, "bytes": self.bytes}

    def matches(self, path: Path) -> bool:
        """Whether the file at `path` has this sha256."""
        return file_sha256(path) == self.sha256


def file_entries(directory: Path) -> dict[str, FileEntry]:
    """Every file under `directory` (recursive), by relative POSIX path, in sorted order."""
    return {
        p.relative_to(directory).as_posix(): FileEntry.of(p)
        for p in sorted(Path(directory).rglob("*"))
        if p.is_file()
    }


def tree_sha256(directory: Path) -> str:
    """The sha256 of every file under `directory`: its relative path, sha256 and size (a
    hand-off's checksum: the producer records it, the consumer checks it)."""
    listing = {name: entry.to_dict() for name, entry in file_entries(directory).items()}
    return hashlib.sha256(json.dumps(listing, sort_keys=True).encode()).hexdigest()
