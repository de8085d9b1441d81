"""The lagging-storage simulation itself (tests/lagging_storage.py): late uploads,
late visibility, lost writes of a dead session, frozen sessions, local writes win."""

from __future__ import annotations

from pathlib import Path

from tests.lagging_storage import Delays, LaggingStorage

FIXED = Delays(upload_s=(2.0, 2.0), slow_p=0.0, visible_s=(1.0, 1.0), settle_s=0.0)


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_write_reaches_the_shared_copy_late_and_other_views_later(tmp_path):
    storage = LaggingStorage(tmp_path, FIXED)
    a, b = storage.view("a"), storage.view("b")
    _write(a, "checkpoints/j/1/state.json", "one")
    storage.step(0.0)
    storage.step(1.9)
    assert not storage.shared_path("checkpoints/j/1/state.json").exists()
    storage.step(2.1)  # the upload delay is over
    assert storage.shared_path("checkpoints/j/1/state.json").read_text() == "one"
    assert not (b / "checkpoints/j/1/state.json").exists()  # not visible yet
    storage.step(3.0)
    assert not (b / "checkpoints/j/1/state.json").exists()
    storage.step(3.2)
    assert (b / "checkpoints/j/1/state.json").read_text() == "one"
    storage.step(10.0)
    assert (a / "checkpoints/j/1/state.json").read_text() == "one"  # no echo, no change


def test_a_killed_session_loses_what_it_had_not_uploaded(tmp_path):
    storage = LaggingStorage(tmp_path, FIXED)
    a = storage.view("a")
    _write(a, "early.txt", "synced")
    storage.step(0.0)
    storage.step(2.5)
    _write(a, "late.txt", "never")
    storage.step(3.0)
    assert storage.kill("a") == ["late.txt"]
    assert storage.lost == [("a", "late.txt")]
    storage.step(100.0)
    assert storage.shared_path("early.txt").exists()
    assert not storage.shared_path("late.txt").exists()
    fresh = storage.view("a")  # a new session: an empty view, filled late
    assert not (fresh / "early.txt").exists()
    storage.step(101.0)
    storage.step(102.5)
    assert (fresh / "early.txt").read_text() == "synced"


def test_a_frozen_session_uploads_nothing_until_it_thaws(tmp_path):
    storage = LaggingStorage(tmp_path, FIXED)
    a = storage.view("a")
    storage.freeze("a")
    _write(a, "x.bin", "x")
    storage.step(0.0)
    storage.step(50.0)
    assert not storage.shared_path("x.bin").exists()
    storage.thaw("a")
    storage.step(50.1)
    assert storage.shared_path("x.bin").read_text() == "x"


def test_deletions_travel_late_and_a_local_change_beats_a_download(tmp_path):
    storage = LaggingStorage(tmp_path, FIXED)
    a, b = storage.view("a"), storage.view("b")
    _write(a, "f.txt", "from a")
    storage.step(0.0)
    storage.step(2.1)
    storage.step(3.2)
    assert (b / "f.txt").read_text() == "from a"
    (a / "f.txt").unlink()
    storage.step(4.0)
    assert storage.shared_path("f.txt").exists()
    storage.step(6.1)
    assert not storage.shared_path("f.txt").exists()
    _write(b, "f.txt", "from b, written before the deletion shows")
    storage.step(6.2)
    storage.step(20.0)
    assert (b / "f.txt").read_text().startswith("from b")
    assert storage.shared_path("f.txt").read_text().startswith("from b")


def test_the_sync_thread_settles_with_random_delays(tmp_path):
    delays = Delays(upload_s=(0.05, 0.3), slow_p=0.2, slow_s=0.6, visible_s=(0.05, 0.2))
    with LaggingStorage(tmp_path, delays, seed=3) as storage:
        a, b = storage.view("a"), storage.view("b")
        for i in range(20):
            _write(a if i % 2 else b, f"d/{i}.txt", str(i))
        assert storage.settled(timeout_s=30)
    for i in range(20):
        assert (a / f"d/{i}.txt").read_text() == (b / f"d/{i}.txt").read_text() == str(i)
        assert storage.shared_path(f"d/{i}.txt").read_text() == str(i)
