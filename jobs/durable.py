"""Whether a file copied into the shared storage has reached durable storage (issue 11).

A Drive mount acknowledges a write once the bytes are in the session's local cache; they
reach Drive's servers seconds to minutes later, or never if the session dies first. Where
the platform can say what its servers hold, a publisher asks before it publishes, so a
consumer is not sent to a file that exists only in a dead session's cache:

- `NoCheck` ("none", the default): the platform cannot tell; nothing is waited for, and
  the consumers' own wait and fallback (jobs.handoff) cover a file that never arrives.
- `DriveApiCheck` ("drive"): Google Drive API v3, on Colab after
  `google.colab.auth.authenticate_user()` (the worker notebook does it when asked). A
  path under the mount's `MyDrive` folder is walked from Drive's root folder by name
  (`files.list`, one call per folder not yet known), and the file is confirmed when a
  file of that name holds the same MD5 (`md5Checksum`) as the local copy.

`wait_durable` asks until every file is confirmed or a bound passes, and answers the
files that were not; the publisher then publishes anyway and says so: the consumers'
protocol still holds, the check only makes a lost file rarer. A checker that fails
(the API unreachable, credentials expired) counts as "not confirmed", logged once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from factory.errors import ConfigError
from factory.files import file_digest

log = logging.getLogger("jobs.durable")
CHECKS = ("none", "drive")
DRIVE_FOLDER = "application/vnd.google-apps.folder"
DRIVE_MOUNT_DIR = "MyDrive"  # Colab mounts My Drive at /content/drive/MyDrive


class DurabilityCheck(Protocol):
    name: str

    def confirmed(self, path: Path, md5: str) -> bool:
        """Whether durable storage holds `path` with these bytes (their MD5, hex)."""
        ...


class NoCheck:
    """The platform cannot confirm anything: every file counts as confirmed at once."""

    name = "none"

    def confirmed(self, path: Path, md5: str) -> bool:
        return True


class DriveApiCheck:
    """Confirms files under a Drive mount through the Drive API v3 (`service` is what
    `googleapiclient.discovery.build("drive", "v3")` returns, or a test's fake)."""

    name = "drive"

    def __init__(self, service: Any, mount_root: Path) -> None:
        self.service = service
        self.mount_root = Path(mount_root)
        self._folders: dict[tuple[str, str], str] = {}  # (parent id, name) -> folder id

    @classmethod
    def for_storage(cls, home: Path) -> DriveApiCheck:
        """The check for a storage root on Colab's Drive mount, with the credentials
        that `google.colab.auth.authenticate_user()` left (application default ones)."""
        mount = next((p for p in [home, *home.parents] if p.name == DRIVE_MOUNT_DIR), None)
        if mount is None:
            raise ConfigError(
                f"--durability drive: the storage root {home} is not under a Drive mount "
                f"(.../{DRIVE_MOUNT_DIR}); fix: --durability none, or a storage root on Drive"
            )
        try:
            import google.auth
            from googleapiclient.discovery import build
        except ImportError as exc:
            raise ConfigError(
                f"--durability drive needs the Google API client ({exc.name} is missing); fix: "
                "run on Colab, or pip install google-api-python-client google-auth"
            ) from exc
        scopes = ["https://www.googleapis.com/auth/drive.metadata.readonly"]
        credentials, _ = google.auth.default(scopes=scopes)
        return cls(build("drive", "v3", credentials=credentials, cache_discovery=False), mount)

    def confirmed(self, path: Path, md5: str) -> bool:
        try:
            rel = Path(path).relative_to(self.mount_root)
        except ValueError:
            raise ConfigError(
                f"--durability drive: {path} is not under the Drive mount {self.mount_root}"
            ) from None
        parent = "root"
        for part in rel.parts[:-1]:
            found = self._folder(parent, part)
            if found is None:
                return False  # the folder itself has not reached Drive yet
            parent = found
        files = self._children(parent, rel.name, folder=False)
        return any(f.get("md5Checksum") == md5 for f in files)

    def _folder(self, parent: str, name: str) -> str | None:
        known = self._folders.get((parent, name))
        if known is None:
            found = self._children(parent, name, folder=True)
            if not found:
                return None
            known = self._folders[(parent, name)] = found[0]["id"]
        return known

    def _children(self, parent: str, name: str, *, folder: bool) -> list[dict]:
        kind = "=" if folder else "!="
        query = (
            f"name = '{_quoted(name)}' and '{_quoted(parent)}' in parents and "
            f"mimeType {kind} '{DRIVE_FOLDER}' and trashed = false"
        )
        request = self.service.files().list(
            q=query, spaces="drive", fields="files(id, md5Checksum)", pageSize=100
        )
        return list(request.execute().get("files") or [])


def _quoted(value: str) -> str:
    """A value inside a Drive query's single quotes."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def make_check(name: str, home: Path) -> DurabilityCheck:
    """The check `name` (one of CHECKS) for the storage root `home`."""
    if name == "none":
        return NoCheck()
    if name == "drive":
        return DriveApiCheck.for_storage(Path(home))
    raise ConfigError(f"unknown durability check {name!r}; fix: one of {', '.join(CHECKS)}")


def file_md5(path: Path) -> str:
    """What Drive's `md5Checksum` of the same bytes reads."""
    return file_digest(path, "md5")


def wait_durable(
    files: Iterable[Path], check: DurabilityCheck, wait_s: float, poll_s: float = 2.0
) -> list[Path]:
    """Ask `check` about each of `files` until all are confirmed or `wait_s` passed; the
    files not confirmed (empty: all are durable)."""
    if isinstance(check, NoCheck):
        return []
    pending = {Path(f): file_md5(Path(f)) for f in files}
    deadline, failed = time.monotonic() + wait_s, False
    while pending:
        for path, md5 in list(pending.items()):
            try:
                if check.confirmed(path, md5):
                    del pending[path]
            except ConfigError:
                raise
            except Exception as exc:  # the API away, expired credentials: not confirmed
                if not failed:
                    log.warning(
                        "durability check %s failed: %s: %s", check.name, type(exc).__name__, exc
                    )
                failed = True
        left = deadline - time.monotonic()
        if not pending or left <= 0:
            break
        time.sleep(min(poll_s, left))
    return sorted(pending)
