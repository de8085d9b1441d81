"""jobs.durable: confirming that a copy reached durable storage (issue 11, point 2),
against a fake Drive API that answers from what the lagging storage has uploaded."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from factory.errors import ConfigError
from jobs.durable import DriveApiCheck, NoCheck, file_md5, make_check, wait_durable
from tests.fake_drive import FakeDrive
from tests.lagging_storage import Delays, LaggingStorage


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_file_is_confirmed_only_once_drive_holds_its_bytes(tmp_path):
    server, mount = tmp_path / "server", tmp_path / "MyDrive"
    local = _write(mount / "home" / "models" / "it's" / "model.bin", b"new bytes")
    check = DriveApiCheck(FakeDrive(server), mount)
    md5 = file_md5(local)
    assert md5 == hashlib.md5(b"new bytes").hexdigest()
    assert not check.confirmed(local, md5)  # not uploaded yet: no folder on Drive
    _write(server / "home" / "models" / "it's" / "model.bin", b"old bytes")
    assert not check.confirmed(local, md5)  # a stale copy is not this one
    _write(server / "home" / "models" / "it's" / "model.bin", b"new bytes")
    assert check.confirmed(local, md5)


def test_known_folders_are_not_asked_again(tmp_path):
    server, mount = tmp_path / "server", tmp_path / "MyDrive"
    drive = FakeDrive(server)
    check = DriveApiCheck(drive, mount)
    for name in ("a.bin", "b.bin"):
        _write(server / "x" / "y" / name, name.encode())
        _write(mount / "x" / "y" / name, name.encode())
    assert check.confirmed(mount / "x" / "y" / "a.bin", file_md5(mount / "x" / "y" / "a.bin"))
    asked = len(drive.calls)
    assert asked == 3  # x, y, a.bin
    assert check.confirmed(mount / "x" / "y" / "b.bin", file_md5(mount / "x" / "y" / "b.bin"))
    assert len(drive.calls) == asked + 1  # only the file


def test_wait_durable_waits_for_the_lagging_upload(tmp_path):
    delays = Delays(upload_s=(0.5, 0.8), slow_p=0.0, visible_s=(0.1, 0.2), poll_s=0.05)
    with LaggingStorage(tmp_path / "lag", delays, seed=3) as storage:
        view = storage.view("w1")
        files = [_write(view / "ckpts" / "job" / "1-10" / n, n.encode() * 999) for n in "ab"]
        check = DriveApiCheck(FakeDrive(storage.shared), view)
        began = time.monotonic()
        assert wait_durable(files, check, wait_s=20, poll_s=0.1) == []
        assert time.monotonic() - began >= 0.4  # not before the upload delay
        for f in files:
            assert storage.shared_path(str(f.relative_to(view))).read_bytes() == f.read_bytes()


def test_wait_durable_answers_what_never_arrived(tmp_path):
    delays = Delays(upload_s=(0.1, 0.2), slow_p=0.0, poll_s=0.05)
    with LaggingStorage(tmp_path / "lag", delays, seed=1) as storage:
        view = storage.view("w1")
        storage.freeze("w1")  # a frozen session syncs nothing
        f = _write(view / "out" / "model.bin", b"m" * 100)
        check = DriveApiCheck(FakeDrive(storage.shared), view)
        assert wait_durable([f], check, wait_s=0.6, poll_s=0.1) == [f]


def test_an_unreachable_api_is_not_a_confirmation_and_is_ridden_out(tmp_path, caplog):
    server, mount = tmp_path / "server", tmp_path / "MyDrive"
    drive = FakeDrive(server)
    drive.fail_next = 2
    local = _write(mount / "f.bin", b"x")
    _write(server / "f.bin", b"x")
    assert wait_durable([local], DriveApiCheck(drive, mount), wait_s=5, poll_s=0.01) == []
    assert [r.message for r in caplog.records if "failed" in r.message] == [
        "durability check drive failed: ConnectionError: Drive API unreachable (fake)"
    ]


def test_no_check_confirms_at_once_and_unknown_checks_are_refused(tmp_path):
    assert isinstance(make_check("none", tmp_path), NoCheck)
    assert wait_durable([tmp_path / "never-written"], NoCheck(), wait_s=60) == []
    with pytest.raises(
        ConfigError, match="unknown durability check 'md5'; fix: one of none, drive"
    ):
        make_check("md5", tmp_path)


def test_drive_needs_a_root_under_the_drive_mount(tmp_path):
    with pytest.raises(ConfigError, match=r"not under a Drive mount \(.../MyDrive\); fix"):
        make_check("drive", tmp_path / "home")
    check = DriveApiCheck(FakeDrive(tmp_path / "server"), tmp_path / "MyDrive")
    with pytest.raises(ConfigError, match="is not under the Drive mount"):
        check.confirmed(tmp_path / "elsewhere" / "f.bin", "0" * 32)
