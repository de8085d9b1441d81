"""An RQ worker (fork model) with leases, renewal, self-fencing, a reaper and hand-back.

The parent process never touches CUDA or the training code: it claims the lease,
forks the work horse (which runs jobs.entry.run_job), renews the lease every
TTL/3 from a thread, kills the horse when the lease is lost or cannot be renewed
for a whole TTL (self-fencing), and runs the reaper every few seconds, busy or idle.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import redis
from rq.exceptions import NoSuchJobError
from rq.job import JobStatus
from rq.serializers import JSONSerializer
from rq.utils import now as rq_now
from rq.worker import WorkerStatus

from jobs import keys
from jobs.attempt_env import DEFAULT_VISIBILITY_WAIT_S, AttemptEnv, write_lease_deadline
from jobs.attempt_env import request_stop as stop_this_training
from jobs.context import read_progress
from jobs.control import cancel_dependents, remove_started, requeue_job
from jobs.entry import ENTRY_POINT, EXIT_HANDBACK, EXIT_SUPERSEDED, EXIT_WAITS
from jobs.lease import DEFAULT_LEASE_TTL_S, Lease, Leases
from jobs.reaper import DEFAULT_PREEMPTION_BUDGET, QUIET_S, Reaper
from jobs.reconcile import close_ended_plans, reconcile_if_due
from jobs.spec import JobSpec, SpecError
from jobs.trial import end_failed_trial
from jobs.versioning import code_version
from worker.code_install import CodeInstaller, CodeUnavailable, switch_to
from worker.handback import SessionHandBack
from worker.horse import die_with_parent
from worker.refusals import IDLE_POLL_S, QUARANTINE, Refusals, unreadable_reason
from worker.resilience import REDIS_DOWN, ResilientWorker, counted
from worker.session import SessionBudget

log = logging.getLogger("worker")
RENEW_RETRY_S = 1.0  # between renewal attempts once one has failed
# RQ's heartbeat of a busy worker (a 12-command transaction): every 30 min, and the
# started-registry entry it refreshes lives longer than that (get_heartbeat_ttl)
RQ_HEARTBEAT_S = 1800
RQ_WORKER_TTL_S = 900  # an idle worker blocks this long (less 15 s) per dequeue
RQ_MAINTENANCE_S = 3600  # RQ's registry cleanup (fleet-wide: one worker per interval)


@dataclass(frozen=True)
class WorkerSettings:
    home: Path
    lease_ttl_s: float = DEFAULT_LEASE_TTL_S
    # renewals (the bulk of a busy worker's Redis bill) come every 2/3 of the TTL; one that
    # fails is retried every RENEW_RETRY_S until a whole TTL has passed (then: fenced)
    lease_renew_every_s: float | None = None
    # the most the reaper thread waits before asking Redis whether a pass is due; default
    # none: the fleet's mark says when (jobs.reaper)
    reaper_interval_s: float | None = None
    poison_failures: int = 3
    preemption_budget: int = DEFAULT_PREEMPTION_BUDGET  # see jobs.lease's reap
    reconcile_interval_s: float = 900.0  # a safety net for rare inconsistencies

    @property
    def renew_every_s(self) -> float:
        return self.lease_renew_every_s or self.lease_ttl_s * 2 / 3

    @property
    def reaper_quiet_s(self) -> float:
        """How long an idle fleet with nothing started waits between passes."""
        return min(QUIET_S, 4 * self.lease_ttl_s)

    budget: SessionBudget = field(default_factory=SessionBudget.start)
    # datasets are copied here (local disk) once per session, verified by checksum
    data_cache: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "mlf-cache")
    # a job for other code: "auto" installs the plan's wheel, "never" leaves it queued
    install: str = "auto"
    code_folder: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "mlf-code")
    refusal_retry_s: float = 300.0  # a job this worker refused is not looked at again before
    # a handed-over file (checkpoint, fold or model output) is waited for this long
    storage_visibility_wait_s: float = DEFAULT_VISIBILITY_WAIT_S
    durability: str = "none"  # how a copy is confirmed durable (jobs.durable.CHECKS)


class LeasedWorker(SessionHandBack, ResilientWorker):
    """rq.Worker plus the lease protocol of DESIGN.md ("Leases, fencing and recovery"),
    on a ResilientWorker: no fault that is not its own death ends it."""

    def __init__(self, queues, *, settings: WorkerSettings, **kwargs) -> None:
        kwargs.setdefault("serializer", JSONSerializer)
        # Redis is metered: our leases detect dead workers, so RQ's own bookkeeping only
        # needs to be slow (its heartbeat while busy, its idle wait, its registry cleanup)
        kwargs.setdefault("job_monitoring_interval", RQ_HEARTBEAT_S)
        kwargs.setdefault("worker_ttl", RQ_WORKER_TTL_S)
        kwargs.setdefault("maintenance_interval", RQ_MAINTENANCE_S)
        super().__init__(queues, **kwargs)
        self.settings = settings
        self.leases = Leases(self.connection, settings.lease_ttl_s)
        self.reaper = Reaper(
            self.connection,
            self.leases,
            self.queue_names(),
            settings.preemption_budget,
            who=self.name,
            quiet_s=settings.reaper_quiet_s,
        )
        self._lease: Lease | None = None
        self._horse_exit: int | None = None
        self._fenced = threading.Event()
        self._done = threading.Event()
        self.stop_signaled = False
        self.session_over = False
        self._declined: set[str] = set()
        self.refusals = Refusals(self.connection)
        self.installer = CodeInstaller(
            settings.home, self.connection, settings.code_folder, settings.install
        )
        self._code_path: Path | None = None  # the plan's code, when it is not ours
        self._budget_handback = False
        self._job_error: BaseException | None = None  # see handle_exception
        self._duration_of = ""
        self._progress_file = Path(tempfile.gettempdir()) / f"mlf-progress-{os.getpid()}.json"
        self._lease_file = self._progress_file.with_name(f"mlf-lease-{os.getpid()}.json")
        self._attempt_env = AttemptEnv(
            home=settings.home,
            lease_ttl_s=settings.lease_ttl_s,
            progress_file=self._progress_file,
            data_cache=settings.data_cache,
            storage_visibility_wait_s=settings.storage_visibility_wait_s,
            lease_file=self._lease_file,
            durability=settings.durability,
        )
        os.environ.update(self._attempt_env.to_env())  # the horse inherits it

    # -- the loop ---------------------------------------------------------------
    def work(self, *args, **kwargs) -> bool:
        reaper = threading.Thread(target=self._reap_forever, name="reaper", daemon=True)
        reaper.start()
        self.log.addFilter(self._planned_exit_filter)
        try:
            return super().work(*args, **kwargs)
        finally:
            self.log.removeFilter(self._planned_exit_filter)
            self._done.set()
            self.reaper.wake.set()
            self._progress_file.unlink(missing_ok=True)
            self._lease_file.unlink(missing_ok=True)

    def _reap_forever(self) -> None:
        """A pass whenever the fleet's mark lapses (jobs.reaper: one pass per mark across
        all workers); a renewal that saw a dead lease wakes this thread at once."""
        cap_s = self.settings.reaper_interval_s
        next_reconcile = time.monotonic() + self.settings.reconcile_interval_s
        wait_s = 0.0
        while True:
            self.reaper.wake.wait(wait_s)
            woken = self.reaper.wake.is_set()
            self.reaper.wake.clear()
            if self._done.is_set():
                return
            wait_s = cap_s or self.settings.lease_ttl_s
            try:
                if woken:  # the renewal's own mark must not stop this pass
                    self.reaper.reap_once()
                elif self.reaper.next_pass_in_s() == 0:
                    self.reaper.pass_if_due()
                wait_s = min(self.reaper.next_pass_in_s(), cap_s or float("inf"))
                if time.monotonic() >= next_reconcile:
                    next_reconcile = time.monotonic() + self.settings.reconcile_interval_s
                    reconcile_if_due(self.connection, self.settings.reconcile_interval_s)
            except Exception as exc:  # a Redis blip must not kill the reaper thread
                log.warning("reaper pass failed: %s: %s", type(exc).__name__, exc)

    def get_heartbeat_ttl(self, job, working_time: float = 0.0) -> int:
        """RQ's started-registry entry outlives the gap between its heartbeats: RQ's
        cleanup must never take a running job for abandoned (our reaper judges that)."""
        return max(super().get_heartbeat_ttl(job, working_time), self.job_monitoring_interval + 300)

    def maintain_heartbeats(self, job, execution) -> None:
        """RQ's heartbeat while the horse runs; a Redis blip must not abandon the horse."""
        try:
            super().maintain_heartbeats(job, execution)
        except redis.exceptions.RedisError as exc:
            log.warning("heartbeat failed (%s); still monitoring the job", type(exc).__name__)

    # -- one job ----------------------------------------------------------------
    @counted
    def execute_job(self, job, queue) -> None:
        refusal = self._refusal(job)
        if refusal:
            self._refuse(job, queue, *refusal)
            return
        if self._declines(job, queue):
            return
        sent_at = time.time()
        lease = self.leases.claim(job.id, self.name)
        if lease is None:  # a result is final already (a late duplicate): nothing to run
            log.info("job %s already has a final result; skipping", job.id)
            self._drop(job, queue)
            return
        self._lease, self._horse_exit, self._job_error = lease, None, None
        self._fenced.clear()
        os.environ.update(replace(self._attempt_env, attempt=lease.attempt).to_env())
        self._progress_file.unlink(missing_ok=True)
        write_lease_deadline(self._lease_file, lease.attempt, sent_at, self.settings.lease_ttl_s)
        stop = threading.Event()
        renewer = threading.Thread(
            target=self._renew_until, args=(lease, stop), name="lease-renewer", daemon=True
        )
        renewer.start()
        claimed_at = time.monotonic()
        try:
            super().execute_job(job, queue)
            self._record_duration(job, time.monotonic() - claimed_at)
            self._close_plans(job.id)
        finally:
            stop.set()
            renewer.join()
            try:
                self.leases.release(lease)
            except Exception as exc:  # it expires within a TTL anyway
                log.warning("could not release lease of %s: %s", job.id, type(exc).__name__)
            self._lease = None
            if self._budget_handback:
                log.warning("session budget spent: this worker stops")
                self._stop_requested = self.session_over = True

    def _refusal(self, job) -> tuple[str, bool] | None:
        """Why this worker will not run `job`, and whether another worker might: or None.

        A job for other code is judged by its `code` alone: this code may not even parse
        a newer spec. Its own code (installed for it, see worker.code_install) parses it.
        """
        if job.func_name != ENTRY_POINT:
            reason = (
                f"refused: job names callable {job.func_name!r}; only {ENTRY_POINT} runs "
                "(job specs name a kind, never a function)"
            )
            return reason, False
        try:
            raw = JobSpec.raw_dict(job.args[0] if job.args else "")
        except SpecError as exc:
            return f"refused: {exc}", False
        self._code_path = None
        if raw.get("code") != code_version():
            try:
                self._code_path = self.installer.code_for(str(raw.get("code")))
            except CodeUnavailable as exc:
                return f"refused: {exc}", not exc.permanent
            self._duration_of = f"{raw.get('kind')}:{raw.get('model', '')}"[:100]
            return None
        try:
            spec = JobSpec.from_dict(raw)
        except SpecError as exc:
            return f"refused: {exc}", False
        self._duration_of = f"{spec.kind}:{spec.model}"
        return None

    def _refuse(self, job, queue, reason: str, another_may_run_it: bool) -> None:
        """Fail a job no worker can run; leave one that another worker may run queued."""
        from jobs.control import fail_job

        if not another_may_run_it:
            log.error("job %s %s", job.id, reason)
            fail_job(self.connection, job.id, reason)
            self._close_plans(job.id)
            return
        single = len(self.queues) == 1
        self.refusals.put_back(queue.key, queue.intermediate_queue_key if single else None, job.id)
        if self.refusals.add(job.id, reason, self.settings.refusal_retry_s):
            log.error("job %s %s; left queued for another worker", job.id, reason)
            self.connection.hset(keys.state(job.id), "error", reason[:500])

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        """RQ's dequeue, except that jobs this worker refused are skipped (left queued),
        and an entry no worker can read (a job id RQ rejects, a job hash that is not JSON)
        is moved aside with its reason (worker.refusals) instead of ending the loop."""
        while True:
            try:
                result = self._dequeue(timeout, max_idle_time)
            except Exception as exc:
                entry, queue = getattr(exc, "job_id", None), getattr(exc, "queue", None)
                if entry is None or queue is None or isinstance(exc, redis.RedisError):
                    raise
                self._quarantine(queue, entry, exc)
                continue
            if result is None or self._readable(*result):
                return result

    def _dequeue(self, timeout, max_idle_time):
        while self.refusals.active():
            self.heartbeat()
            if self.should_run_maintenance_tasks:
                self.run_maintenance_tasks()
            for queue in self._ordered_queues:
                single = len(self.queues) == 1
                job_id = self.refusals.pop(
                    queue.key, queue.intermediate_queue_key if single else None
                )
                fetched = job_id and self.queue_class._fetch_dequeued_job(
                    self.connection, queue.key, job_id, self.job_class, self.serializer
                )
                if fetched:
                    return fetched
            if timeout is None:  # burst: nothing left that this worker can run
                log.warning(
                    "only jobs this worker cannot run are queued (%s); quitting",
                    self.refusals.summary(),
                )
                return None
            self.set_state(WorkerStatus.IDLE)
            time.sleep(min(IDLE_POLL_S, timeout))
        return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)

    def _readable(self, job, queue) -> bool:
        """Whether RQ can read the job's data (a pickled job raises DeserializationError
        only once its function is asked for); else it is moved aside."""
        try:
            _ = job.func_name, job.args, job.kwargs
        except Exception as exc:
            self._quarantine(queue, job.id, exc)
            return False
        return True

    def _quarantine(self, queue, entry: str, exc: BaseException) -> None:
        reason = unreadable_reason(exc)
        self.refusals.quarantine(queue.key, queue.intermediate_queue_key, entry, reason)
        log.error("queue entry %r moved aside to %s: %s", entry, QUARANTINE, reason)

    def run_maintenance_tasks(self) -> None:
        """RQ's maintenance, once unreadable entries left in RQ's intermediate queue are
        moved aside (RQ's cleanup fetches each one); any other fault of it is logged."""
        try:
            self._sweep_intermediate()
        except REDIS_DOWN as exc:
            log.warning("RQ maintenance postponed: Redis unreachable (%s)", type(exc).__name__)
            return
        try:
            super().run_maintenance_tasks()  # which waits out no outage: it postpones
        except Exception as exc:
            log.error("RQ maintenance failed (%s); carrying on", unreadable_reason(exc))
            self.last_cleaned_at = rq_now()

    def _sweep_intermediate(self) -> None:
        for queue in self.queues:
            for raw in self.connection.lrange(queue.intermediate_queue_key, 0, -1):
                entry = raw.decode(errors="replace")
                try:
                    job = self.job_class.fetch(
                        entry, connection=self.connection, serializer=self.serializer
                    )
                except NoSuchJobError:
                    continue
                except Exception as exc:
                    if isinstance(exc, redis.RedisError):
                        raise
                    self._quarantine(queue, entry, exc)
                    continue
                self._readable(job, queue)

    def _close_plans(self, job_id: str) -> None:
        """A plan whose last job just ended leaves the open set now (factory status lists
        open plans); the reconciler does it anyway, later."""
        try:
            for plan_id in close_ended_plans(self.connection, job_id):
                log.info("plan %s: every job has ended; plan closed", plan_id)
        except Exception as exc:  # the reconciler closes it later
            log.warning("plans of job %s not closed (%s)", job_id, type(exc).__name__)

    def _drop(self, job, queue) -> None:
        """A job whose result is final already: mark it finished, release its dependents."""
        self._redis(remove_started, self.connection, job.origin, job)
        self._redis(job.set_status, JobStatus.FINISHED)
        self._redis(queue.enqueue_dependents, job)

    def _renew_until(self, lease: Lease, stop: threading.Event) -> None:
        """Renew every `renew_every_s`; after a failure, every RENEW_RETRY_S until a whole
        TTL has passed without one, then fence: kill the horse."""
        last_ok = time.monotonic()
        interval = self.settings.renew_every_s
        while not stop.wait(interval):
            interval = self.settings.renew_every_s
            try:
                self._hand_back_if_session_ends()
                sent_at = time.time()
                if self.reaper.renew_and_scan(lease, read_progress(self._progress_file)):
                    last_ok = time.monotonic()
                    ttl_s = self.settings.lease_ttl_s
                    write_lease_deadline(self._lease_file, lease.attempt, sent_at, ttl_s)
                    continue
                reason = "lease lost to a newer attempt"
            except Exception as exc:  # Redis away: retried soon, for up to a TTL
                left_s = self.settings.lease_ttl_s - (time.monotonic() - last_ok)
                if left_s > 0:
                    log.warning(
                        "job %s: lease renewal failed (%s)", lease.job_id, type(exc).__name__
                    )
                    interval = min(RENEW_RETRY_S, left_s)
                    continue
                reason = f"no renewal for {self.settings.lease_ttl_s:.0f} s ({type(exc).__name__})"
            log.error(
                "job %s attempt %s: %s; stopping its training", lease.job_id, lease.attempt, reason
            )
            self._fenced.set()
            self.kill_horse(signal.SIGKILL)
            return

    # -- the horse ----------------------------------------------------------------
    def main_work_horse(self, job, queue) -> None:
        die_with_parent(os.getppid())
        # a hand-back request (SIGUSR1) may come before the job's code is even imported
        signal.signal(signal.SIGUSR1, stop_this_training)
        if self._code_path is not None:  # the plan's code: import the job from it
            switch_to(self._code_path)
        super().main_work_horse(job, queue)

    def _planned_exit_filter(self, record) -> bool:
        """Drop RQ's 'Work-horse terminated unexpectedly' and 'Work horse killed' warnings
        for a horse that ended as planned (fenced, superseded, handed back): our own line
        says what happened."""
        message = record.getMessage()
        if "terminated unexpectedly" not in message and "Work horse killed" not in message:
            return True
        if self._fenced.is_set():
            return False
        ret_val = self._horse_status[1] if self._horse_status else None
        planned = (EXIT_SUPERSEDED, EXIT_HANDBACK, EXIT_WAITS)
        return not (ret_val and os.WIFEXITED(ret_val) and os.WEXITSTATUS(ret_val) in planned)

    def handle_work_horse_killed(self, job, retpid, ret_val, rusage) -> None:
        if ret_val is not None and os.WIFEXITED(ret_val):
            self._horse_exit = os.WEXITSTATUS(ret_val)
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)

    def request_stop(self, signum, frame) -> None:
        self.stop_signaled = True
        super().request_stop(signum, frame)

    def handle_warm_shutdown_request(self) -> None:
        """SIGTERM/SIGINT: ask the horse to checkpoint and hand its job back."""
        super().handle_warm_shutdown_request()
        if self._signal_horse(signal.SIGUSR1, group=False):
            log.warning("stop requested: job will checkpoint and be handed back")

    # -- failures ----------------------------------------------------------------
    def handle_exception(self, job, *exc_info) -> None:
        """In the horse, before handle_job_failure: the job's exception, as raised."""
        self._job_error = exc_info[1]
        super().handle_exception(job, *exc_info)

    def handle_job_failure(
        self, job, queue, started_job_registry=None, exc_string="", execution=None
    ) -> None:
        lease = self._lease
        superseded = (
            lease is None
            or self._fenced.is_set()
            or self._horse_exit == EXIT_SUPERSEDED
            or not self._redis(self.leases.is_current, job.id, lease.attempt)
        )
        if superseded:
            log.warning("job %s: attempt superseded; writing nothing", job.id)
            return
        if self._put_back_planned(job, queue, self._horse_exit):  # handed back, or waits
            return
        self._count_failure(job, queue, exc_string, started_job_registry, execution)

    def _count_failure(self, job, queue, exc_string, registry, execution) -> None:
        text = exc_string or f"work horse exited with status {self._horse_exit}"
        last = text.strip().splitlines()[-1] if text.strip() else "unknown error"
        count = self._redis(self.connection.hincrby, keys.failures(job.id), last[:200], 1)
        crashed = {"error": last[:500], "status": "crashed"}
        self._redis(self.connection.hset, keys.state(job.id), mapping=crashed)
        # an error no retry can fix says so (its class's `permanent`; a horse that died
        # raised nothing in this process)
        permanent = bool(getattr(self._job_error, "permanent", False))
        if count < self.settings.poison_failures and not permanent:
            log.warning(
                "job %s failed (%s, %s of %s); requeued",
                job.id,
                last,
                count,
                self.settings.poison_failures,
            )
            self._redis(requeue_job, self.connection, job.id, queue.name)
            return
        args = (self.connection, self.leases, self._lease, job, queue, text)
        if self._redis(end_failed_trial, *args):  # a failed trial: its plan goes on
            return
        log.error("job %s failed for good: %s", job.id, last)
        failed = {"status": "failed", "final_error": text}
        self._redis(self.connection.hset, keys.state(job.id), mapping=failed)
        super().handle_job_failure(job, queue, registry, exc_string=text, execution=execution)
        reason = f"dependency {job.id} failed: {last}"
        self._redis(cancel_dependents, self.connection, job.id, reason)
