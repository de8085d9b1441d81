"""The reaper: a started job whose lease is gone is requeued, exactly once per attempt.

Finding the candidates is one Lua call over the started registries (their entries whose
lease key is missing). Redis is metered (a hosted free tier bills every command), so the
fleet shares its passes: every scan leaves a mark in Redis (keys.REAPER_MARK) that lives
until the next pass is due, that is just after the soonest live lease could expire (at
most a lease TTL), or `quiet_s` when nothing is started at all. While the mark lives, no
worker scans again. A busy worker's lease renewal scans in the same call (free), so an
idle worker scans only when no renewal has; it asks once per mark, not once per pass.
"""

from __future__ import annotations

import logging
import random
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
# the mark's TTL after a pass found nothing started: an idle fleet asks once per QUIET_S
QUIET_S = 120.0
BUDGET_FIELD = "preemption_budget"  # of a job's state: its own budget, set by submit

# scan(out, first, prefix): for the started registries KEYS[first..], append
# (registry index, job id, attempt) of each job whose lease key is gone to `out`, and
# keep the shortest live lease's TTL in out[1] (-1: none); answers how many entries the
# registries hold. mark(key, out, who, ttl_ms, quiet_ms) then leaves the fleet's mark:
# until just after the soonest live lease could expire, at most a TTL, or `quiet_ms`
# when nothing is started
_SCAN_FN = """
local function mark(key, out, started, who, ttl_ms, quiet_ms)
  local px = tonumber(ttl_ms)
  if started == 0 then px = tonumber(quiet_ms)
  elseif #out > 1 then px = 250
  elseif out[1] >= 0 then px = math.min(out[1] + 250, px) end
  px = math.max(px, 100)
  redis.call('SET', key, who, 'PX', px)
  out[1] = px
  table.insert(out, 1, 1)
  return out
end
local function scan(out, first, prefix)
  local started = 0
  for q = first, #KEYS do
    for _, entry in ipairs(redis.call('ZRANGE', KEYS[q], 0, -1)) do
      started = started + 1
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
  return started
end
"""
# a pass: KEYS mark, then the registries; ARGV prefix, who, ttl_ms, quiet_ms, force.
# It answers {1, the mark's TTL in ms, (registry index, job id, attempt) of each dead
# lease...}; while the fleet's mark lives (and not forced), {0, the mark's PTTL}
_SCAN = (
    _SCAN_FN
    + """
if ARGV[5] ~= '1' then
  local pttl = redis.call('PTTL', KEYS[1])
  if pttl > 0 then return {0, pttl} end
end
local out = {-1}
return mark(KEYS[1], out, scan(out, 2, ARGV[1]), ARGV[2], ARGV[3], ARGV[4])
"""
)
# a busy worker's lease renewal doubles as a forced pass: {-1} when the renewal failed,
# else what a pass answers; KEYS: lease, state, mark, then the registries
_RENEW_AND_SCAN = (
    RENEW_FN
    + _SCAN_FN
    + """
if renew(KEYS[1], KEYS[2], unpack(ARGV, 1, 6)) == 0 then return {-1} end
local out = {-1}
return mark(KEYS[3], out, scan(out, 4, ARGV[7]), ARGV[8], ARGV[2], ARGV[9])
"""
)


class Reaper:
    """Finds started jobs whose lease is gone and requeues each once (per attempt).

    `pass_if_due` scans only when the fleet's mark has lapsed (one pass per mark across
    all workers) and answers when to ask again: just after the mark lapses. While this
    worker is busy its lease renewals (`renew_and_scan`) scan and leave the mark, and
    wake the reaper thread (`wake`) when they saw a dead lease.
    """

    def __init__(
        self,
        connection: redis.Redis,
        leases: Leases,
        queue_names: list[str],
        preemption_budget: int = DEFAULT_PREEMPTION_BUDGET,
        *,
        who: str = "status",
        quiet_s: float = QUIET_S,
    ) -> None:
        self.connection = connection
        self.leases = leases
        self.queue_names = queue_names
        self.preemption_budget = preemption_budget
        self.who = who
        self.quiet_ms = int(quiet_s * 1000)
        self.registry_keys = [
            StartedJobRegistry(n, connection=connection, serializer=JSONSerializer).key
            for n in queue_names
        ]
        self._scan = connection.register_script(_SCAN)
        self._renew_and_scan = connection.register_script(_RENEW_AND_SCAN)
        self.next_due = float("-inf")  # monotonic time of the next pass; none yet: due
        self.wake = threading.Event()  # set when a renewal's scan saw a dead lease

    def _dead(self, flat: list) -> list[tuple[str, str, int]]:
        """(queue name, job id, attempt) triples of a scanned reply, after its mark TTL."""
        return [
            (self.queue_names[int(flat[i])], flat[i + 1].decode(), int(flat[i + 2]))
            for i in range(2, len(flat), 3)
        ]

    def _pass_args(self, force: bool) -> list:
        return [keys.PREFIX + ":", self.who, self.leases.ttl_ms, self.quiet_ms, int(force)]

    def renew_and_scan(self, lease: Lease, progress: dict | None = None) -> bool:
        """Leases.renew, with a pass in the same call; wakes the reaper thread (`wake`)
        when the pass saw a dead lease."""
        keys_, args = self.leases.renew_call(lease, progress)
        prefix = keys.PREFIX + ":"
        flat = self._renew_and_scan(
            keys=[*keys_, keys.REAPER_MARK, *self.registry_keys],
            args=[*args, prefix, self.who, self.quiet_ms],
        )
        if int(flat[0]) < 0:
            return False
        self.next_due = time.monotonic() + int(flat[1]) / 1000
        if len(flat) > 2:
            self.wake.set()
        return True

    def next_pass_in_s(self) -> float:
        """Seconds until the next pass is due (0: now)."""
        return max(self.next_due - time.monotonic(), 0.0)

    def pass_if_due(self) -> list[str]:
        """A pass unless the fleet's mark lives; the ids requeued."""
        return self._pass(force=False)

    def reap_once(self) -> list[str]:
        """A pass now, whatever the mark (`factory status`, tests); the ids requeued."""
        return self._pass(force=True)

    def _pass(self, force: bool) -> list[str]:
        flat = self._scan(keys=[keys.REAPER_MARK, *self.registry_keys], args=self._pass_args(force))
        # a lapsed mark is raced for by every idle worker; a little jitter spreads them
        jitter_s = 0.0 if int(flat[0]) else random.uniform(0.05, 0.3)
        self.next_due = time.monotonic() + int(flat[1]) / 1000 + jitter_s
        requeued = []
        for queue_name, job_id, attempt in self._dead(flat) if int(flat[0]) else []:
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
