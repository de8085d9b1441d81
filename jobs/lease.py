"""Leases and fencing: every state change of an attempt is a compare-and-set in Redis.

A start of a job takes the next attempt number and a lease `<worker>|<attempt>` with
a TTL. Only the holder of the live lease may renew it, publish a checkpoint or
write the final result; a reaper requeues a job whose lease is gone, once per
attempt. All of it is Lua, so each check-and-write is atomic.

Each script is also idempotent, because a call may reach Redis twice: redis-py sends a
command again on a dropped connection (jobs.settings) and `call_with_retry` rides out
longer outages, so a call whose reply was lost is repeated. A repeated claim or reap
is known by its nonce and answers what the first did; a repeated finalize finds its own
result, a repeated publish its own record.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass

import redis

from jobs import keys

log = logging.getLogger("jobs.lease")
# the longest Redis outage (a restart, a failover, a network blip) a worker rides out
# without giving up: 120 s, plus margin
REDIS_OUTAGE_S = 150.0
# a worker renews at 2/3 of it (24 s): 150 renewals an hour, within a hosted free tier's
# bill (issue 11), and a dead worker's job is requeued at most a TTL after its last one
DEFAULT_LEASE_TTL_S = 36.0

_CLAIM = """
if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
if redis.call('HGET', KEYS[3], 'claim_nonce') == ARGV[4] then
  return tonumber(redis.call('HGET', KEYS[3], 'attempt'))
end
local a = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[2], ARGV[1] .. '|' .. a, 'PX', ARGV[2])
-- a quiet fleet's reaper mark (jobs.reaper) must not outlive this new lease
if redis.call('PTTL', KEYS[5]) > tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[5], ARGV[2])
end
redis.call('HSET', KEYS[3], 'attempt', a, 'worker', ARGV[1], 'lease_at', ARGV[3],
           'renewed_at', ARGV[3], 'status', 'started', 'step', 0, 'total', 0,
           'resumed_from', '', 'error', '', 'claim_nonce', ARGV[4])
return a
"""
# a Lua function, so that jobs.reaper can renew and scan in one call (RENEW_AND_SCAN)
RENEW_FN = """
local function renew(lease_key, state_key, token, ttl_ms, now, step, total, metrics)
  if redis.call('GET', lease_key) ~= token then return 0 end
  redis.call('PEXPIRE', lease_key, ttl_ms)
  redis.call('HSET', state_key, 'renewed_at', now)
  if step ~= '' then
    redis.call('HSET', state_key, 'step', step, 'total', total, 'metrics', metrics)
  end
  return 1
end
"""
_RENEW = RENEW_FN + "return renew(KEYS[1], KEYS[2], unpack(ARGV, 1, 6))\n"
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# answers the published records after this one (nil: not the holder), so the publisher
# learns what is published without a second command (a hosted Redis bills each one)
_PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
if redis.call('LINDEX', KEYS[2], 0) ~= ARGV[2] then
  redis.call('LPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
  redis.call('HSET', KEYS[3], 'checkpoint_step', ARGV[4], 'checkpoint_at', ARGV[5])
end
return redis.call('LRANGE', KEYS[2], 0, -1)
"""
_FINALIZE = """
local final = redis.call('GET', KEYS[2])
if final then return final == ARGV[2] and 1 or 0 end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], 'status', 'finished', 'finished_at', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[3], 'step', ARGV[4], 'total', ARGV[5]) end
return 1
"""
# a won reap answers the preemptions that count against the budget: those in a row with
# no new checkpoint in between (an attempt that checkpointed and then lost its session
# was not the job's fault); `preemptions` keeps the total
_REAP = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[2], 'reaped_attempt') == ARGV[1] then
  if redis.call('HGET', KEYS[2], 'reap_nonce') ~= ARGV[3] then
    -- another reaper won; still dead long after: it died before requeueing, take over
    local at = tonumber(redis.call('HGET', KEYS[2], 'reaped_at') or '0') or 0
    if tonumber(ARGV[2]) - at < tonumber(ARGV[4]) then return 0 end
    redis.call('HSET', KEYS[2], 'reap_nonce', ARGV[3], 'reaped_at', ARGV[2])
  end
  return tonumber(redis.call('HGET', KEYS[2], 'counted_preemptions'))
end
redis.call('HSET', KEYS[2], 'reaped_attempt', ARGV[1], 'status', 'requeued', 'reaped_at', ARGV[2],
           'reap_nonce', ARGV[3])
redis.call('HINCRBY', KEYS[2], 'preemptions', 1)
local step = redis.call('HGET', KEYS[2], 'checkpoint_step') or ''
if step ~= '' and step ~= (redis.call('HGET', KEYS[2], 'reaped_step') or '') then
  redis.call('HSET', KEYS[2], 'reaped_step', step, 'counted_preemptions', 0)
end
return redis.call('HINCRBY', KEYS[2], 'counted_preemptions', 1)
"""


# a job still dead in the started registry this many TTLs after another reaper won its
# reap was never requeued (that reaper died in between): the next reap takes it over
REAP_TAKEOVER_TTLS = 10


def token(worker: str, attempt: int) -> str:
    return f"{worker}|{attempt}"


@dataclass(frozen=True)
class Lease:
    job_id: str
    worker: str
    attempt: int

    @property
    def token(self) -> str:
        return token(self.worker, self.attempt)


class Leases:
    """The lease and fencing scripts bound to one Redis connection."""

    def __init__(self, connection: redis.Redis, ttl_s: float = DEFAULT_LEASE_TTL_S) -> None:
        self.connection = connection
        self.ttl_ms = int(ttl_s * 1000)
        reg = connection.register_script
        self._claim, self._renew, self._release = reg(_CLAIM), reg(_RENEW), reg(_RELEASE)
        self._publish, self._finalize, self._reap = reg(_PUBLISH), reg(_FINALIZE), reg(_REAP)

    def claim(self, job_id: str, worker: str, window_s: float = REDIS_OUTAGE_S) -> Lease | None:
        """A new attempt with a live lease, or None when the job already has a final result.

        Retried while Redis is away, for up to `window_s` (then RedisUnreachable)."""
        keys_ = [keys.attempts(job_id), keys.lease(job_id), keys.state(job_id), keys.result(job_id)]
        keys_.append(keys.REAPER_MARK)
        args = [worker, self.ttl_ms, _now(), _nonce()]
        attempt = int(call_with_retry(self._claim, keys_, args, window_s=window_s))
        return Lease(job_id, worker, attempt) if attempt else None

    def renew(self, lease: Lease, progress: dict | None = None) -> bool:
        """Extend the lease; `progress` ({step, total, metrics}) rides along for free."""
        return bool(self._renew(*self.renew_call(lease, progress)))

    def renew_call(self, lease: Lease, progress: dict | None) -> tuple[list, list]:
        """The KEYS and ARGV of RENEW_FN's `renew` for `lease`."""
        keys_ = [keys.lease(lease.job_id), keys.state(lease.job_id)]
        p = progress or {}
        extra = [p.get("step", ""), p.get("total", ""), json.dumps(p.get("metrics") or {})]
        return keys_, [lease.token, self.ttl_ms, _now(), *extra]

    def release(self, lease: Lease) -> bool:
        """Drop the lease; retried for up to a TTL (by then it has expired anyway)."""
        keys_, window_s = [keys.lease(lease.job_id)], self.ttl_ms / 1000
        return bool(call_with_retry(self._release, keys_, [lease.token], window_s=window_s))

    def holds(self, lease: Lease) -> bool:
        value = self.connection.get(keys.lease(lease.job_id))
        return value is not None and value.decode() == lease.token

    def is_current(self, job_id: str, attempt: int) -> bool:
        """Whether `attempt` is still the newest attempt of the job (lease or not)."""
        value = self.connection.get(keys.attempts(job_id))
        return value is not None and int(value) == attempt

    def publish_checkpoint(
        self, lease: Lease, record_json: str, step: int, keep: int
    ) -> list[bytes] | None:
        """Publish a checkpoint record (fenced): the job's published records, newest
        first, this one included; None when `lease` no longer holds the job."""
        keys_ = [keys.lease(lease.job_id), keys.checkpoints(lease.job_id), keys.state(lease.job_id)]
        return self._publish(keys=keys_, args=[lease.token, record_json, keep, step, _now()])

    def finalize(self, lease: Lease, result_json: str, progress: dict | None = None) -> bool:
        """Make `result_json` the job's final result; `progress` is the last reported."""
        keys_ = [keys.lease(lease.job_id), keys.result(lease.job_id), keys.state(lease.job_id)]
        p = progress or {}
        args = [lease.token, result_json, _now(), p.get("step", ""), p.get("total", "")]
        return bool(self._finalize(keys=keys_, args=args))

    def reap(self, job_id: str, attempt: int) -> int:
        """Claim the right to requeue a job whose lease is gone: 0 when another reaper won
        (or a newer attempt runs), else the preemptions that count against the budget (in a
        row, with no new checkpoint in between: a preempted job that progressed counts 1).

        Retried for up to a TTL: a reap that won must not be lost to a dropped reply."""
        keys_ = [keys.lease(job_id), keys.state(job_id), keys.attempts(job_id)]
        args = [str(attempt), _now(), _nonce(), REAP_TAKEOVER_TTLS * self.ttl_ms / 1000]
        return int(call_with_retry(self._reap, keys_, args, window_s=self.ttl_ms / 1000))


class RedisUnreachable(Exception):
    """Redis did not answer within a retry window (for a lease: a whole TTL, after which
    the lease must be presumed lost)."""


REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, RedisUnreachable)


def call_with_retry(fn, *args, window_s: float, pause_s: float = 0.5, **kwargs):
    """`fn(*args, **kwargs)`, retried while Redis is away (a restart, a blip) for up to
    `window_s`, then RedisUnreachable. The pause doubles up to 2 s."""
    deadline = time.monotonic() + window_s
    failures = 0
    while True:
        try:
            return fn(*args, **kwargs)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise RedisUnreachable(f"Redis unreachable for {window_s:.0f} s: {exc}") from exc
            if not failures:
                log.warning(
                    "Redis unreachable (%s: %s); retrying %s for up to %.0f s",
                    type(exc).__name__,
                    exc,
                    _name_of(fn),
                    window_s,
                )
            failures += 1
            pause = min(pause_s * 2 ** min(failures - 1, 2), 2.0)
            time.sleep(min(pause, max(deadline - time.monotonic(), 0.05)))


def _name_of(fn) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _nonce() -> str:
    return os.urandom(8).hex()


def _now() -> str:
    return f"{time.time():.3f}"
