"""The code version recorded in every dataset manifest and job spec."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from factory import __version__

_REPO_ROOT = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The short commit of the checkout this code runs from, or None outside git."""
    try:
        out = subprocess.run(
            ["git", "-C", str(_REPO_ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


def code_version() -> str:
    """`<package version>+<git commit>` or just the package version."""
    commit = git_commit()
    return f"{__version__}+{commit}" if commit else __version__


def data_code_version() -> str:
    """The version that enters dataset ids.

    Only the package version: a dataset does not change when an unrelated file is
    committed, and the data pipeline's behaviour is tied to the release number.
    """
    return __version__
