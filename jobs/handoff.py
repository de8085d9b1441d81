"""Files one job hands to another through the shared storage, checked by checksum.

On Drive a file written by one session reaches another seconds, minutes or never
later (issue 11). So a producer's fenced result records the sha256 of the output it
publishes (`output_sha256`: every file's path, sha256 and size, factory.files
.tree_sha256), and a consumer waits up to `storage_visibility_wait_s` for that output
to appear and match before it reads it (`wait_for_output`). An output that never
arrives raises OutputMissing, which names the producer and the fix.

Checkpoints carry their files' checksums in their Redis record already
(factory.training.checkpoint); a resumed attempt waits as long for them and falls back
to the newest one really present, or starts over (jobs.context).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from factory.errors import FactoryError
from factory.files import tree_sha256
from jobs.spec import SHA256

log = logging.getLogger("jobs.handoff")
OUTPUT_KEY = "output_sha256"  # in a result: the checksum of its published output
POLL_S = 1.0


class OutputMissing(FactoryError):
    """A dependency's published output did not appear (or verify) in time."""


def record_output(result: dict[str, Any], staged: Path) -> None:
    """Record the checksum of `staged` (the output about to be published) in `result`."""
    result[OUTPUT_KEY] = tree_sha256(staged)


def _state(folder: Path, expected: str | None) -> str:
    """ "ok", "absent" or "different" (a partial or stale copy)."""
    if not folder.is_dir():
        return "absent"
    if expected is None:  # a result from before checksums: presence is all it promises
        return "ok"
    return "ok" if tree_sha256(folder) == expected else "different"


def wait_for_output(
    folder: Path, result: dict[str, Any], producer: str, wait_s: float, poll_s: float = POLL_S
) -> Path:
    """`folder` once it holds exactly the output `result` recorded; OutputMissing after
    `wait_s` seconds without that."""
    expected = result.get(OUTPUT_KEY)
    if not (isinstance(expected, str) and SHA256.fullmatch(expected)):
        expected = None
    started = time.monotonic()
    while True:
        state = _state(folder, expected)
        if state == "ok":
            waited = time.monotonic() - started
            if waited >= poll_s:
                log.info("output of %s arrived after %.0f s: %s", producer, waited, folder)
            return folder
        left = started + wait_s - time.monotonic()
        if left <= 0:
            raise OutputMissing(
                f"the output of job {producer} ({folder.name}) is {state} in the storage "
                f"after {wait_s:.0f} s (storage_visibility_wait_s); it may never have synced "
                f"from the session that wrote it; fix: factory retry {producer}, or raise "
                "--storage-visibility-wait"
            )
        time.sleep(min(poll_s, left))
