"""Hand-offs through the shared storage (issue 11, point 2): a consumer waits for a
producer's output to appear and match the checksum in the producer's result."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from factory.files import tree_sha256
from jobs.handoff import OUTPUT_KEY, OutputMissing, record_output, wait_for_output


def _output(folder, payload=b"model bytes"):
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(payload)
    (folder / "sub").mkdir()
    (folder / "sub" / "result.json").write_text('{"a": 1}')
    return folder


def test_the_checksum_covers_every_file_path_and_byte(tmp_path):
    a = _output(tmp_path / "a")
    result = {}
    record_output(result, a)
    assert result[OUTPUT_KEY] == tree_sha256(a)
    b = _output(tmp_path / "b")
    assert tree_sha256(b) == tree_sha256(a)  # the same content anywhere
    (b / "sub" / "result.json").write_text('{"a": 2}')
    assert tree_sha256(b) != tree_sha256(a)
    (b / "sub" / "result.json").rename(b / "result.json")
    assert tree_sha256(b) != tree_sha256(a)


def test_a_late_output_is_waited_for_then_read(tmp_path, caplog):
    written = _output(tmp_path / "producer-view" / "bundle")
    result = {OUTPUT_KEY: tree_sha256(written)}
    seen = tmp_path / "consumer-view" / "bundle"

    def sync_late():  # Drive shows it to the other session 0.6 s later, first partially
        time.sleep(0.3)
        seen.mkdir(parents=True)
        (seen / "model.bin").write_bytes(b"model")
        time.sleep(0.3)
        shutil.rmtree(seen)
        shutil.copytree(written, seen)

    thread = threading.Thread(target=sync_late)
    thread.start()
    started = time.monotonic()
    with caplog.at_level("INFO", logger="jobs.handoff"):
        assert wait_for_output(seen, result, "train-x", wait_s=10, poll_s=0.1) == seen
    thread.join()
    assert 0.5 <= time.monotonic() - started < 5
    assert tree_sha256(seen) == result[OUTPUT_KEY]


@pytest.mark.parametrize("partial", [False, True], ids=["absent", "partial"])
def test_an_output_that_never_arrives_names_its_producer_and_the_fix(tmp_path, partial):
    written = _output(tmp_path / "w" / "bundle")
    result = {OUTPUT_KEY: tree_sha256(written)}
    seen = tmp_path / "r" / "bundle"
    if partial:
        _output(seen, payload=b"model by")  # a copy cut short
    started = time.monotonic()
    with pytest.raises(OutputMissing) as info:
        wait_for_output(seen, result, "cv-mes-x-f1", wait_s=0.5, poll_s=0.1)
    assert 0.5 <= time.monotonic() - started < 3
    text = str(info.value)
    assert "cv-mes-x-f1" in text and ("different" if partial else "absent") in text
    assert "fix: factory retry cv-mes-x-f1" in text


def test_a_result_from_before_checksums_needs_its_output_present_only(tmp_path):
    seen = _output(tmp_path / "bundle")
    assert wait_for_output(seen, {}, "old", wait_s=0) == seen
    assert wait_for_output(seen, {OUTPUT_KEY: "not a sha"}, "old", wait_s=0) == seen
    with pytest.raises(OutputMissing, match="absent"):
        wait_for_output(tmp_path / "none", {}, "old", wait_s=0)


def test_the_worker_cli_default_is_the_attempts_default():
    from jobs.attempt_env import DEFAULT_VISIBILITY_WAIT_S, AttemptEnv
    from jobs.durable import CHECKS
    from jobs.lease import DEFAULT_LEASE_TTL_S
    from worker import cli

    assert cli.DEFAULT_VISIBILITY_WAIT_S == DEFAULT_VISIBILITY_WAIT_S
    assert cli.DURABILITY_CHECKS == CHECKS
    assert cli.DEFAULT_LEASE_TTL_S == DEFAULT_LEASE_TTL_S == AttemptEnv(Path("/x")).lease_ttl_s
    env = AttemptEnv(home=Path("/x"), storage_visibility_wait_s=7.5, durability="drive")
    assert AttemptEnv.from_env(env.to_env()).storage_visibility_wait_s == 7.5
    assert AttemptEnv.from_env(env.to_env()).durability == "drive"
    assert AttemptEnv.from_env({"FACTORY_HOME": "/x"}).durability == "none"  # older worker


def test_the_lease_deadline_the_worker_writes_is_trusted_until_it_passes(tmp_path):
    """A horse's lease check before a copy costs no Redis command while the worker's
    last renewal is fresh; stale, of another attempt or unreadable, Redis is asked."""
    from jobs.attempt_env import AttemptEnv, write_lease_deadline

    path = tmp_path / "lease.json"
    env = AttemptEnv(home=Path("/x"), attempt=3, lease_file=path)
    assert not env.lease_held_locally()  # nothing written yet
    write_lease_deadline(path, 3, time.time(), ttl_s=30)
    assert env.lease_held_locally()
    assert AttemptEnv.from_env(env.to_env()).lease_held_locally()
    write_lease_deadline(path, 3, time.time() - 29.5, ttl_s=30)  # within the 1 s margin
    assert not env.lease_held_locally()
    write_lease_deadline(path, 4, time.time(), ttl_s=30)  # a newer attempt's
    assert not env.lease_held_locally()
    path.write_text("{broken")
    assert not env.lease_held_locally()
