"""The checkpoint store: verified writes, fenced-friendly publication, fallback on bad files."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time

import pytest

from factory.errors import FactoryError
from factory.training import checkpoint as ckpt
from factory.training.checkpoint import CheckpointCorrupt, CheckpointRecord, CheckpointStore

JOB = "job-abc123"


@pytest.fixture
def store(tmp_path):
    return CheckpointStore(tmp_path / "home", JOB, staging_dir=tmp_path / "staging")


def files_for(step: int) -> dict[str, bytes]:
    return {"model.pt": bytes([step % 256]) * (1000 + step), "opt.bin": f"opt{step}".encode()}


def save(store: CheckpointStore, step: int, attempt: int = 1) -> CheckpointRecord:
    record = store.write(attempt, step, files_for(step), {"step": step, "best": 0.5})
    store.publish(record)
    return record


def listing(store: CheckpointStore) -> list[str]:
    return sorted(p.name for p in store.job_dir.iterdir())


def test_round_trip(store, tmp_path):
    files = {"model.pt": os.urandom(5000), "xgb.ubj": b"", "rng.json": b'{"seed": 1}'}
    state = {"epoch": 3, "best_metric": float("inf"), "rng": [1, 2, 3], "nested": {"a": None}}
    record = store.write(2, 40, files, state)
    assert record.dirname == "2-40" and set(record.files) == {*files, "state.json"}
    assert record.files["xgb.ubj"]["bytes"] == 0
    store.publish(record)
    assert store.records() == [record]
    loaded = store.latest()
    assert (loaded.step, loaded.attempt) == (40, 2)
    assert loaded.files == files and loaded.state == state
    assert store.load(record).files == files
    assert list((tmp_path / "staging").iterdir()) == []  # the local staging copy is gone
    assert listing(store) == ["2-40", "manifest.json"]


def test_keeps_the_newest_three(store):
    for step in range(1, 6):
        save(store, step * 10)
    assert [r.dirname for r in store.records()] == ["1-50", "1-40", "1-30"]
    assert listing(store) == ["1-30", "1-40", "1-50", "manifest.json"]
    assert store.latest().step == 50


def test_records_sort_by_step_then_attempt(store):
    save(store, 10, attempt=3)
    save(store, 20, attempt=1)
    save(store, 20, attempt=2)
    assert [r.dirname for r in store.records()] == ["2-20", "1-20", "3-10"]


def test_truncated_newest_falls_back_with_a_warning(store, caplog):
    save(store, 10)
    newest = save(store, 20)
    path = store.job_dir / newest.dirname / "model.pt"
    path.write_bytes(path.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="factory.training.checkpoint"):
        assert store.latest().step == 10
    assert any("1-20" in r.getMessage() and "model.pt" in r.getMessage() for r in caplog.records)
    with pytest.raises(CheckpointCorrupt, match=r"model\.pt"):
        store.load(newest)


def test_same_size_corruption_is_caught_by_the_checksum(store, caplog):
    save(store, 10)
    newest = save(store, 20)
    path = store.job_dir / newest.dirname / "model.pt"
    data = bytearray(path.read_bytes())
    data[500] ^= 0xFF
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="factory.training.checkpoint"):
        assert store.latest().step == 10
    assert any("sha256" in r.getMessage() for r in caplog.records)


def test_unreadable_state_json_is_skipped(store):
    older = save(store, 10)
    bad = store.write(1, 20, files_for(20), {"step": 20})
    state_path = store.job_dir / bad.dirname / "state.json"
    state_path.write_bytes(b"{not json")
    files = dict(bad.files)
    files["state.json"] = {"sha256": ckpt._sha256(b"{not json"), "bytes": 9}
    forged = CheckpointRecord(JOB, 1, 20, "1-20", files, bad.created_at)
    with pytest.raises(CheckpointCorrupt, match=r"state\.json"):
        store.load(forged)
    assert store.latest(records=[forged, older]).step == 10


def test_deleted_newest_dir_falls_back(store):
    save(store, 10)
    newest = save(store, 20)
    shutil.rmtree(store.job_dir / newest.dirname)
    assert store.latest().step == 10
    shutil.rmtree(store.job_dir / "1-10")
    assert store.latest() is None


def test_missing_newest_dir_is_waited_for(store, tmp_path):
    save(store, 10)
    newest = save(store, 20)
    away = tmp_path / "not-synced-yet"
    os.rename(store.job_dir / newest.dirname, away)
    t0 = time.monotonic()
    assert store.latest(wait_s=0).step == 10
    assert time.monotonic() - t0 < 0.2

    def appear():
        time.sleep(0.3)
        os.rename(away, store.job_dir / newest.dirname)

    thread = threading.Thread(target=appear)
    thread.start()
    t0 = time.monotonic()
    found = store.latest(wait_s=2, poll_s=0.05)
    thread.join()
    assert found.step == 20
    assert 0.25 < time.monotonic() - t0 < 1.5


def test_wait_is_bounded_in_total(store):
    records = [save(store, step) for step in (10, 20, 30)]
    for record in records:
        shutil.rmtree(store.job_dir / record.dirname)
    t0 = time.monotonic()
    assert store.latest(wait_s=0.3, poll_s=0.05) is None
    assert time.monotonic() - t0 < 0.8


def test_failed_rename_leaves_nothing(store, monkeypatch, tmp_path):
    save(store, 10)

    def broken_rename(src, dst):
        raise OSError("drive went away")

    monkeypatch.setattr(ckpt.os, "rename", broken_rename)
    with pytest.raises(OSError, match="drive went away"):
        store.write(1, 20, files_for(20), {"step": 20})
    monkeypatch.undo()
    assert listing(store) == ["1-10", "manifest.json"]
    assert [r.dirname for r in store.records()] == ["1-10"]
    assert list((tmp_path / "staging").iterdir()) == []


def test_bad_read_back_raises_and_leaves_nothing(store, monkeypatch):
    save(store, 10)

    def lossy_copy(src, dst, guard):
        assert not (store.job_dir / "1-20").exists()  # never visible half-written
        dst.write_bytes(src.read_bytes()[:-1])

    monkeypatch.setattr(ckpt, "copy_synced", lossy_copy)
    with pytest.raises(CheckpointCorrupt, match=r"\.tmp-1-20-.*read back"):
        store.write(1, 20, files_for(20), {"step": 20})
    assert listing(store) == ["1-10", "manifest.json"]
    assert [r.dirname for r in store.records()] == ["1-10"]


def test_rewrite_of_the_same_step_replaces_it(store, monkeypatch):
    store.publish(store.write(1, 20, {"model.pt": b"first"}, {"try": 1}))
    record = store.write(1, 20, {"model.pt": b"second"}, {"try": 2})
    assert listing(store) == ["1-20", "manifest.json"]
    store.publish(record)
    assert store.records() == [record]
    assert store.latest().files == {"model.pt": b"second"}

    real_rename = os.rename
    calls = []

    def fail_second_rename(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("boom")
        real_rename(src, dst)

    monkeypatch.setattr(ckpt.os, "rename", fail_second_rename)
    with pytest.raises(OSError, match="boom"):
        store.write(1, 20, {"model.pt": b"third"}, {"try": 3})
    monkeypatch.undo()
    assert listing(store) == ["1-20", "manifest.json"]  # the old one is put back
    assert store.latest().state == {"try": 2}


def test_unpublished_is_invisible_and_discard_removes_it(store):
    published = save(store, 10)
    pending = store.write(2, 20, files_for(20), {"step": 20})
    assert store.records() == [published]
    assert store.latest().step == 10
    store.discard(pending)
    assert listing(store) == ["1-10", "manifest.json"]
    with pytest.raises(ValueError, match="published"):
        store.discard(published)
    assert (store.job_dir / "1-10").is_dir()


def test_publish_is_idempotent(store):
    record = save(store, 10)
    before = store.manifest_path.read_bytes()
    store.publish(record)
    store.publish(CheckpointRecord.from_dict(record.to_dict()))
    assert store.manifest_path.read_bytes() == before
    assert store.records() == [record]


def test_publish_cleans_stale_leftovers(store):
    for step in (10, 20, 30):
        save(store, step)
    store.write(1, 5, files_for(5), {})  # unpublished, older than everything kept
    store.write(2, 35, files_for(35), {})  # unpublished, newer: may still be published
    (store.job_dir / ".tmp-1-7-deadbeef").mkdir()
    (store.job_dir / ".tmp-2-40-cafebabe").mkdir()
    save(store, 40)  # oldest kept step is now 20
    assert listing(store) == [".tmp-2-40-cafebabe", "1-20", "1-30", "1-40", "2-35", "manifest.json"]


def test_record_from_dict_checks_its_input(store):
    record = store.write(1, 10, files_for(10), {})
    d = record.to_dict()
    assert CheckpointRecord.from_dict(json.loads(json.dumps(d))) == record
    with pytest.raises(ValueError, match=r"unknown keys.*extra"):
        CheckpointRecord.from_dict({**d, "extra": 1})
    with pytest.raises(ValueError, match=r"missing keys.*step"):
        CheckpointRecord.from_dict({k: v for k, v in d.items() if k != "step"})
    with pytest.raises(ValueError, match="dirname"):
        CheckpointRecord.from_dict({**d, "dirname": "../../etc"})
    with pytest.raises(ValueError, match="file name"):
        CheckpointRecord.from_dict({**d, "files": {**d["files"], "../x": d["files"]["state.json"]}})


def test_bad_input_and_bad_manifest(store):
    with pytest.raises(ValueError, match=r"state\.json"):
        store.write(1, 1, {"state.json": b"x"}, {})
    with pytest.raises(ValueError, match="JSON"):
        store.write(1, 1, {}, {"x": object()})
    with pytest.raises(ValueError):
        CheckpointStore(store.root, "../escape")
    save(store, 10)
    store.manifest_path.write_text('{"job_id": "job-abc123", "records": [{"step": 1}]}')
    with pytest.raises(CheckpointCorrupt, match="manifest") as info:
        store.records()
    assert isinstance(info.value, FactoryError) and "\n" not in str(info.value)


class Refused(Exception):
    pass


def test_a_guard_that_refuses_mid_copy_stops_it_and_leaves_nothing(store, monkeypatch):
    """The guard (a lease check) runs before each chunk copied into the storage: once it
    refuses, nothing more is written and the partial copy is removed."""
    import factory.files as files

    save(store, 10)
    monkeypatch.setattr(files, "COPY_CHUNK_BYTES", 1000)
    calls = []

    def guard():
        calls.append(sorted(p.name for p in store.job_dir.iterdir()))
        if len(calls) == 4:  # the tmp folder exists and holds a partial file by now
            assert any(name.startswith(".tmp-1-20-") for name in calls[-1])
        if len(calls) >= 4:  # a lost lease stays lost
            raise Refused

    big = {"model.pt": bytes(range(256)) * 40}  # 10 kB: ten chunks
    with pytest.raises(Refused):
        store.write(1, 20, big, {"step": 20}, guard=guard)
    # 4, then once more after the failure (a superseded attempt's error is its supersession)
    assert len(calls) == 5 and listing(store) == ["1-10", "manifest.json"]
    record = store.write(1, 20, big, {"step": 20}, guard=lambda: None)
    assert record.files["model.pt"]["bytes"] == 10240


def test_the_next_attempt_removes_what_earlier_ones_left_unpublished(store):
    save(store, 10)  # attempt 1, published
    store.write(1, 20, files_for(20), {"step": 20})  # attempt 1: written, never published
    for name in (".tmp-2-30-abcd1234", ".tmp-3-40-abcd1234", "2-30"):  # a cut-short copy
        (store.job_dir / name).mkdir()
        (store.job_dir / name / "booster.ubj").write_bytes(b"partial")
    published_in_redis = {"2-30"}  # published in Redis, the manifest not yet updated
    removed = store.remove_leftovers(3, published_in_redis)
    assert removed == [".tmp-2-30-abcd1234", "1-20"]
    # its own attempt's (3) folders are never touched: it may be writing them now
    assert listing(store) == [".tmp-3-40-abcd1234", "1-10", "2-30", "manifest.json"]
    assert store.remove_leftovers(3, set()) == ["2-30"]  # no longer published anywhere


def test_an_unreadable_manifest_keeps_every_leftover(store):
    save(store, 10)
    (store.job_dir / ".tmp-1-20-abcd1234").mkdir()
    store.manifest_path.write_text("{broken")
    assert store.remove_leftovers(2, set()) == []
    assert (store.job_dir / "1-10").is_dir() and (store.job_dir / ".tmp-1-20-abcd1234").is_dir()
