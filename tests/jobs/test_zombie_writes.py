"""A superseded attempt writes nothing in the shared storage (issue 11, point 3).

A real attempt process (a checkpoint writer, or a job publishing its bundle) on a real
redis-server freezes itself with SIGSTOP in the middle of its copy into the storage: at
the Nth lease check, before or after that check answered. Its lease (2 s) runs out, a
second attempt takes the job over, and then the frozen one is woken with SIGCONT (or
killed). The storage must then hold only what was published: the second attempt's
checkpoint or bundle, no `.tmp-*` folder, no partial file, no unpublished folder.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from factory.files import tree_sha256
from factory.training.checkpoint import CheckpointStore
from jobs.attempt import Attempt
from jobs.attempt_env import AttemptEnv
from jobs.context import RedisContext
from jobs.lease import Leases

ROOT = Path(__file__).resolve().parents[2]
JOB = "zombie-job"
TTL_S = 2.0
EXIT_SUPERSEDED = 3
BIG = 40_000  # bytes: ten 4 kB chunks per file

# the attempt process: freezes itself at lease check number FREEZE_AT (before or after
# the check answered), then goes on when woken; exits 3 when it ends superseded
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import redis
    import factory.files
    from factory.training.checkpoint import CheckpointStore
    from factory.training.context import Superseded
    from jobs.attempt import Attempt
    from jobs.attempt_env import AttemptEnv
    from jobs.context import RedisContext
    from jobs.lease import Leases

    url, home, mode, freeze_at, when = sys.argv[1:6]
    factory.files.COPY_CHUNK_BYTES = 4000
    conn = redis.Redis.from_url(url)
    leases = Leases(conn, ttl_s=2.0)
    lease = leases.claim("zombie-job", "w1")
    owner = RedisContext if mode == "checkpoint" else Attempt
    real_guard, calls = owner._guard, []

    def guard(self):
        calls.append(1)
        if len(calls) == int(freeze_at) and when == "before":
            os.kill(os.getpid(), signal.SIGSTOP)
        real_guard(self)
        if len(calls) == int(freeze_at) and when == "after":
            os.kill(os.getpid(), signal.SIGSTOP)

    owner._guard = guard
    big = {"model.bin": bytes(range(256)) * 157, "opt.bin": b"o" * 40000}
    if mode == "checkpoint":
        ctx = RedisContext(conn, leases, lease, CheckpointStore(Path(home), "zombie-job"))
        try:
            ctx.save_checkpoint(10, big, {"step": 10})
        except Superseded:
            sys.exit(3)
    else:
        attempt = Attempt(lease, leases, AttemptEnv(home=Path(home), lease_ttl_s=2.0,
                                                    attempt=lease.attempt))
        staged = attempt.staged_dir()
        staged.mkdir()
        for name, data in big.items():
            (staged / name).write_bytes(data)
        if not attempt.publish({"kind": "train", "by": "w1"}, None):
            sys.exit(3)
    sys.exit(0)
    """
)


def _start(url: str, home: Path, mode: str, freeze_at: int, when: str) -> subprocess.Popen:
    args = [sys.executable, "-c", CHILD, url, str(home), mode, str(freeze_at), when]
    return subprocess.Popen(args, cwd=ROOT, stderr=subprocess.PIPE, text=True)


def _wait_stopped(proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the attempt ended before it froze: {proc.stderr.read()}")
        if psutil.Process(proc.pid).status() == psutil.STATUS_STOPPED:
            return
        time.sleep(0.02)
    pytest.fail("the attempt never froze")


def _take_over(conn) -> tuple[Leases, object]:
    """Wait out the frozen attempt's lease, then claim the job as attempt 2."""
    leases = Leases(conn, ttl_s=30.0)
    deadline = time.monotonic() + 10 * TTL_S
    while time.monotonic() < deadline:
        lease = leases.claim(JOB, "w2")
        if lease is not None:
            return leases, lease
        time.sleep(0.1)
    pytest.fail("the frozen attempt's lease never expired")


def _finish(proc: subprocess.Popen, wake: bool) -> None:
    if wake:
        proc.send_signal(signal.SIGCONT)
        code = proc.wait(timeout=60)
        err = proc.stderr.read()
        assert code == EXIT_SUPERSEDED, err
        assert "superseded" in err or "lost its lease" in err  # logged, not a traceback
        assert "Traceback" not in err
    else:
        proc.kill()
        proc.wait(timeout=60)


def _tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@pytest.mark.parametrize(
    ("freeze_at", "when", "wake"),
    [(3, "before", True), (5, "after", True), (12, "after", True), (4, "before", False)],
    ids=["woken-before-a-check", "woken-after-a-check", "woken-before-install", "killed"],
)
def test_a_checkpoint_writer_frozen_mid_copy_leaves_only_published_checkpoints(
    redis_server, tmp_path, freeze_at, when, wake
):
    home, conn = tmp_path / "home", redis_server.client()
    zombie = _start(redis_server.url, home, "checkpoint", freeze_at, when)
    _wait_stopped(zombie)
    job_dir = CheckpointStore(home, JOB).job_dir
    assert any(p.name.startswith(".tmp-1-10-") for p in job_dir.iterdir())  # mid-copy
    if not wake:
        _finish(zombie, wake)  # killed mid-copy: its partial copy stays, for now
    leases, lease = _take_over(conn)
    ctx = RedisContext(conn, leases, lease, CheckpointStore(home, JOB))
    assert ctx.latest_checkpoint() is None  # and removes the partial copy of attempt 1
    assert ctx.save_checkpoint(20, {"model.bin": b"m" * 100}, {"step": 20})
    if wake:
        _finish(zombie, wake)
    assert sorted(p.name for p in job_dir.iterdir()) == ["2-20", "manifest.json"]
    assert [r.dirname for r in ctx.published_records()] == ["2-20"]


@pytest.mark.parametrize("wake", [True, False], ids=["woken", "killed"])
def test_a_job_frozen_while_copying_its_bundle_publishes_nothing(redis_server, tmp_path, wake):
    home, conn = tmp_path / "home", redis_server.client()
    zombie = _start(redis_server.url, home, "bundle", 4, "after")
    _wait_stopped(zombie)
    staged = home / "models" / ".staged"
    assert _tree(staged)  # a partial copy of attempt 1's bundle
    if not wake:
        _finish(zombie, wake)
    leases, lease = _take_over(conn)
    attempt = Attempt(lease, leases, AttemptEnv(home=home, lease_ttl_s=30.0, attempt=2))
    assert attempt.remove_leftovers() == [f"{JOB}-1"]
    local = attempt.staged_dir()
    local.mkdir()
    (local / "model.bin").write_bytes(b"second")
    assert attempt.publish({"kind": "train", "by": "w2"}, None)
    if wake:
        _finish(zombie, wake)
    assert _tree(home / "models") == [".staged", JOB, f"{JOB}/model.bin"]
    assert (home / "models" / JOB / "model.bin").read_bytes() == b"second"
    result = json.loads(conn.get(f"mlf:result:{JOB}"))
    assert result["by"] == "w2" and not local.exists()
    assert result["output_sha256"] == tree_sha256(home / "models" / JOB)  # for its consumers
