"""Files written whole: a file's sha256 (and a manifest's entry of it), and a folder that
appears complete or not at all."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_SHA256 = re.compile(r"[0-9a-f]{64}")


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 4 MiB chunks."""
    digest = hashlib.sha256()
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
