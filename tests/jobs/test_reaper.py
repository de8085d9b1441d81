"""The reaper's scan and its ride on lease renewals, against a real redis-server."""

from __future__ import annotations

import time

import pytest
from rq import Queue
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from jobs import keys
from jobs.lease import Lease, Leases
from jobs.reaper import Reaper

QUEUE = "mlf"


@pytest.fixture
def client(redis_server):
    return redis_server.client()


def _started(client, ttl_s: float = 1.0) -> tuple[str, Lease]:
    """A real RQ job in the started registry, with a lease of `ttl_s`."""
    job = Queue(QUEUE, connection=client, serializer=JSONSerializer).enqueue(
        "jobs.entry.run_job", "{}"
    )
    registry = StartedJobRegistry(QUEUE, connection=client, serializer=JSONSerializer)
    client.zadd(registry.key, {f"{job.id}:execution": time.time() + 600})
    client.lrem(f"rq:queue:{QUEUE}", 0, job.id)
    return job.id, Leases(client, ttl_s).claim(job.id, "w-victim")


def test_a_pass_requeues_a_job_whose_lease_is_gone_once(client):
    job_id, _ = _started(client, ttl_s=0.5)
    reaper = Reaper(client, Leases(client, 30), [QUEUE])
    assert reaper.next_pass_in_s() == 0  # nothing scanned yet: a pass is due
    assert reaper.pass_if_due() == []  # the lease lives
    assert 0 < reaper.next_pass_in_s() <= 1.05  # timed to just after it expires
    assert 0 < client.pttl(keys.REAPER_MARK) <= 750  # and so is the fleet's mark
    time.sleep(0.8)
    assert reaper.pass_if_due() == [job_id]
    assert client.lrange(f"rq:queue:{QUEUE}", 0, -1) == [job_id.encode()]
    assert reaper.reap_once() == []  # once per attempt


def test_the_fleet_shares_one_pass_per_mark(client):
    """While one worker's mark lives, another asks once and scans nothing: it learns
    when the mark lapses."""
    _started(client, ttl_s=2.0)
    first = Reaper(client, Leases(client, 30), [QUEUE], who="w-first")
    second = Reaper(client, Leases(client, 30), [QUEUE], who="w-second")
    assert first.pass_if_due() == []
    assert client.get(keys.REAPER_MARK) == b"w-first"
    assert second.pass_if_due() == []
    assert client.get(keys.REAPER_MARK) == b"w-first"  # it did not scan
    assert 1.5 < second.next_pass_in_s() <= 2.6


def test_a_quiet_fleet_asks_rarely_and_a_claim_shortens_its_mark(client):
    reaper = Reaper(client, Leases(client, 30), [QUEUE], quiet_s=100)
    assert reaper.pass_if_due() == []  # nothing started anywhere
    assert 95 < reaper.next_pass_in_s() <= 100.5
    assert client.pttl(keys.REAPER_MARK) > 95_000
    Leases(client, 5).claim("new-job", "w-busy")  # a job starts: its lease is 5 s
    assert 0 < client.pttl(keys.REAPER_MARK) <= 5000


def test_a_renewal_scans_for_the_reaper(client):
    """A busy worker's renewal does the reaper's scan in the same call: a live lease
    postpones the next pass; a dead one wakes the reaper thread."""
    leases = Leases(client, 30)
    reaper = Reaper(client, leases, [QUEUE])
    mine = leases.claim("my-job", "w-busy")
    victim_id, _ = _started(client, ttl_s=3.0)
    assert reaper.renew_and_scan(mine, {"step": 4, "total": 10})
    assert client.hget("mlf:state:my-job", "step") == b"4"
    assert 2.0 < reaper.next_pass_in_s() <= 3.25  # the victim's lease, not mine
    assert not reaper.wake.is_set()
    time.sleep(3.1)
    assert reaper.renew_and_scan(mine)
    assert reaper.wake.is_set() and reaper.next_pass_in_s() <= 0.25
    assert reaper.reap_once() == [victim_id]


def test_a_renewal_of_a_lost_lease_fails_and_scans_nothing(client):
    leases = Leases(client, 30)
    reaper = Reaper(client, leases, [QUEUE])
    old = leases.claim("j1", "w1")
    leases.claim("j1", "w2")
    assert not reaper.renew_and_scan(old)
    assert reaper.next_due == float("-inf")
    assert client.get(keys.REAPER_MARK) is None
