"""A worker never dies of a fault that is not its own death (the base of LeasedWorker).

- No signal goes to pid 0, to the worker's own process group (in a notebook: the Jupyter
  kernel) or to a pid it no longer owns: only to its live, unreaped work horse. RQ's
  kill_horse ran `killpg(getpgid(horse_pid))` after the horse was reaped and its pid 0.
- Redis away (restarted, failed over, a connection cut) at any point is waited out for
  up to REDIS_OUTAGE_S: RQ's heartbeat, state, suspension check and maintenance are
  skipped while it is away; its start-of-job and end-of-job records and what it writes
  for a horse that died wait for it. RQ raised out of its loop there, and its teardown
  failed too, which ended the worker. Longer outages end RQ's loop with `loop_fault`
  set; worker.run starts it again once Redis answers.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import threading

from rq import Worker
from rq.exceptions import InvalidJobOperation
from rq.job import JobStatus
from rq.utils import now, utcformat

from jobs.lease import REDIS_DOWN, REDIS_OUTAGE_S, call_with_retry
from worker.horse import signal_child, wait_until_exited

__all__ = ["REDIS_DOWN", "ResilientWorker", "counted"]
log = logging.getLogger("worker")


def counted(execute_job):
    """Count the jobs RQ's loop went through (its max_jobs counts the same) and keep the
    exception that ended the loop, so that run_worker tells a fault from the end of work."""

    @functools.wraps(execute_job)
    def counting(self, job, queue) -> None:
        try:
            execute_job(self, job, queue)
        except Exception as exc:
            self.loop_fault = exc
            raise
        self.jobs_done += 1

    return counting


class ResilientWorker(Worker):
    """rq.Worker (fork model) that rides out Redis outages and signals only its own horse."""

    max_connection_wait_time = 10.0  # RQ's dequeue backoff cap: back within 10 s of Redis

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._horse_lock = threading.RLock()  # a horse is signalled or reaped, never both
        self._horse_status: tuple | None = None  # wait4's answer for the last horse
        self.jobs_done = 0
        self.loop_fault: BaseException | None = None

    def heartbeat(self, timeout=None, pipeline=None) -> None:
        """RQ's heartbeat (dashboards only: leases detect dead workers); skipped while
        Redis is away."""
        if pipeline is not None:
            return super().heartbeat(timeout, pipeline)
        try:
            super().heartbeat(timeout, pipeline)
        except REDIS_DOWN as exc:
            log.warning("RQ heartbeat skipped: Redis unreachable (%s)", type(exc).__name__)

    def set_state(self, state, pipeline=None) -> None:
        if pipeline is not None:
            return super().set_state(state, pipeline)
        try:
            super().set_state(state, pipeline)
        except REDIS_DOWN as exc:
            log.warning(
                "worker state %s not saved: Redis unreachable (%s)", state, type(exc).__name__
            )

    def check_for_suspension(self, burst: bool) -> None:
        try:
            super().check_for_suspension(burst)
        except REDIS_DOWN as exc:
            log.warning("suspension not checked: Redis unreachable (%s)", type(exc).__name__)

    def run_maintenance_tasks(self) -> None:
        try:
            super().run_maintenance_tasks()
        except REDIS_DOWN as exc:  # last_cleaned_at stays: the next loop tries again
            log.warning("RQ maintenance postponed: Redis unreachable (%s)", type(exc).__name__)

    def prepare_execution(self, job):
        """RQ's execution record (the started registry), waiting out an outage."""
        prepare = super().prepare_execution

        def attempt():
            before = set(self.executions)
            try:
                return prepare(job)
            except REDIS_DOWN:  # its unsaved Execution must not become the horse's
                for execution_id in set(self.executions) - before:
                    del self.executions[execution_id]
                raise

        return self._redis(attempt)

    def prepare_job_execution(self, job, remove_from_intermediate_queue: bool = False) -> None:
        """(In the horse) RQ's start-of-job bookkeeping, waiting out an outage."""
        self._redis(super().prepare_job_execution, job, remove_from_intermediate_queue)

    def handle_execution_ended(self, job, queue, heartbeat_ttl) -> None:
        self._redis(super().handle_execution_ended, job, queue, heartbeat_ttl)

    def handle_job_success(self, job, queue, started_job_registry, execution) -> None:
        """(In the horse) RQ's success bookkeeping (status, dependents), after the fenced
        result; waiting out an outage, so that the result is not left without them."""
        self._redis(super().handle_job_success, job, queue, started_job_registry, execution)

    def register_birth(self) -> None:
        """RQ's, except that this process's own earlier registration (left when Redis was
        away at its loop's end) is taken over instead of refused as another live worker."""
        try:
            super().register_birth()
        except ValueError:
            pid, host = self.connection.hmget(self.key, "pid", "hostname")
            if (pid, host) != (str(os.getpid()).encode(), (self.hostname or "").encode()):
                raise
            log.warning("worker %s: taking over this process's earlier registration", self.name)
            self.connection.hset(self.key, "death", utcformat(now()))
            super().register_birth()

    def teardown(self) -> None:
        try:
            super().teardown()
        except REDIS_DOWN as exc:
            log.warning(
                "worker %s: end not registered, Redis unreachable (%s); the registration "
                "expires by itself",
                self.name,
                type(exc).__name__,
            )
            if self.pubsub_thread is not None:
                self.pubsub_thread.stop()  # it ends within its poll, without UNSUBSCRIBE

    def _redis(self, fn, *args, **kwargs):
        """`fn(...)`, waiting out a Redis outage of up to REDIS_OUTAGE_S (then
        RedisUnreachable)."""
        return call_with_retry(fn, *args, window_s=REDIS_OUTAGE_S, **kwargs)

    # -- the horse: signalled only while it is ours --------------------------------
    def kill_horse(self, sig=signal.SIGKILL) -> None:
        """RQ's kill_horse ran `killpg(getpgid(horse_pid))` even once the horse was reaped
        and its pid 0: the worker's own process group (in a notebook, the kernel)."""
        self._signal_horse(sig, group=True)

    def _signal_horse(self, sig, group: bool) -> bool:
        """Signal the work horse if it is still our unreaped child (see signal_child)."""
        with self._horse_lock:
            pid = self.horse_pid
            sent = bool(pid) and signal_child(pid, sig, group)
        name = signal.Signals(sig).name
        if sent:
            log.info("sent %s to work horse %s", name, pid)
        else:
            log.info("no work horse running (pid %s): %s not sent", pid or "none", name)
        return sent

    def wait_for_horse(self):
        """Wait for the horse to exit, then reap it under the lock that _signal_horse
        takes, so that a signal never goes to a reaped (maybe reused) pid."""
        pid = self.horse_pid
        if not pid:  # RQ's wait4(0) would reap any child of our process group
            return None, None, None
        # a wait that does not reap (the pid stays ours), then a reap under the lock
        exited = wait_until_exited(pid)
        with self._horse_lock if exited else contextlib.nullcontext():
            try:
                status = os.wait4(pid, 0)
            except ChildProcessError:
                return None, None, None
            self._horse_pid = 0
            self._horse_status = status
        return status

    def monitor_work_horse(self, job, queue, execution) -> None:
        """RQ's monitoring, except that a Redis outage once the horse has exited (RQ asks
        Redis the job's status, then records a failure) is waited out: RQ raised out of
        its loop there, and its teardown failed too, which ended the worker."""
        self._horse_status = None
        while True:
            try:
                return super().monitor_work_horse(job, queue, execution)
            except REDIS_DOWN as exc:
                if self._horse_status is not None:
                    reason = exc
                    break
                log.warning("job %s: Redis unreachable (%s); still monitoring", job.id, exc)
        log.warning(
            "job %s: work horse ended while Redis is unreachable (%s); recording its end "
            "when Redis is back",
            job.id,
            type(reason).__name__,
        )
        self._horse_pid = 0
        self.executions.pop(execution.id, None)
        try:
            self._redis(self._record_horse_exit, job, queue, execution)
        except REDIS_DOWN as exc:
            log.error("job %s: end not recorded (%s); the reaper requeues it", job.id, exc)

    def _record_horse_exit(self, job, queue, execution) -> None:
        """The end of RQ's monitor_work_horse: what a horse that did not exit 0 leaves."""
        retpid, ret_val, rusage = self._horse_status
        if ret_val == os.EX_OK:
            return
        try:
            status = job.get_status()
        except InvalidJobOperation:  # finished, and its record expired
            return
        if self._stopped_job_id == job.id:
            self._handle_stopped_job(job, queue, execution)
        elif status not in (JobStatus.FINISHED, JobStatus.FAILED):
            job.ended_at = now()
            how = f" (signal {os.WTERMSIG(ret_val)})" if ret_val and os.WIFSIGNALED(ret_val) else ""
            text = f"Work-horse terminated unexpectedly; waitpid returned {ret_val}{how}; "
            self.handle_work_horse_killed(job, retpid, ret_val, rusage)
            self.handle_job_failure(job, queue=queue, exc_string=text, execution=execution)
