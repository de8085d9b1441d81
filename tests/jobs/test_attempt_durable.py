"""A publisher with a durability check (issue 11, point 2) publishes a checkpoint or an
output in Redis only once the platform confirms its copy: a fake Drive API answering
from the lagging storage's shared copy, on a real redis-server."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from factory.files import tree_sha256
from factory.training.checkpoint import CheckpointStore
from jobs import keys
from jobs.attempt import Attempt
from jobs.attempt_env import AttemptEnv
from jobs.context import RedisContext
from jobs.durable import DriveApiCheck
from jobs.lease import Leases
from tests.fake_drive import FakeDrive
from tests.lagging_storage import Delays, LaggingStorage

JOB = "durable-job"
DELAYS = Delays(upload_s=(0.6, 1.0), slow_p=0.0, visible_s=(0.1, 0.2), poll_s=0.05)


@pytest.fixture
def storage(tmp_path):
    with LaggingStorage(tmp_path / "lag", DELAYS, seed=7) as lagging:
        yield lagging


def _attempt(redis_server, view: Path, drive: FakeDrive, wait_s: float = 30.0) -> Attempt:
    leases = Leases(redis_server.client(), ttl_s=30.0)
    lease = leases.claim(JOB, "w1")
    env = AttemptEnv(home=view, attempt=lease.attempt, storage_visibility_wait_s=wait_s)
    attempt = Attempt(lease, leases, env)
    attempt.durable_ = DriveApiCheck(drive, view)  # what durability=drive builds on Colab
    return attempt


def _on_drive(storage: LaggingStorage, view: Path, files: list[Path]) -> bool:
    return all(
        storage.shared_path(str(f.relative_to(view))).is_file()
        and storage.shared_path(str(f.relative_to(view))).read_bytes() == f.read_bytes()
        for f in files
    )


def test_a_checkpoint_is_published_only_once_drive_holds_it(redis_server, storage):
    view = storage.view("w1")
    attempt = _attempt(redis_server, view, FakeDrive(storage.shared))
    store = CheckpointStore(view, JOB)
    ctx = RedisContext(
        redis_server.client(),
        attempt.leases,
        attempt.lease,
        store,
        confirm_durable=attempt.confirm_durable,
    )
    seen = {}
    publish = attempt.leases.publish_checkpoint

    def spy(lease, record_json, step, keep):
        folder = store.job_dir / json.loads(record_json)["dirname"]
        seen["on_drive"] = _on_drive(storage, view, sorted(folder.iterdir()))
        return publish(lease, record_json, step, keep)

    attempt.leases.publish_checkpoint = spy
    assert ctx.save_checkpoint(10, {"model.bin": b"w" * 5000}, {"step": 10})
    assert seen == {"on_drive": True}
    assert redis_server.client().llen(keys.checkpoints(JOB)) == 1


def test_an_output_is_final_only_once_drive_holds_it(redis_server, storage, caplog):
    caplog.set_level(logging.INFO, logger="jobs.attempt")
    view = storage.view("w1")
    attempt = _attempt(redis_server, view, FakeDrive(storage.shared))
    staged = attempt.staged_dir()
    staged.mkdir()
    (staged / "booster.ubj").write_bytes(b"b" * 9000)
    (staged / "meta.json").write_text("{}")
    expected = tree_sha256(staged)
    seen = {}
    finalize = attempt.leases.finalize

    def spy(lease, result_json, progress=None):
        seen["on_drive"] = _on_drive(storage, view, sorted(attempt.shared_.iterdir()))
        return finalize(lease, result_json, progress)

    attempt.leases.finalize = spy
    assert attempt.publish({"kind": "train"}, None)
    assert seen == {"on_drive": True}
    assert tree_sha256(attempt.final_dir()) == expected
    assert any("output confirmed durable by drive" in r.message for r in caplog.records)


def test_an_output_never_confirmed_is_published_anyway_and_said(redis_server, storage, caplog):
    view = storage.view("w1")
    storage.freeze("w1")  # nothing of this session reaches Drive
    attempt = _attempt(redis_server, view, FakeDrive(storage.shared), wait_s=0.5)
    staged = attempt.staged_dir()
    staged.mkdir()
    (staged / "booster.ubj").write_bytes(b"b" * 100)
    assert attempt.publish({"kind": "train"}, None)
    assert redis_server.client().get(keys.result(JOB)) is not None
    warnings = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "output: 1 of 1 files not confirmed durable by drive within 0 s (first: booster.ubj)" in w
        and "published anyway" in w
        for w in warnings
    ), warnings
