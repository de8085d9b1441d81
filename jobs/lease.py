"""Leases and fencing: every state change of an attempt is a compare-and-set in Redis.

A start of a job takes the next attempt number and a lease `<worker>|<attempt>` with
a TTL. Only the holder of the live lease may renew it, publish a checkpoint or
write the final result; a reaper requeues a job whose lease is gone, once per
attempt. All of it is Lua, so each check-and-write is atomic.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import redis

from jobs import keys

_CLAIM = """
if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
local a = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[2], ARGV[1] .. '|' .. a, 'PX', ARGV[2])
redis.call('HSET', KEYS[3], 'attempt', a, 'worker', ARGV[1], 'lease_at', ARGV[3],
           'renewed_at', ARGV[3], 'status', 'started', 'step', 0, 'total', 0,
           'resumed_from', '', 'error', '')
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
_PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
redis.call('HSET', KEYS[3], 'checkpoint_step', ARGV[4], 'checkpoint_at', ARGV[5])
return 1
"""
_FINALIZE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], 'status', 'finished', 'finished_at', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[3], 'step', ARGV[4], 'total', ARGV[5]) end
return 1
"""
_REAP = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[2], 'reaped_attempt') == ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], 'reaped_attempt', ARGV[1], 'status', 'requeued', 'reaped_at', ARGV[2])
return redis.call('HINCRBY', KEYS[2], 'preemptions', 1)
"""


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

    def __init__(self, connection: redis.Redis, ttl_s: float = 30.0) -> None:
        self.connection = connection
        self.ttl_ms = int(ttl_s * 1000)
        reg = connection.register_script
        self._claim, self._renew, self._release = reg(_CLAIM), reg(_RENEW), reg(_RELEASE)
        self._publish, self._finalize, self._reap = reg(_PUBLISH), reg(_FINALIZE), reg(_REAP)

    def claim(self, job_id: str, worker: str) -> Lease | None:
        """A new attempt with a live lease, or None when the job already has a final result."""
        keys_ = [keys.attempts(job_id), keys.lease(job_id), keys.state(job_id), keys.result(job_id)]
        attempt = int(self._claim(keys=keys_, args=[worker, self.ttl_ms, _now()]))
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
        return bool(self._release(keys=[keys.lease(lease.job_id)], args=[lease.token]))

    def holds(self, lease: Lease) -> bool:
        value = self.connection.get(keys.lease(lease.job_id))
        return value is not None and value.decode() == lease.token

    def is_current(self, job_id: str, attempt: int) -> bool:
        """Whether `attempt` is still the newest attempt of the job (lease or not)."""
        value = self.connection.get(keys.attempts(job_id))
        return value is not None and int(value) == attempt

    def publish_checkpoint(self, lease: Lease, record_json: str, step: int, keep: int) -> bool:
        keys_ = [keys.lease(lease.job_id), keys.checkpoints(lease.job_id), keys.state(lease.job_id)]
        return bool(self._publish(keys=keys_, args=[lease.token, record_json, keep, step, _now()]))

    def finalize(self, lease: Lease, result_json: str, progress: dict | None = None) -> bool:
        """Make `result_json` the job's final result; `progress` is the last reported."""
        keys_ = [keys.lease(lease.job_id), keys.result(lease.job_id), keys.state(lease.job_id)]
        p = progress or {}
        args = [lease.token, result_json, _now(), p.get("step", ""), p.get("total", "")]
        return bool(self._finalize(keys=keys_, args=args))

    def reap(self, job_id: str, attempt: int) -> int:
        """Claim the right to requeue a job whose lease is gone: the preemption count, or 0."""
        keys_ = [keys.lease(job_id), keys.state(job_id), keys.attempts(job_id)]
        return int(self._reap(keys=keys_, args=[str(attempt), _now()]))


class RedisUnreachable(Exception):
    """Redis did not answer for a whole lease TTL: the lease must be presumed lost."""


def call_with_retry(fn, *args, window_s: float, pause_s: float = 0.5):
    """`fn(*args)`, retried while Redis is briefly away (a restart, a blip)."""
    deadline = time.monotonic() + window_s
    while True:
        try:
            return fn(*args)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise RedisUnreachable(f"Redis unreachable for {window_s:.0f} s: {exc}") from exc
            time.sleep(pause_s)


def _now() -> str:
    return f"{time.time():.3f}"
