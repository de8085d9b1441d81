"""Jobs a worker will not run, left queued for a worker that can: never popped in a loop.

A worker that cannot run a job (code it may not install, a wheel not synced yet)
puts it back where it was, at the front of its queue, and remembers it. Until the
refusal's retry time, the worker's dequeue skips it (one Lua call pops the first
job id it has not refused), so the job waits for another worker without being
re-enqueued again and again, and RQ's intermediate queue does not grow. When only
refused jobs are left, a `--burst` worker quits and says why; others poll slowly.

A queue entry that no worker can even read (a job id RQ rejects, a job hash that is not
JSON, as a pickled job is) is moved aside instead: off the queue and RQ's intermediate
queue, its hash renamed out of RQ's way, and its reason kept in QUARANTINE.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import redis
from rq.exceptions import DeserializationError

# pop the first id of a queue that is not among ARGV; push it where RQ's LMOVE would
_POP_SKIPPING = """
local skip = {}
for i = 1, #ARGV do skip[ARGV[i]] = true end
local ids = redis.call('LRANGE', KEYS[1], 0, 9999)
for _, id in ipairs(ids) do
  if not skip[id] then
    redis.call('LREM', KEYS[1], 1, id)
    if KEYS[2] ~= '' then redis.call('RPUSH', KEYS[2], id) end
    return id
  end
end
return false
"""
# undo a pop: off the intermediate queue, back to the front of the queue
_PUT_BACK = """
if KEYS[2] ~= '' then redis.call('LREM', KEYS[2], 1, ARGV[1]) end
redis.call('LPUSH', KEYS[1], ARGV[1])
return 1
"""
# move a malformed entry aside: off both lists, its job hash renamed, its reason kept
_QUARANTINE = """
redis.call('LREM', KEYS[1], 0, ARGV[1])
if KEYS[2] ~= '' then redis.call('LREM', KEYS[2], 0, ARGV[1]) end
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('RENAME', KEYS[3], KEYS[4]) end
redis.call('HSET', KEYS[5], ARGV[1], ARGV[2])
return 1
"""
QUARANTINE = "mlf:quarantine"  # hash: queue entry -> JSON {reason, queue, at}
QUARANTINED_JOB = "mlf:quarantine:job:"  # + entry: the job hash RQ could not read
IDLE_POLL_S = 30.0  # with only refused jobs queued: one LRANGE per poll (Redis is metered)


def unreadable_reason(exc: BaseException) -> str:
    """One line: why RQ could not read a queue entry, and the fix."""
    if isinstance(exc, DeserializationError):
        cause = exc.__cause__ or exc
        problem = f"job data is not JSON (a pickled job?): {type(cause).__name__}: {cause}"
    else:
        problem = f"RQ cannot read this entry: {type(exc).__name__}: {exc}"
    problem = " ".join(problem.split())[:300]
    return (
        f"{problem}; fix: enqueue jobs with `submit` (JSON specs, ids of letters, digits, - and _)"
    )


@dataclass
class Refusals:
    connection: redis.Redis
    _until: dict[str, float] = field(default_factory=dict)
    _reasons: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._pop = self.connection.register_script(_POP_SKIPPING)
        self._put_back = self.connection.register_script(_PUT_BACK)
        self._quarantine = self.connection.register_script(_QUARANTINE)

    def add(self, job_id: str, reason: str, retry_after_s: float) -> bool:
        """Remember a refusal; True when it is new (the first time this worker says so)."""
        new = self._reasons.get(job_id) != reason
        self._until[job_id] = time.monotonic() + retry_after_s
        self._reasons[job_id] = reason
        return new

    def active(self) -> list[str]:
        """Ids this worker skips now (refusals whose retry time has come are dropped)."""
        now = time.monotonic()
        for job_id in [j for j, t in self._until.items() if t <= now]:
            del self._until[job_id]
        return sorted(self._until)

    def summary(self) -> str:
        reasons = sorted({self._reasons[j] for j in self._until})
        return f"{len(self._until)} job(s): " + "; ".join(reasons)

    def put_back(self, queue_key: str, intermediate_key: str | None, job_id: str) -> None:
        self._put_back(keys=[queue_key, intermediate_key or ""], args=[job_id])

    def pop(self, queue_key: str, intermediate_key: str | None) -> str | None:
        """The first queued id this worker has not refused (moved like RQ's LMOVE), or None."""
        found = self._pop(keys=[queue_key, intermediate_key or ""], args=self.active())
        return found.decode() if isinstance(found, bytes) else found

    def quarantine(
        self, queue_key: str, intermediate_key: str | None, entry: str, reason: str
    ) -> None:
        """Move the unreadable queue entry `entry` aside (see the module's docstring)."""
        record = json.dumps({"reason": reason, "queue": queue_key, "at": round(time.time(), 3)})
        keys = [queue_key, intermediate_key or "", f"rq:job:{entry}"]
        keys += [f"{QUARANTINED_JOB}{entry}", QUARANTINE]
        self._quarantine(keys=keys, args=[entry, record])
