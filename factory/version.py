"""The code version recorded in every dataset manifest and job spec.

A code version is `<package version>+src.<hash>`: the hash covers the source files
of the project's four packages (path and bytes of every `.py` file), so an editable
checkout, a wheel, an sdist or `pip install git+...` of the same source all report
the same version, and any edit gives a new one. It is also a valid PEP 440 version:
the wheel a plan ships (jobs.code_wheel) is stamped with it. The git commit, when
there is one, is shown (`factory --version`), never compared.
"""

from __future__ import annotations

import functools
import hashlib
import re
import subprocess
from pathlib import Path

from factory import __version__

# the distribution's top-level packages: the code a job runs is all of them
PACKAGES = ("factory", "jobs", "submitter", "worker")
SOURCE_ROOT = Path(__file__).resolve().parent.parent
HASH_CHARS = 12
VERSION_PATTERN = re.compile(rf"^[0-9]+(\.[0-9]+)*\+src\.[0-9a-f]{{{HASH_CHARS}}}$")


def source_files(root: Path = SOURCE_ROOT) -> list[Path]:
    """Every source file of the four packages under `root`, in a stable order."""
    files: list[Path] = []
    for package in PACKAGES:
        files.extend(p for p in (root / package).rglob("*.py") if "__pycache__" not in p.parts)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def source_hash(root: Path = SOURCE_ROOT) -> str:
    """sha256 over (relative path, bytes) of every source file, shortened."""
    digest = hashlib.sha256()
    for path in source_files(root):
        rel = path.relative_to(root).as_posix().encode()
        body = path.read_bytes()
        digest.update(b"%d:%s%d:" % (len(rel), rel, len(body)))
        digest.update(body)
    return digest.hexdigest()[:HASH_CHARS]


@functools.lru_cache(maxsize=4)
def code_version(root: Path = SOURCE_ROOT) -> str:
    """`<package version>+src.<source hash>` of the code under `root` (default: this code)."""
    return f"{__version__}+src.{source_hash(root)}"


def is_code_version(text: str) -> bool:
    """Whether `text` has the form of a code version (untrusted input from Redis)."""
    return isinstance(text, str) and VERSION_PATTERN.match(text) is not None


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The short commit of the checkout this code runs from, or None outside git.

    Shown to people only: two installs of the same source compare by code_version().
    """
    if not (SOURCE_ROOT / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(SOURCE_ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


def describe() -> str:
    """One line for `factory --version`: the code version, where it runs from, the commit."""
    commit = git_commit()
    where = f"git checkout {SOURCE_ROOT} at {commit}" if commit else f"installed at {SOURCE_ROOT}"
    return f"ml-factory {code_version()} ({where})"


def data_code_version() -> str:
    """The version that enters dataset ids.

    Only the package version: a dataset does not change when an unrelated file is
    committed, and the data pipeline's behaviour is tied to the release number.
    """
    return __version__
