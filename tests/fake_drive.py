"""A test-only stand-in for the Google Drive API v3 client that jobs.durable uses
(`service.files().list(q=..., ...).execute()`), answering from a folder that plays
Drive's servers: with tests/lagging_storage.py, its shared copy, so a file is "on
Drive" only once the lagging storage has uploaded it.

File and folder ids are paths relative to that folder ("root" is the folder itself);
`md5Checksum` is the MD5 of the bytes the folder holds. Only the query shapes that
jobs.durable sends are understood; any other raises, so a change there shows here.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

FOLDER = "application/vnd.google-apps.folder"
_QUOTED = r"'((?:\\.|[^'\\])*)'"
_QUERY = re.compile(
    rf"name = {_QUOTED} and {_QUOTED} in parents and mimeType (=|!=) '{re.escape(FOLDER)}'"
    r" and trashed = false"
)


def _unquote(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


class FakeDrive:
    def __init__(self, server: Path) -> None:
        self.server = Path(server)
        self.calls: list[str] = []  # the queries asked, in order
        self.fail_next = 0  # the next N calls raise, as an unreachable API does

    def files(self) -> FakeDrive:
        return self

    def list(self, *, q: str, spaces: str, fields: str, pageSize: int) -> _Request:
        assert spaces == "drive" and "md5Checksum" in fields and pageSize > 0
        return _Request(self, q)

    def answer(self, q: str) -> dict:
        self.calls.append(q)
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("Drive API unreachable (fake)")
        match = _QUERY.fullmatch(q)
        if match is None:
            raise ValueError(f"query the fake does not know: {q}")
        name, parent, kind = _unquote(match[1]), _unquote(match[2]), match[3]
        folder = self.server if parent == "root" else self.server / parent
        path = folder / name
        wanted = path.is_dir() if kind == "=" else path.is_file()
        if not wanted:
            return {"files": []}
        entry = {"id": str(path.relative_to(self.server))}
        if path.is_file():
            entry["md5Checksum"] = hashlib.md5(path.read_bytes()).hexdigest()
        return {"files": [entry]}


class _Request:
    def __init__(self, drive: FakeDrive, q: str) -> None:
        self.drive, self.q = drive, q

    def execute(self) -> dict:
        return self.drive.answer(self.q)
