"""The checkpoint store: verified, atomically named checkpoints under the storage root.

Layout: `<root>/checkpoints/<job_id>/<attempt>-<step>/` holds one checkpoint's files
plus `state.json`; `<root>/checkpoints/<job_id>/manifest.json` lists the PUBLISHED
checkpoints, newest first. A checkpoint is staged locally, copied under a `.tmp-*`
name, fsynced, read back and checksummed, then renamed: it is never visible under its
final name half-written. Publication (the manifest) is a separate step, so that a
fenced caller can refuse it. Files are the caller's bytes and the state is JSON: no
pickle anywhere.

A caller that may lose the right to write (a leased attempt: jobs.context) passes a
`guard` to `write`: it is called before the `.tmp-*` folder is made and before each
chunk copied into the storage, and raises to stop the copy (what was copied is then
removed). A frozen attempt that wakes up past its lease thus stops at its next chunk,
and one killed mid-copy leaves a `.tmp-*` folder that the job's next attempt removes
(`remove_leftovers`), with every unpublished checkpoint folder of an earlier attempt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factory.errors import FactoryError
from factory.files import copy_synced, no_guard
from factory.layout import Layout
from factory.training.context import Checkpoint

log = logging.getLogger("factory.training.checkpoint")

STATE_FILE = "state.json"
MANIFEST_FILE = "manifest.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SHA = re.compile(r"[0-9a-f]{64}")
_FINAL_DIR = re.compile(r"(\d+)-(\d+)")
_TMP_DIR = re.compile(r"\.tmp-(\d+)-(\d+)-.*")
_RECORD_KEYS = ("job_id", "attempt", "step", "dirname", "files", "created_at")


class CheckpointCorrupt(FactoryError):
    """A checkpoint file (or the manifest) does not match what was recorded."""


class CheckpointMissing(CheckpointCorrupt):
    """A checkpoint directory or file is absent (on Drive: maybe not synced yet)."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_files(files: Any) -> None:
    if not isinstance(files, dict) or STATE_FILE not in files:
        raise ValueError(f"checkpoint record: files must be a dict that includes {STATE_FILE}")
    for name, meta in files.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"checkpoint record: bad file name {name!r}")
        ok = (
            isinstance(meta, dict)
            and set(meta) == {"sha256", "bytes"}
            and isinstance(meta["sha256"], str)
            and _SHA.fullmatch(meta["sha256"])
            and _is_int(meta["bytes"])
            and meta["bytes"] >= 0
        )
        if not ok:
            raise ValueError(f"checkpoint record: bad entry for {name!r}: {meta!r}")


@dataclass(frozen=True)
class CheckpointRecord:
    """What the manifest says about one checkpoint: where it is and its checksums."""

    job_id: str
    attempt: int
    step: int
    dirname: str
    files: dict[str, dict]  # name -> {"sha256": hex, "bytes": size}; state.json included
    created_at: float

    def to_dict(self) -> dict:
        d = {key: getattr(self, key) for key in _RECORD_KEYS}
        d["files"] = {name: dict(meta) for name, meta in self.files.items()}
        return d

    @classmethod
    def from_dict(cls, d: Any) -> CheckpointRecord:
        if not isinstance(d, dict):
            raise ValueError(f"checkpoint record: expected an object, got {type(d).__name__}")
        unknown, missing = set(d) - set(_RECORD_KEYS), set(_RECORD_KEYS) - set(d)
        if unknown or missing:
            raise ValueError(
                f"checkpoint record: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}"
            )
        if not (isinstance(d["job_id"], str) and _NAME.fullmatch(d["job_id"])):
            raise ValueError(f"checkpoint record: bad job_id {d['job_id']!r}")
        if not (_is_int(d["attempt"]) and _is_int(d["step"])) or min(d["attempt"], d["step"]) < 0:
            raise ValueError("checkpoint record: attempt and step must be integers >= 0")
        if d["dirname"] != f"{d['attempt']}-{d['step']}":
            raise ValueError(f"checkpoint record: dirname {d['dirname']!r} != attempt-step")
        if not isinstance(d["created_at"], (int, float)) or isinstance(d["created_at"], bool):
            raise ValueError("checkpoint record: created_at must be a number")
        _check_files(d["files"])
        files = {name: dict(meta) for name, meta in d["files"].items()}
        return cls(d["job_id"], d["attempt"], d["step"], d["dirname"], files, d["created_at"])


def _sort_key(record: CheckpointRecord) -> tuple[int, int]:
    return (record.step, record.attempt)


def _fsync_dir(path: Path) -> None:
    """Best effort: some filesystems (Windows, some FUSE mounts) refuse a directory fsync."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _read_back(path: Path, expected: bytes) -> None:
    """Raise CheckpointCorrupt unless `path` now holds exactly `expected`."""
    got = path.read_bytes()
    if len(got) != len(expected) or _sha256(got) != _sha256(expected):
        raise CheckpointCorrupt(
            f"{path}: read back {len(got)} bytes sha256 {_sha256(got)[:12]}, "
            f"wrote {len(expected)} bytes sha256 {_sha256(expected)[:12]}"
        )


def _payload(attempt: int, step: int, files: dict[str, bytes], state: dict) -> dict[str, bytes]:
    """The files to write, state.json included; ValueError for what cannot be written."""
    if not (_is_int(attempt) and _is_int(step)) or min(attempt, step) < 0:
        raise ValueError(f"attempt and step must be integers >= 0, got {attempt}, {step}")
    if not isinstance(files, dict):
        raise ValueError(f"checkpoint files must be a dict, got {type(files).__name__}")
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint state must be a dict, got {type(state).__name__}")
    for name, data in files.items():
        if not _NAME.fullmatch(name) or name == STATE_FILE:
            raise ValueError(f"bad checkpoint file name {name!r} (plain names, not state.json)")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValueError(f"checkpoint file {name!r} must be bytes, not {type(data)}")
    try:
        state_bytes = json.dumps(state, sort_keys=True, indent=1).encode()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint state is not JSON-serialisable: {exc}") from exc
    payload = {name: bytes(data) for name, data in files.items()}
    payload[STATE_FILE] = state_bytes
    return payload


def _read_verified(path: Path, meta: dict) -> bytes:
    """The bytes of `path` if its size and sha256 match `meta`; else CheckpointCorrupt."""
    try:
        blob = path.read_bytes()
    except FileNotFoundError as exc:
        raise CheckpointMissing(f"{path}: missing") from exc
    except OSError as exc:
        raise CheckpointCorrupt(f"{path}: unreadable ({exc})") from exc
    if len(blob) != meta["bytes"]:
        raise CheckpointCorrupt(f"{path}: {len(blob)} bytes, expected {meta['bytes']}")
    if _sha256(blob) != meta["sha256"]:
        raise CheckpointCorrupt(
            f"{path}: sha256 {_sha256(blob)[:12]}, expected {meta['sha256'][:12]}"
        )
    return blob


class CheckpointStore:
    """The checkpoints of one job under a storage root (no Redis; fencing is the caller's)."""

    def __init__(
        self, root: Path, job_id: str, keep: int = 3, staging_dir: Path | None = None
    ) -> None:
        if not _NAME.fullmatch(job_id):
            raise ValueError(f"job id {job_id!r} is not a plain file name")
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.root = Path(root)
        self.job_id = job_id
        self.keep = keep
        self.staging_dir = Path(staging_dir) if staging_dir is not None else None
        self.job_dir = Layout(self.root).checkpoints_dir(job_id)
        self.manifest_path = self.job_dir / MANIFEST_FILE

    def write(
        self,
        attempt: int,
        step: int,
        files: dict[str, bytes],
        state: dict,
        guard: Callable[[], None] = no_guard,
    ) -> CheckpointRecord:
        """Write a checkpoint under its final name, verified; do not publish it. `guard`
        (see the module docstring) may raise to stop before anything more is copied."""
        payload = _payload(attempt, step, files, state)
        dirname = f"{attempt}-{step}"
        self.job_dir.mkdir(parents=True, exist_ok=True)
        if self.staging_dir is not None:
            self.staging_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"ckpt-{dirname}-", dir=self.staging_dir))
        tmp = self.job_dir / f".tmp-{dirname}-{uuid.uuid4().hex[:8]}"
        try:
            for name, data in payload.items():
                (staging / name).write_bytes(data)  # local: costs the storage nothing
            guard()
            tmp.mkdir()
            for name, data in payload.items():
                copy_synced(staging / name, tmp / name, guard)
                _read_back(tmp / name, data)
            _fsync_dir(tmp)
            guard()
            self._install(tmp, self.job_dir / dirname)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, Exception):
                guard()  # superseded: the newer attempt may have removed this copy
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        meta = {name: {"sha256": _sha256(d), "bytes": len(d)} for name, d in payload.items()}
        return CheckpointRecord(self.job_id, attempt, step, dirname, meta, time.time())

    def _install(self, tmp: Path, final: Path) -> None:
        """Rename `tmp` to `final`, replacing a previous try's directory of that name."""
        if not final.exists():
            os.rename(tmp, final)
        else:
            old = final.with_name(f".tmp-{final.name}-old-{uuid.uuid4().hex[:8]}")
            os.rename(final, old)
            try:
                os.rename(tmp, final)
            except BaseException:
                os.rename(old, final)
                raise
            shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(final.parent)

    def records(self) -> list[CheckpointRecord]:
        """The published checkpoints, newest first (by step, then attempt)."""
        try:
            text = self.manifest_path.read_text()
        except FileNotFoundError:
            return []
        try:
            doc = json.loads(text)
            if doc.get("job_id") != self.job_id:
                raise ValueError(f"job_id {doc.get('job_id')!r} != {self.job_id!r}")
            records = [CheckpointRecord.from_dict(d) for d in doc["records"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CheckpointCorrupt(
                f"{self.manifest_path}: unreadable manifest ({exc}); fix: delete it to start over"
            ) from exc
        return sorted(records, key=_sort_key, reverse=True)

    def publish(self, record: CheckpointRecord) -> None:
        """Add `record` to the manifest, keep the newest `keep`, delete what fell off."""
        if record.job_id != self.job_id:
            raise ValueError(f"record of job {record.job_id!r} given to store of {self.job_id!r}")
        old = self.records()
        if record in old:
            return
        merged = [r for r in old if r.dirname != record.dirname] + [record]
        kept = sorted(merged, key=_sort_key, reverse=True)[: self.keep]
        self._write_manifest(kept)
        names = {r.dirname for r in kept}
        self._clean([r for r in old if r.dirname not in names], kept)

    def _write_manifest(self, records: list[CheckpointRecord]) -> None:
        doc = {"job_id": self.job_id, "records": [r.to_dict() for r in records]}
        self.job_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.manifest_path.with_name(f"{MANIFEST_FILE}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with open(tmp, "w") as f:
                json.dump(doc, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.manifest_path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.job_dir)

    def _clean(self, dropped: list[CheckpointRecord], kept: list[CheckpointRecord]) -> None:
        """Delete dropped records' dirs, and `.tmp-*` and unpublished checkpoint dirs whose
        step is older than the oldest kept step (leftovers of dead or superseded attempts)."""
        keep_names = {r.dirname for r in kept}
        for record in dropped:
            shutil.rmtree(self.job_dir / record.dirname, ignore_errors=True)
        oldest = min(r.step for r in kept)
        for path in self.job_dir.iterdir():
            match = _FINAL_DIR.fullmatch(path.name) or _TMP_DIR.fullmatch(path.name)
            stale = match is not None and int(match.group(2)) < oldest
            if stale and path.name not in keep_names and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)

    def remove_leftovers(self, attempt: int, published: set[str]) -> list[str]:
        """Remove what attempts before `attempt` left and never published: `.tmp-*`
        folders (a copy cut short) and checkpoint folders named neither in `published`
        nor in the manifest; the names removed. A manifest that cannot be read removes
        nothing (its checkpoints may be the only ones left)."""
        try:
            keep = published | {r.dirname for r in self.records()}
        except CheckpointCorrupt as exc:
            log.warning("%s: leftovers kept, manifest unreadable (%s)", self.job_dir, exc)
            return []
        removed = []
        for path in self._entries():
            match = _FINAL_DIR.fullmatch(path.name) or _TMP_DIR.fullmatch(path.name)
            older = match is not None and int(match.group(1)) < attempt
            if older and path.name not in keep and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
        if removed:
            log.info("job %s: removed %s left by earlier attempts", self.job_id, sorted(removed))
        return sorted(removed)

    def _entries(self) -> list[Path]:
        try:
            return list(self.job_dir.iterdir())
        except FileNotFoundError:
            return []

    def discard(self, record: CheckpointRecord) -> None:
        """Remove an unpublished checkpoint's directory (fencing refused to publish it)."""
        if record.job_id != self.job_id:
            raise ValueError(f"record of job {record.job_id!r} given to store of {self.job_id!r}")
        if any(r.dirname == record.dirname for r in self.records()):
            raise ValueError(f"checkpoint {record.dirname} of {self.job_id} is published")
        shutil.rmtree(self.job_dir / record.dirname, ignore_errors=True)

    def load(self, record: CheckpointRecord) -> Checkpoint:
        """Read and verify every file of `record`; CheckpointCorrupt (or CheckpointMissing)."""
        folder = self.job_dir / record.dirname
        data = {name: _read_verified(folder / name, meta) for name, meta in record.files.items()}
        try:
            state = json.loads(data.pop(STATE_FILE))
        except (KeyError, ValueError) as exc:
            raise CheckpointCorrupt(f"{folder / STATE_FILE}: not valid JSON ({exc})") from exc
        if not isinstance(state, dict):
            raise CheckpointCorrupt(f"{folder / STATE_FILE}: not a JSON object")
        return Checkpoint(step=record.step, attempt=record.attempt, files=data, state=state)

    def latest(
        self,
        records: list[CheckpointRecord] | None = None,
        wait_s: float = 0.0,
        poll_s: float = 0.2,
    ) -> Checkpoint | None:
        """The newest valid checkpoint; waits up to `wait_s` in total for missing ones."""
        if records is None:
            records = self.records()
        deadline = time.monotonic() + wait_s
        for record in sorted(records, key=_sort_key, reverse=True):
            while True:
                try:
                    return self.load(record)
                except CheckpointMissing as exc:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        log.warning("skipping checkpoint %s: %s", record.dirname, exc)
                        break
                    time.sleep(min(poll_s, left))
                except CheckpointCorrupt as exc:
                    log.warning("skipping corrupt checkpoint %s: %s", record.dirname, exc)
                    break
        return None
