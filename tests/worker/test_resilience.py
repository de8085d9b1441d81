"""A worker never dies of a fault that is not its own death: real processes, real signals.

No signal of a worker goes to pid 0, its own process group or a pid it no longer owns;
Redis away (restarted, connections cut) at any point of a job is waited out.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import threading
import time

import psutil
import pytest
import redis

from jobs import keys
from jobs.lease import _FINALIZE
from jobs.settings import RedisSettings
from tests.runner import (
    TEST_TTL_S,
    alive,
    job_result,
    job_state,
    signal_tree,
    start_worker,
    tree_pids,
    wait_for,
)
from tests.tcp_proxy import TcpProxy
from tests.worker.test_recovery import _checkpointed, _train_id
from worker.worker import LeasedWorker, WorkerSettings

FINALIZE_SHA = hashlib.sha1(_FINALIZE.encode()).hexdigest().encode()


def _xgb(rounds: int) -> tuple[str, ...]:
    """An xgboost job of `rounds` rounds with a checkpoint every 5 (a distinct job per count)."""
    return (
        "profile=tiny",
        f"n_estimators={rounds}",
        "checkpoint_every_rounds=5",
        "early_stopping_rounds=1000",
        "learning_rate=0.05",
        "max_depth=6",
        "max_bin=256",
    )


def _report_id(plan: dict) -> str:
    return next(j["id"] for j in plan["jobs"] if j["kind"] == "report")


def _finished(client, job_id: str) -> bool:
    return job_state(client, job_id).get("status") == "finished"


def _attempts(client, job_id: str) -> int:
    return int(client.get(keys.attempts(job_id)) or 0)


def _log(cluster, name: str) -> str:
    return (cluster.home / f"{name}.log").read_text(errors="replace")


def _assert_never_quit(cluster, name: str) -> None:
    text = _log(cluster, name)
    assert "unhandled exception" not in text and "Traceback" not in text, text[-3000:]


# -- signals only ever go to our own live work horse -------------------------------------
@pytest.fixture
def idle_worker(redis_server, tmp_path):
    connection = RedisSettings(redis_server.url, retries=0).client()
    worker = LeasedWorker(["mlf"], connection=connection, settings=WorkerSettings(home=tmp_path))
    yield worker
    connection.close()


def test_kill_horse_signals_only_a_live_child_of_its_own(idle_worker):
    for pid in (0, os.getpid(), os.getppid()):  # no horse; ourselves; not our child
        idle_worker._horse_pid = pid
        idle_worker.kill_horse(signal.SIGCONT)
        assert not idle_worker._signal_horse(signal.SIGCONT, group=True)
    reaped = subprocess.Popen(["true"])
    reaped.wait()
    idle_worker._horse_pid = reaped.pid  # exited and reaped: the pid may be anyone's now
    assert not idle_worker._signal_horse(signal.SIGKILL, group=True)
    in_our_group = subprocess.Popen(["sleep", "30"])  # a horse that never called setpgrp
    idle_worker._horse_pid = in_our_group.pid
    idle_worker.kill_horse(signal.SIGKILL)  # to that pid only, never killpg(our group)
    assert in_our_group.wait(timeout=5) == -signal.SIGKILL
    own_group = subprocess.Popen(["sleep", "30"], start_new_session=True)
    idle_worker._horse_pid = own_group.pid
    idle_worker.kill_horse(signal.SIGKILL)
    retpid, status, _ = idle_worker.wait_for_horse()
    assert retpid == own_group.pid and os.WTERMSIG(status) == signal.SIGKILL
    assert idle_worker.horse_pid == 0  # reaped under the lock: nothing can signal it now
    own_group.returncode = -signal.SIGKILL  # reaped above; Popen must not wait for it


def test_wait_for_horse_without_a_horse_reaps_no_other_child(idle_worker):
    other = subprocess.Popen(["true"])
    time.sleep(0.3)  # exited, not reaped
    idle_worker._horse_pid = 0
    assert idle_worker.wait_for_horse() == (None, None, None)  # RQ's wait4(0) reaped it
    assert os.waitid(os.P_PID, other.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    assert other.wait(timeout=5) == 0


def test_rq_bookkeeping_without_redis_does_not_end_the_loop(redis_server, idle_worker):
    idle_worker.register_birth()
    redis_server.stop()
    idle_worker.heartbeat()
    idle_worker.set_state("idle")
    idle_worker.check_for_suspension(burst=False)
    idle_worker.run_maintenance_tasks()
    idle_worker.teardown()  # RQ's register_death raised here: the worker quit
    redis_server.restart()
    again = LeasedWorker(
        ["mlf"],
        connection=idle_worker.connection,
        name=idle_worker.name,
        settings=idle_worker.settings,
    )
    again.register_birth()  # this process's leftover registration is taken over
    redis_server.client().hset(again.key, "pid", 1)
    with pytest.raises(ValueError, match="active worker"):
        again.register_birth()  # another process's live registration is not


def test_a_dropped_idle_connection_is_reconnected_transparently(redis_server):
    with TcpProxy(redis_server.port) as proxy:
        client = RedisSettings(proxy.url(redis_server.url)).client()
        client.set("k", "v")
        assert proxy.cut_all() == 1
        assert client.get("k") == b"v"  # no ConnectionError: sent again on a new connection
        proxy.refuse_for(0.2)  # redis-py backs off with full jitter: keep it short
        proxy.cut_all()
        assert client.get("k") == b"v"  # retried with backoff until the host answered
        pool = client.connection_pool.connection_kwargs
        # no PING before commands (each is billed): the retry above found the cut itself
        assert pool["socket_keepalive"] and pool["health_check_interval"] == 0


# -- real worker processes -----------------------------------------------------------
@pytest.mark.slow
def test_a_horse_fenced_while_its_worker_sleeps_never_takes_the_worker_down(cluster):
    """The horse wakes first and exits fenced; its worker, woken 3 s later, reaps it and
    then learns that the lease is lost: RQ then killed `getpgid(0)`, its own group."""
    plan = cluster.submit("xgboost", _xgb(200))
    job = _train_id(plan)
    worker = cluster.worker("w1")
    wait_for(lambda: _checkpointed(cluster.client, job), 60, "a first checkpoint")
    signal_tree(worker, signal.SIGSTOP)
    time.sleep(TEST_TTL_S + 1.5)  # the lease expires
    horses = [pid for pid in tree_pids(worker) if pid != worker.pid]
    for pid in horses:
        os.kill(pid, signal.SIGCONT)
    wait_for(
        lambda: all(psutil.Process(p).status() == psutil.STATUS_ZOMBIE for p in horses),
        30,
        "the horse to exit fenced",
    )
    time.sleep(3.0)
    os.kill(worker.pid, signal.SIGCONT)
    result = wait_for(lambda: job_result(cluster.client, job), 90, "attempt 2 to finish")
    wait_for(lambda: _finished(cluster.client, _report_id(plan)), 60, "the next job")
    assert result["attempt"] == 2 and _attempts(cluster.client, job) == 2
    assert worker.poll() is None, "the worker died"
    assert job_state(cluster.client, _report_id(plan)).get("worker") == "w1"
    assert "lease lost" in _log(cluster, "w1")
    _assert_never_quit(cluster, "w1")


def _result(cluster, job_id: str, timeout: float) -> dict:
    return wait_for(lambda: job_result(cluster.client, job_id), timeout, f"{job_id} to finish")


class _Outage:
    """Restart Redis from a proxy trigger (inside the proxy's thread): stop it at once,
    start it again `down_s` later, in a thread the test joins."""

    def __init__(self, server, down_s: float) -> None:
        self.server, self.down_s = server, down_s
        self.thread: threading.Thread | None = None

    def __call__(self) -> None:
        self.server.stop()
        self.thread = threading.Thread(target=self.server.restart, kwargs={"down_s": self.down_s})
        self.thread.start()

    def join(self) -> None:
        assert self.thread is not None, "the trigger never fired"
        self.thread.join(timeout=30)


@pytest.mark.slow
def test_redis_restarts_at_every_point_of_a_job_are_waited_out(cluster):
    """Idle, just after a claim, mid-training (longer than a lease: fenced, resumed) and
    at finalize: the worker lives on, each job finishes once, the next one is taken."""
    server = cluster.server
    with TcpProxy(server.port) as proxy:
        worker = start_worker(proxy.url(cluster.url), cluster.home, "w1")
        cluster.workers.append(worker)
        wait_for(lambda: "Listening on" in _log(cluster, "w1"), 60, "the worker to listen")
        server.restart(down_s=2.0)  # idle: the reaper, RQ's dequeue and heartbeat

        claimed = cluster.submit("xgboost", _xgb(60))
        job = _train_id(claimed)
        wait_for(lambda: job_state(cluster.client, job).get("attempt"), 30, "a claim", 0.01)
        server.restart(down_s=1.5)  # just after the claim: the start of the job
        assert _result(cluster, job, 90)["attempt"] == 1

        trained = cluster.submit("xgboost", _xgb(200))
        job = _train_id(trained)
        wait_for(lambda: _checkpointed(cluster.client, job), 60, "a first checkpoint")
        # down until the horse, fenced once its lease ran out, has exited, and a while
        # after: what RQ records for it then waits for Redis (RQ raised there and quit)
        server.stop()
        horses = psutil.Process(worker.pid).children
        wait_for(lambda: not horses(), TEST_TTL_S + 60, "the fenced horse to exit", 0.1)
        ended = "work horse ended while Redis is unreachable"
        wait_for(lambda: ended in _log(cluster, "w1"), 60, "the worker to see it, Redis down")
        server.restart()
        assert _result(cluster, job, 120)["attempt"] == 2 == _attempts(cluster.client, job)

        outage = _Outage(server, down_s=1.0)
        fired = proxy.on_request(FINALIZE_SHA, callback=outage)  # the finalize never arrives
        finalized = cluster.submit("xgboost", _xgb(40))
        job = _train_id(finalized)
        wait_for(fired.is_set, 90, "the finalize")
        outage.join()
        assert _result(cluster, job, 90)["attempt"] == 1 == _attempts(cluster.client, job)
        assert worker.poll() is None, "the worker died"
    _assert_never_quit(cluster, "w1")


@pytest.mark.slow
def test_a_plan_runs_to_the_end_through_a_proxy_that_cuts_connections(cluster):
    """Idle connections are cut after 2 s (as hosted Redis does after minutes) and every
    connection now and then: the worker reconnects and never dies."""
    with TcpProxy(cluster.server.port, idle_cut_s=2.0) as proxy:
        worker = start_worker(proxy.url(cluster.url), cluster.home, "w1")
        cluster.workers.append(worker)
        plan = cluster.submit("xgboost", _xgb(200))
        report = _report_id(plan)
        deadline = time.monotonic() + 120
        while not _finished(cluster.client, report) and time.monotonic() < deadline:
            time.sleep(2.5)
            proxy.cut_all()
        assert _finished(cluster.client, report), _log(cluster, "w1")[-3000:]
        assert job_result(cluster.client, _train_id(plan))["attempt"] >= 1
        assert proxy.cuts >= 3 and worker.poll() is None
    _assert_never_quit(cluster, "w1")
    # transparent: every cut command was sent again (jobs.settings' retries), none failed
    assert "could not connect" not in _log(cluster, "w1")


# -- in a Jupyter kernel ---------------------------------------------------------------
def _kernel_pid(km) -> int:
    return km.provisioner.process.pid


@pytest.mark.slow
def test_run_worker_in_a_kernel_lives_through_a_fenced_job_and_a_redis_restart(cluster):
    jupyter_client = pytest.importorskip("jupyter_client")
    from tests.conftest import REPO_ROOT

    km = jupyter_client.KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(REPO_ROOT))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        plan = cluster.submit("xgboost", _xgb(200))
        job = _train_id(plan)
        cell = (
            "from worker.run import run_worker\n"
            f"worked = run_worker(redis_url={cluster.url!r}, home={str(cluster.home)!r}, "
            f"name='kernel', max_jobs=3, lease_ttl_s={TEST_TTL_S}, reaper_interval_s=1.0, "
            f"data_cache={str(cluster.home / '.cache')!r}, log_level='WARNING')\n"
            "print('WORKED', worked)"
        )
        msg_id = kc.execute(cell)
        wait_for(lambda: _checkpointed(cluster.client, job), 90, "a first checkpoint")
        kernel = psutil.Process(_kernel_pid(km))
        frozen = [kernel, *kernel.children(recursive=True)]
        for proc in frozen:
            proc.send_signal(signal.SIGSTOP)
        time.sleep(TEST_TTL_S + 1.5)
        for proc in frozen[1:]:  # the horse first: it finds its lease gone and exits
            proc.send_signal(signal.SIGCONT)
        time.sleep(3.0)
        kernel.send_signal(signal.SIGCONT)
        wait_for(lambda: _attempts(cluster.client, job) == 2, 60, "attempt 2")
        cluster.server.restart(down_s=1.5)
        reply = _reply(kc, msg_id, timeout=150)
        assert reply["content"]["status"] == "ok", reply["content"]
        assert job_result(cluster.client, job)["attempt"] == 2
        assert _finished(cluster.client, _report_id(plan))
        assert alive(kernel.pid)
        check = kc.execute_interactive("1+1", timeout=30, output_hook=lambda msg: None)
        assert check["content"]["status"] == "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def _reply(kc, msg_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = kc.get_shell_msg(timeout=1)
        except Exception:  # queue.Empty: nothing yet
            continue
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg
    raise AssertionError(f"the run_worker cell did not return within {timeout:.0f} s")


def test_a_connection_cut_mid_command_is_sent_again_only_with_retries(redis_server):
    """redis-py itself replaces a pooled connection found closed; one cut while a command
    is on it (a blocking pop, a restart) needs jobs.settings' retries."""
    with TcpProxy(redis_server.port) as proxy:
        for retries in (0, 4):
            client = RedisSettings(proxy.url(redis_server.url), retries=retries).client()
            client.ping()
            threading.Timer(0.3, proxy.cut_all).start()
            if retries:
                assert client.blpop(["nothing"], timeout=1) is None
            else:
                with pytest.raises(redis.exceptions.ConnectionError):
                    client.blpop(["nothing"], timeout=1)
            client.close()
