"""Leases and fencing against a real redis-server: every write is a compare-and-set."""

from __future__ import annotations

import time

import pytest

from jobs import keys
from jobs.lease import Leases


@pytest.fixture
def leases(redis_server):
    return Leases(redis_server.client(), ttl_s=1.0)


def test_each_claim_is_a_new_attempt_with_a_live_lease(leases):
    first = leases.claim("j1", "w1")
    second = leases.claim("j1", "w2")
    assert (first.attempt, second.attempt) == (1, 2)
    assert leases.holds(second) and not leases.holds(first)
    assert leases.is_current("j1", 2) and not leases.is_current("j1", 1)


def test_only_the_holder_renews_publishes_and_finalizes(leases):
    old = leases.claim("j1", "w1")
    new = leases.claim("j1", "w2")
    assert not leases.renew(old)
    assert not leases.publish_checkpoint(old, "{}", 5, keep=3)
    assert not leases.finalize(old, '{"zombie": true}')
    assert leases.renew(new)
    assert leases.publish_checkpoint(new, '{"step": 5}', 5, keep=3)
    assert leases.finalize(new, '{"ok": true}')
    assert not leases.finalize(new, '{"again": true}')  # a result is final once
    assert leases.connection.get(keys.result("j1")) == b'{"ok": true}'


def test_an_expired_lease_fences_its_attempt(leases):
    lease = leases.claim("j1", "w1")
    time.sleep(1.2)
    assert not leases.renew(lease)
    assert not leases.publish_checkpoint(lease, "{}", 1, keep=3)


def test_checkpoint_list_keeps_the_newest(leases):
    lease = leases.claim("j1", "w1")
    for step in range(5):
        assert leases.publish_checkpoint(lease, f'{{"step": {step}}}', step, keep=3)
    assert leases.connection.lrange(keys.checkpoints("j1"), 0, -1) == [
        b'{"step": 4}',
        b'{"step": 3}',
        b'{"step": 2}',
    ]


def test_reap_wins_once_per_attempt_and_never_while_the_lease_lives(leases):
    lease = leases.claim("j1", "w1")
    assert leases.reap("j1", lease.attempt) == 0  # lease alive
    leases.release(lease)
    assert leases.reap("j1", lease.attempt) == 1
    assert leases.reap("j1", lease.attempt) == 0  # a second reaper loses
    assert leases.reap("j1", 99) == 0  # not the current attempt


def test_a_reap_whose_winner_died_before_requeueing_is_taken_over(leases, monkeypatch):
    """The winner of a reap died between its reap and its requeue (found by the chaos
    run: the job stayed 'requeued' in the started registry forever): once that is
    REAP_TAKEOVER_TTLS old, the next reaper wins it, without counting it twice."""
    import jobs.lease as lease_module

    lease = leases.claim("j1", "w1")
    leases.release(lease)
    assert leases.reap("j1", lease.attempt) == 1  # won, then its reaper is killed
    assert leases.reap("j1", lease.attempt) == 0  # fresh: the winner may be requeueing
    later = time.time() + lease_module.REAP_TAKEOVER_TTLS * leases.ttl_ms / 1000 + 1
    monkeypatch.setattr(lease_module, "_now", lambda: f"{later:.3f}")
    assert leases.reap("j1", lease.attempt) == 1  # taken over; preemptions counted once
    state = leases.connection.hgetall(keys.state("j1"))
    assert state[b"preemptions"] == b"1" and state[b"status"] == b"requeued"
    assert leases.reap("j1", lease.attempt) == 0  # and only by one reaper


def test_claim_refuses_a_job_with_a_final_result(leases):
    lease = leases.claim("j1", "w1")
    assert leases.finalize(lease, "{}")
    assert leases.claim("j1", "w2") is None


def test_every_script_is_idempotent_when_its_reply_is_lost(redis_server):
    """A command that ran but whose reply was lost is sent again (redis-py's retry on a
    dropped connection): the repeat must answer what the first call did."""
    from jobs.settings import RedisSettings
    from tests.tcp_proxy import TcpProxy

    with TcpProxy(redis_server.port) as proxy:
        client = RedisSettings(proxy.url(redis_server.url)).client()
        leases = Leases(client, ttl_s=5.0)
        warm = leases.claim("j0", "w1")  # loads every script: a lost reply is then a real run
        leases.publish_checkpoint(warm, "{}", 1, keep=3)
        leases.finalize(warm, "{}")
        leases.reap("j0", warm.attempt)
        lost = [proxy.on_request(b"EVALSHA", lose_reply=True)]
        lease = leases.claim("j1", "w1")
        assert lost[0].is_set() and lease.attempt == 1  # not 2: one claim, one attempt
        for call in (
            lambda: leases.publish_checkpoint(lease, '{"step": 5}', 5, keep=3),
            lambda: leases.finalize(lease, '{"ok": true}'),
        ):
            lost.append(proxy.on_request(b"EVALSHA", lose_reply=True))
            assert call() and lost[-1].is_set()
        assert client.lrange(keys.checkpoints("j1"), 0, -1) == [b'{"step": 5}']
        other = leases.claim("j2", "w1")
        client.delete(keys.lease("j2"))
        lost.append(proxy.on_request(b"EVALSHA", lose_reply=True))
        assert leases.reap("j2", other.attempt) == 1 and lost[-1].is_set()
        assert leases.reap("j2", other.attempt) == 0  # another reaper (a new call) loses
        assert proxy.cuts == 4
