"""The session budget inside a LeasedWorker: a Colab tab ends after so many hours, so
near its end a worker declines jobs that would not fit and hands back the running one."""

from __future__ import annotations

import logging
import signal
import time

from rq.job import JobStatus

from jobs import keys
from jobs.control import defer_on, requeue_job
from jobs.entry import EXIT_HANDBACK, EXIT_WAITS
from worker.resilience import REDIS_DOWN

log = logging.getLogger("worker")


class SessionHandBack:
    """Mixed into LeasedWorker (uses its settings, connection and _signal_horse)."""

    def _duration_key(self) -> str:
        return self._duration_of

    def _declines(self, job, queue) -> bool:
        """Near the session's end: put the job back instead of starting it."""
        budget = self.settings.budget
        if budget.must_hand_back():
            log.warning(
                "session ends in %.0f s: leaving job %s to another worker",
                budget.remaining_s(),
                job.id,
            )
            requeue_job(self.connection, job.id, queue.name, at_front=True)
            self._stop_requested = self.session_over = True
            return True
        expected = self.connection.hget(keys.DURATIONS, self._duration_key())
        if expected is None or budget.fits(float(expected)):
            return False
        log.warning(
            "job %s took %.0f s last time; %.0f s of session left: declined",
            job.id,
            float(expected),
            budget.remaining_s(),
        )
        if job.id in self._declined:
            time.sleep(5.0)  # only jobs that do not fit are left: do not spin
        self._declined.add(job.id)
        requeue_job(self.connection, job.id, queue.name)
        return True

    def _record_duration(self, job, seconds: float) -> None:
        try:
            if self._duration_key() and job.get_status() == JobStatus.FINISHED:
                self.connection.hset(keys.DURATIONS, self._duration_key(), f"{seconds:.1f}")
        except REDIS_DOWN as exc:  # a hint for the session budget only
            log.warning("duration of job %s not recorded (%s)", job.id, type(exc).__name__)

    def _hand_back_if_session_ends(self) -> None:
        if self._budget_handback or not self.settings.budget.must_hand_back():
            return
        self._budget_handback = True
        log.warning(
            "session ends in %.0f s: checkpointing and handing the job back",
            self.settings.budget.remaining_s(),
        )
        self._signal_horse(signal.SIGUSR1, group=False)

    def _put_back_planned(self, job, queue, horse_exit: int | None) -> bool:
        """A horse that ended as planned puts its job back: handed back (requeued at the
        front, no budget used) or waiting for a dependency that runs again (deferred on
        it, jobs.handoff); False for any other end."""
        state = keys.state(job.id)
        if horse_exit == EXIT_HANDBACK:
            self._redis(self.connection.hincrby, state, "handbacks", 1)
            self._redis(self.connection.hset, state, "status", "handed back")
            self._redis(requeue_job, self.connection, job.id, queue.name, at_front=True)
            return True
        if horse_exit == EXIT_WAITS:
            waits_for = self._redis(self.connection.hget, state, "waits_for").decode()
            log.warning("job %s waits for %s to run again", job.id, waits_for)
            self._redis(defer_on, self.connection, job.id, waits_for)
            return True
        return False
