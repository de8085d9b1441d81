"""Files one job hands to another through the shared storage, checked by checksum.

On Drive a file written by one session reaches another seconds, minutes or never
later (issue 11). So a producer's fenced result records the sha256 of the output it
publishes (`output_sha256`: every file's path, sha256 and size, factory.files
.tree_sha256), and a consumer waits up to `storage_visibility_wait_s` for that output
to appear and match before it reads it (`wait_for_output`). An output that never
arrives raises OutputMissing: the fault is the producer's, so the consumer re-opens
the producer (`rerun_producer`: its final result is removed, compare-and-set on the
attempt that wrote it, and the job is queued again as a new attempt) and waits for it
(the horse exits with jobs.entry.EXIT_WAITS; its worker defers the consumer on the
producer, jobs.control.defer_on). Neither the consumer's poison budget nor the
producer's preemption budget is spent. A producer re-run MAX_RERUNS times for this is
not re-run again: the consumer then fails with the one-line error, naming the fix.

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
from jobs import keys
from jobs.spec import SHA256

log = logging.getLogger("jobs.handoff")
OUTPUT_KEY = "output_sha256"  # in a result: the checksum of its published output
POLL_S = 1.0
MAX_RERUNS = 3  # re-runs of one producer because its output never arrived
# remove the producer's final result if it is still the one the consumer read (the same
# attempt and output checksum), counting the re-run; -1: another consumer re-opened it
# already (or it changed), 0: its re-runs are spent, else the re-run's number
_REOPEN = """
local raw = redis.call('GET', KEYS[1])
if not raw then return -1 end
local ok, doc = pcall(cjson.decode, raw)
if not ok or type(doc) ~= 'table' then return -1 end
if tostring(doc['attempt']) ~= ARGV[1] or tostring(doc['output_sha256'] or '') ~= ARGV[2] then
  return -1
end
local n = redis.call('HINCRBY', KEYS[2], 'output_reruns', 1)
if n > tonumber(ARGV[3]) then
  redis.call('HINCRBY', KEYS[2], 'output_reruns', -1)
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], 'status', 'queued', 'rerun_reason', ARGV[4])
return n
"""


class OutputMissing(FactoryError):
    """A dependency's published output did not appear (or verify) in time."""

    def __init__(self, message: str, producer: str = "", result: dict | None = None) -> None:
        super().__init__(message)
        self.producer = producer
        self.result = result or {}


def wait_for_dataset(
    folder: Path,
    producer: str,
    wait_s: float,
    result: dict[str, Any] | None = None,
    poll_s: float = POLL_S,
) -> Path:
    """`folder` once its dataset manifest and every file it lists are there at their
    recorded sizes; OutputMissing after `wait_s` seconds. The sha256 of each file is
    checked by whoever reads it (jobs.datacache copies and verifies it once a session):
    hashing the Drive copy here would read the whole dataset from Drive at every job."""
    started = time.monotonic()
    while True:
        try:
            _dataset_present(folder)
            return folder
        except FactoryError as exc:
            left = started + wait_s - time.monotonic()
            if left <= 0:
                source = f"job {producer}" if producer else "submit --dataset"
                raise OutputMissing(
                    f"the dataset {folder.name} from {source} does not verify in the storage "
                    f"after {wait_s:.0f} s (storage_visibility_wait_s): "
                    f"{str(exc).splitlines()[0][:200]}",
                    producer,
                    result,
                ) from exc
        time.sleep(min(poll_s, left))


def _dataset_present(folder: Path) -> None:
    """DataError naming the first file of `folder`'s manifest that is absent or short."""
    from factory.data.manifest import DatasetManifest
    from factory.errors import DataError

    manifest = DatasetManifest.load(folder)
    for name, entry in sorted(manifest.files.items()):
        path = folder / name
        if not path.is_file() or path.stat().st_size != entry.bytes:
            raise DataError(
                f"dataset {folder}",
                f"{name} is missing or not complete yet",
                "let the storage sync it, or rebuild the dataset with `factory data`",
            )


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
                "--storage-visibility-wait",
                producer,
                result,
            )
        time.sleep(min(poll_s, left))


def rerun_producer(connection, consumer: str, exc: OutputMissing) -> bool:
    """Re-open `exc.producer` (see the module docstring) and record that `consumer` waits
    for it; False when the producer's re-runs are spent (the consumer then fails)."""
    from jobs.control import requeue_job

    producer, result = exc.producer, exc.result
    reason = f"its output never arrived for {consumer}"
    args = [str(result.get("attempt")), str(result.get(OUTPUT_KEY) or ""), MAX_RERUNS, reason]
    number = connection.eval(_REOPEN, 2, keys.result(producer), keys.state(producer), *args)
    if number == 0:
        log.error("job %s: %s re-run %s times already; not again", consumer, producer, MAX_RERUNS)
        return False
    if number > 0:
        log.warning(
            "job %s: the output of %s never arrived; %s runs again (re-run %s of %s)",
            consumer,
            producer,
            producer,
            number,
            MAX_RERUNS,
        )
        requeue_job(connection, producer)
    connection.hset(keys.state(consumer), mapping={"waits_for": producer})
    return True
