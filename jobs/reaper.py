"""The reaper: a started job whose lease is gone is requeued, exactly once per attempt.

Every worker (busy or idle) and `factory status` run it. Finding the candidates is
one Lua call over the started registries (their entries whose lease key is missing),
and a busy worker's lease renewal makes that call too, so the reaper costs an idle
worker one call per pass and a busy one nothing extra.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from jobs import keys
from jobs.lease import REDIS_OUTAGE_S, RENEW_FN, Lease, Leases, call_with_retry

log = logging.getLogger("jobs.reaper")
DEFAULT_PREEMPTION_BUDGET = 20
BUDGET_FIELD = "preemption_budget"  # of a job's state: its own budget, set by submit

# scan(out, first, prefix): for the started registries KEYS[first..], append
# (registry index, job id, attempt) of each job whose lease key is gone to `out`, and
# keep the shortest live lease's TTL in out[1] (-1: none)
_SCAN_FN = """
local function scan(out, first, prefix)
  for q = first, #KEYS do
    for _, entry in ipairs(redis.call('ZRANGE', KEYS[q], 0, -1)) do
      local job_id = string.match(entry, '^(.*):[^:]*$') or entry
      local ttl = redis.call('PTTL', prefix .. 'lease:' .. job_id)
      if ttl < 0 then
        local attempt = redis.call('HGET', prefix .. 'state:' .. job_id, 'attempt')
        if attempt then
          table.insert(out, q - first); table.insert(out, job_id); table.insert(out, attempt)
        end
      elseif out[1] < 0 or ttl < out[1] then
        out[1] = ttl
      end
    end
  end
end
"""
_SCAN = (
    _SCAN_FN
    + """
local out = {-1}
scan(out, 1, ARGV[1])
return out
"""
)
# a busy worker's lease renewal doubles as its reaper's scan: {0} when the renewal
# failed, else {1, <what scan returns>}; KEYS: lease, state, then the registries
_RENEW_AND_SCAN = (
    RENEW_FN
    + _SCAN_FN
    + """
if renew(KEYS[1], KEYS[2], unpack(ARGV, 1, 6)) == 0 then return {0} end
local out = {-1}
scan(out, 3, ARGV[7])
table.insert(out, 1, 1)
return out
"""
)


class Reaper:
    """Finds started jobs whose lease is gone and requeues each once (per attempt).

    A pass is timed to just after the soonest live lease could expire, at most
    `max_s` apart. While this worker is busy its lease renewals (`renew_and_scan`)
    do the scan too, so a pass of its own is then due only when a lease is about to
    expire or is gone: a busy worker's reaper costs no extra Redis call.
    """

    def __init__(
        self,
        connection: redis.Redis,
        leases: Leases,
        queue_names: list[str],
        preemption_budget: int = DEFAULT_PREEMPTION_BUDGET,
    ) -> None:
        self.connection = connection
        self.leases = leases
        self.queue_names = queue_names
        self.preemption_budget = preemption_budget
        self.registry_keys = [
            StartedJobRegistry(n, connection=connection, serializer=JSONSerializer).key
            for n in queue_names
        ]
        self._scan = connection.register_script(_SCAN)
        self._renew_and_scan = connection.register_script(_RENEW_AND_SCAN)
        # (when, soonest live lease TTL in ms) of the last scan; none yet: a pass is due
        self.last_scan: tuple[float, int] = (float("-inf"), -1)
        self.wake = threading.Event()  # set when a renewal's scan saw a dead lease

    def _dead(self, flat: list) -> list[tuple[str, str, int]]:
        """(queue name, job id, attempt) triples of a scan's reply, after its soonest TTL."""
        return [
            (self.queue_names[int(flat[i])], flat[i + 1].decode(), int(flat[i + 2]))
            for i in range(1, len(flat), 3)
        ]

    def renew_and_scan(self, lease: Lease, progress: dict | None = None) -> bool:
        """Leases.renew, with the reaper's scan in the same call; wakes the reaper
        thread (`wake`) when the scan saw a dead lease."""
        keys_, args = self.leases.renew_call(lease, progress)
        prefix = keys.PREFIX + ":"
        flat = self._renew_and_scan(keys=keys_ + self.registry_keys, args=[*args, prefix])
        if not int(flat[0]):
            return False
        dead = len(flat) > 2
        self.last_scan = (time.monotonic(), 0 if dead else int(flat[1]))
        if dead:
            self.wake.set()
        return True

    def next_pass_in_s(self, max_s: float) -> float:
        """Seconds until the next pass is due: just after the soonest live lease seen by
        the last scan (a pass or a renewal) could expire, at most `max_s` after it."""
        scanned_at, soonest = self.last_scan
        after = max_s if soonest < 0 else min(max(soonest / 1000 + 0.25, 0.25), max_s)
        return max(scanned_at + after - time.monotonic(), 0.0)

    def reap_once(self) -> list[str]:
        """Requeue every started job with a dead lease that this call wins; their ids."""
        flat = self._scan(keys=self.registry_keys, args=[keys.PREFIX + ":"])
        self.last_scan = (time.monotonic(), int(flat[0]))
        requeued = []
        for queue_name, job_id, attempt in self._dead(flat):
            preemptions = self.leases.reap(job_id, attempt)
            if not preemptions:
                continue  # another reaper won, or a newer attempt is running
            if self._requeue_or_fail(queue_name, job_id, attempt, preemptions):
                requeued.append(job_id)
        return requeued

    def budget_of(self, job_id: str) -> int:
        """The job's own preemption budget (`submit --preemption-budget`), else this
        reaper's (`factory worker --preemption-budget`)."""
        raw = call_with_retry(
            self.connection.hget, keys.state(job_id), BUDGET_FIELD, window_s=REDIS_OUTAGE_S
        )
        try:
            return int(raw) if raw is not None else self.preemption_budget
        except ValueError:
            return self.preemption_budget

    def _requeue_or_fail(
        self, queue_name: str, job_id: str, attempt: int, preemptions: int
    ) -> bool:
        from jobs.control import fail_job, requeue_job

        budget = self.budget_of(job_id)
        if preemptions > budget:
            reason = (
                f"preempted {preemptions} times in a row without a new checkpoint (budget "
                f"{budget}); fix: raise --preemption-budget (of submit or factory worker) or "
                "look for a worker that keeps dying"
            )
            call_with_retry(fail_job, self.connection, job_id, reason, window_s=REDIS_OUTAGE_S)
            return False
        log.warning(
            "job %s: lease of attempt %s expired; requeued (preemption %s)",
            job_id,
            attempt,
            preemptions,
        )
        # this call won the reap: the job is requeued by it or by the reconciler, never twice
        call_with_retry(
            requeue_job, self.connection, job_id, queue_name, at_front=True, window_s=REDIS_OUTAGE_S
        )
        return True


def set_preemption_budget(connection: redis.Redis, job_ids: list[str], budget: int) -> None:
    """Give each job its own preemption budget (`submit --preemption-budget`): every
    reaper, a worker's or `factory status`'s, then judges the job by it."""
    if budget < 0:
        raise ValueError(f"preemption budget {budget} must be >= 0")
    pipe = connection.pipeline()
    for job_id in job_ids:
        pipe.hset(keys.state(job_id), BUDGET_FIELD, int(budget))
    pipe.execute()


def started_job_ids(connection: redis.Redis, queue_name: str) -> list[str]:
    registry = StartedJobRegistry(queue_name, connection=connection, serializer=JSONSerializer)
    return registry.get_job_ids(cleanup=False)


def fetch(connection: redis.Redis, job_id: str) -> Job | None:
    try:
        return Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    except Exception:  # rq raises NoSuchJobError; a corrupt hash raises others
        return None
