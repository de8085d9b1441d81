"""The reaper: a started job whose lease is gone is requeued, exactly once per attempt.

Every worker (busy or idle) and `factory status` run it every few seconds. Finding
the candidates is one Lua call per queue (the started registry's entries whose
lease key is missing), so an idle fleet costs Redis almost nothing.
"""

from __future__ import annotations

import logging

import redis
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from jobs import keys
from jobs.lease import Leases

log = logging.getLogger("jobs.reaper")
DEFAULT_PREEMPTION_BUDGET = 20

_SCAN = """
local out = {-1}
for _, entry in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local job_id = string.match(entry, '^(.*):[^:]*$') or entry
  local ttl = redis.call('PTTL', ARGV[1] .. 'lease:' .. job_id)
  if ttl < 0 then
    local attempt = redis.call('HGET', ARGV[1] .. 'state:' .. job_id, 'attempt')
    if attempt then table.insert(out, job_id); table.insert(out, attempt) end
  elseif out[1] < 0 or ttl < out[1] then
    out[1] = ttl
  end
end
return out
"""


class Reaper:
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
        self._scan = connection.register_script(_SCAN)
        self._soonest_ms = -1

    def candidates(self, queue_name: str) -> tuple[list[tuple[str, int]], int]:
        """Started jobs without a live lease, and the shortest live lease's TTL in ms (-1: none)."""
        registry = StartedJobRegistry(
            queue_name, connection=self.connection, serializer=JSONSerializer
        )
        flat = self._scan(keys=[registry.key], args=[keys.PREFIX + ":"])
        dead = [(flat[i].decode(), int(flat[i + 1])) for i in range(1, len(flat), 2)]
        return dead, int(flat[0])

    def next_pass_in_s(self, max_s: float) -> float:
        """When the next pass is due: just after the soonest live lease could expire."""
        soonest = self._soonest_ms
        if soonest < 0:
            return max_s
        return min(max(soonest / 1000 + 0.25, 0.25), max_s)

    def reap_once(self) -> list[str]:
        """Requeue every started job with a dead lease that this call wins; their ids."""
        requeued = []
        self._soonest_ms = -1
        for name in self.queue_names:
            dead, soonest = self.candidates(name)
            if soonest >= 0 and (self._soonest_ms < 0 or soonest < self._soonest_ms):
                self._soonest_ms = soonest
            for job_id, attempt in dead:
                preemptions = self.leases.reap(job_id, attempt)
                if not preemptions:
                    continue  # another reaper won, or a newer attempt is running
                if self._requeue_or_fail(name, job_id, attempt, preemptions):
                    requeued.append(job_id)
        return requeued

    def _requeue_or_fail(
        self, queue_name: str, job_id: str, attempt: int, preemptions: int
    ) -> bool:
        from jobs.control import fail_job, requeue_job

        if preemptions > self.preemption_budget:
            reason = (
                f"preempted {preemptions} times (budget {self.preemption_budget}); "
                "fix: raise --preemption-budget or look for a worker that keeps dying"
            )
            fail_job(self.connection, job_id, reason)
            return False
        log.warning(
            "job %s: lease of attempt %s expired; requeued (preemption %s)",
            job_id,
            attempt,
            preemptions,
        )
        requeue_job(self.connection, job_id, queue_name, at_front=True)
        return True


def started_job_ids(connection: redis.Redis, queue_name: str) -> list[str]:
    registry = StartedJobRegistry(queue_name, connection=connection, serializer=JSONSerializer)
    return registry.get_job_ids(cleanup=False)


def fetch(connection: redis.Redis, job_id: str) -> Job | None:
    try:
        return Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    except Exception:  # rq raises NoSuchJobError; a corrupt hash raises others
        return None
