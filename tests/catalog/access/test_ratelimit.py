"""Rate limiting: the same behavioural tests on the memory and the Redis backend.

Time is injected (``now``) everywhere except where the Redis server clock itself is tested.
"""

from __future__ import annotations

import multiprocessing
import socket
import threading
import uuid
from collections.abc import Iterator

import pytest

from catalog.access.ratelimit import (
    MemoryRateLimiter,
    RateLimiter,
    RateLimiterUnavailable,
    RateResult,
    RedisRateLimiter,
    open_rate_limiter,
    rate_headers,
    rate_key,
)
from tests.conftest import service_unavailable

REDIS_URL = "redis://127.0.0.1:6379/0"
T0 = 1_800_000_000.0  # an epoch second; Redis keys expire by the server clock, so stay near real time


def _redis_up() -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", 6379)) == 0


@pytest.fixture
def redis_limiter() -> Iterator[RedisRateLimiter]:
    """A Redis limiter with a unique key prefix; its keys are deleted afterwards."""
    if not _redis_up():
        service_unavailable("redis", "nothing listens on 127.0.0.1:6379")
    limiter = RedisRateLimiter(REDIS_URL, prefix=f"sharehub:test:{uuid.uuid4().hex}:")
    try:
        limiter.client.ping()
    except Exception as exc:
        service_unavailable("redis", exc)
    try:
        yield limiter
    finally:
        keys = list(limiter.client.scan_iter(match=limiter.prefix + "*"))
        if keys:
            limiter.client.delete(*keys)
        limiter.close()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.services)])
def limiter(request: pytest.FixtureRequest) -> RateLimiter:
    if request.param == "memory":
        return MemoryRateLimiter()
    redis_limiter: RateLimiter = request.getfixturevalue("redis_limiter")
    return redis_limiter


# ---- behaviour, both backends ------------------------------------------------------------


def test_allows_up_to_limit_then_refuses_with_retry_after(limiter: RateLimiter) -> None:
    results = [limiter.hit("app|DS", 5, now=T0) for _ in range(7)]
    assert [r.allowed for r in results] == [True] * 5 + [False] * 2
    assert [r.remaining for r in results] == [4, 3, 2, 1, 0, 0, 0]
    # T = 12 s: the next request fits 12 s after the burst
    assert results[5] == RateResult(allowed=False, limit=5, remaining=0, retry_after=12, reset_after=60.0)
    assert results[0].retry_after == 0 and results[0].reset_after == pytest.approx(12.0)
    assert results[4].reset_after == pytest.approx(60.0)


def test_retry_after_counts_down_and_is_rounded_up(limiter: RateLimiter) -> None:
    for _ in range(3):
        assert limiter.hit("k", 3, period_s=10, now=T0).allowed
    # T = 10/3 s
    assert limiter.hit("k", 3, period_s=10, now=T0).retry_after == 4
    assert limiter.hit("k", 3, period_s=10, now=T0 + 3.0).retry_after == 1
    refused = limiter.hit("k", 3, period_s=10, now=T0 + 3.333)
    assert not refused.allowed and refused.retry_after == 1
    again = limiter.hit("k", 3, period_s=10, now=T0 + 3.334)
    assert again.allowed and again.remaining == 0


def test_refills_as_time_passes(limiter: RateLimiter) -> None:
    for _ in range(4):
        assert limiter.hit("k", 4, now=T0).allowed  # T = 15 s
    assert not limiter.hit("k", 4, now=T0 + 14.9).allowed
    one = limiter.hit("k", 4, now=T0 + 15.0)
    assert one.allowed and one.remaining == 0
    assert not limiter.hit("k", 4, now=T0 + 15.0).allowed
    # a whole period after the last allowed hit the burst is full again
    full = [limiter.hit("k", 4, now=T0 + 75.0).allowed for _ in range(5)]
    assert full == [True] * 4 + [False]


def test_refused_hits_do_not_consume(limiter: RateLimiter) -> None:
    assert limiter.hit("k", 1, now=T0).allowed
    for i in range(20):
        assert not limiter.hit("k", 1, now=T0 + i).allowed
    assert limiter.hit("k", 1, now=T0 + 60).allowed


def test_sustained_rate_is_the_limit(limiter: RateLimiter) -> None:
    # limit 7 per 60 s, so T = 60/7 s is not a whole number of microseconds: after the burst,
    # one attempt a second is allowed exactly at each multiple of T (60 s included)
    burst = [limiter.hit("k", 7, now=T0).allowed for _ in range(8)]
    assert burst == [True] * 7 + [False]
    allowed_at = [s for s in range(1, 600) if limiter.hit("k", 7, now=T0 + s).allowed]
    assert allowed_at == [-(-k * 60 // 7) for k in range(1, 70)]
    assert 60 in allowed_at and 120 in allowed_at


def test_burst_is_exact_when_t_is_not_whole_microseconds(limiter: RateLimiter) -> None:
    # T = 1e7/3999 µs = 2500.6 µs; rounding T down to 2500 µs would let a 4000th request in
    # (the period is 10 s because Redis expires keys by its own clock even when now is injected)
    allowed = sum(limiter.hit("k", 3999, period_s=10.0, now=T0).allowed for _ in range(4001))
    assert allowed == 3999


def test_keys_are_independent(limiter: RateLimiter) -> None:
    a, b = rate_key("app-a", "DS-1"), rate_key("app-b", "DS-1")
    assert a != b and rate_key("app-a", "DS-2") != a
    for _ in range(2):
        assert limiter.hit(a, 2, now=T0).allowed
    assert not limiter.hit(a, 2, now=T0).allowed
    assert limiter.hit(b, 2, now=T0).allowed
    assert limiter.hit(rate_key("app-a", "DS-2"), 2, now=T0).remaining == 1


def test_limit_change_applies_to_the_next_hit(limiter: RateLimiter) -> None:
    for _ in range(3):
        assert limiter.hit("k", 3, now=T0).allowed
    assert not limiter.hit("k", 3, now=T0).allowed
    # the grant's limit is raised to 6/min: the backlog (3 × 20 s) stays, a new hit needs 10 s of room
    assert not limiter.hit("k", 6, now=T0).allowed
    assert limiter.hit("k", 6, now=T0 + 10).allowed


def test_bad_arguments(limiter: RateLimiter) -> None:
    with pytest.raises(ValueError):
        limiter.hit("k", 0, now=T0)
    with pytest.raises(ValueError):
        limiter.hit("k", 5, period_s=0, now=T0)


def test_concurrent_threads_get_exactly_the_limit(limiter: RateLimiter) -> None:
    start = threading.Barrier(8)
    allowed = [0] * 8

    def worker(i: int) -> None:
        start.wait()
        for _ in range(50):
            if limiter.hit("shared", 100, now=T0).allowed:
                allowed[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 100
    assert not limiter.hit("shared", 100, now=T0).allowed


# ---- memory backend ----------------------------------------------------------------------


def test_memory_expires_idle_keys() -> None:
    limiter = MemoryRateLimiter(sweep_interval_s=60)
    for i in range(1000):
        limiter.hit(f"k{i}", 10, now=100.0)
    assert len(limiter) == 1000
    limiter.hit("k0", 10, now=100.0 + 6.0)  # k* are empty again after T = 6 s: sweep due at +60 s
    assert len(limiter) == 1000
    limiter.hit("late", 10, now=100.0 + 61.0)
    assert len(limiter) == 1


def test_live_keys_are_never_evicted_and_idle_ones_go_when_the_table_is_full() -> None:
    """Strangers filling the table cannot reset a budget that is still in use (issue 10: an
    app's exhausted limit came back after anonymous downloads from 25 addresses)."""
    limiter = MemoryRateLimiter(max_keys=50)
    assert limiter.hit("app", 2, now=100.0).allowed and limiter.hit("app", 2, now=100.0).allowed
    assert not limiter.hit("app", 2, now=100.0).allowed
    for i in range(200):
        limiter.hit(f"addr{i}", 60, now=100.0)
    assert len(limiter) == 201  # all live: nothing dropped, whatever max_keys says
    assert not limiter.hit("app", 2, now=100.5).allowed  # the exhausted budget holds
    # once the strangers' keys are idle (60/min: one second each), the next sweep drops them
    limiter.hit("late", 10, now=102.0)
    assert len(limiter) == 2  # app (still live) and late: the idle strangers were swept
    assert not limiter.hit("app", 2, now=102.0).allowed


def test_memory_uses_its_clock_when_no_now() -> None:
    ticks = iter([10.0, 10.0, 10.0, 40.0])
    limiter = MemoryRateLimiter(clock=lambda: next(ticks))
    assert limiter.hit("k", 2).allowed and limiter.hit("k", 2).allowed
    assert limiter.hit("k", 2).retry_after == 30
    assert limiter.hit("k", 2).allowed


def test_open_rate_limiter_picks_the_backend() -> None:
    assert isinstance(open_rate_limiter(None), MemoryRateLimiter)
    redis_limiter = open_rate_limiter("redis://127.0.0.1:1/0")
    assert isinstance(redis_limiter, RedisRateLimiter) and isinstance(redis_limiter, RateLimiter)


def test_headers() -> None:
    limiter = MemoryRateLimiter()
    ok = limiter.hit("k", 2, now=0.0)
    assert rate_headers(ok) == {"RateLimit-Limit": "2", "RateLimit-Remaining": "1", "RateLimit-Reset": "30"}
    limiter.hit("k", 2, now=0.0)
    refused = limiter.hit("k", 2, now=0.5)
    headers = rate_headers(refused)
    assert headers["Retry-After"] == "30" and headers["RateLimit-Remaining"] == "0"


# ---- Redis backend -----------------------------------------------------------------------


def test_redis_down_raises_a_clear_error() -> None:
    limiter = RedisRateLimiter("redis://:secret@127.0.0.1:1/0", timeout_s=0.5)
    with pytest.raises(RateLimiterUnavailable, match=r"127\.0\.0\.1:1/0") as info:
        limiter.hit("k", 10)
    assert "secret" not in str(info.value)


@pytest.mark.services
def test_redis_uses_the_server_clock(redis_limiter: RedisRateLimiter) -> None:
    first = redis_limiter.hit("k", 2, period_s=3600)
    second = redis_limiter.hit("k", 2, period_s=3600)
    third = redis_limiter.hit("k", 2, period_s=3600)
    assert first.allowed and second.allowed and not third.allowed
    assert 1 <= third.retry_after <= 1800
    state = redis_limiter.client.get(redis_limiter.prefix + "k")
    assert isinstance(state, bytes)
    tat_us = int(state.split()[0])
    server_s, server_us = redis_limiter.client.time()
    server_now_us = server_s * 1_000_000 + server_us
    # two hits of 1800 s each from (about) the server's now, not from some other clock
    assert 0 < tat_us - server_now_us <= 3600 * 1_000_000
    ttl_ms = redis_limiter.client.pttl(redis_limiter.prefix + "k")
    assert 3500 * 1000 < ttl_ms <= 3600 * 1000 + 1


@pytest.mark.services
def test_redis_reloads_a_flushed_script(redis_limiter: RedisRateLimiter) -> None:
    assert redis_limiter.hit("k", 2, now=T0).allowed
    redis_limiter.client.script_flush()
    assert redis_limiter.hit("k", 2, now=T0).allowed
    assert not redis_limiter.hit("k", 2, now=T0).allowed


def _process_worker(url: str, prefix: str, start: threading.Barrier, out: multiprocessing.Queue[int]) -> None:
    limiter = RedisRateLimiter(url, prefix=prefix)
    start.wait()
    out.put(sum(limiter.hit("shared", 100, now=T0).allowed for _ in range(150)))
    limiter.close()


@pytest.mark.services
def test_redis_two_processes_share_the_counter(redis_limiter: RedisRateLimiter) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_process_worker, args=(REDIS_URL, redis_limiter.prefix, start, out))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    counts = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sum(counts) == 100
    assert not redis_limiter.hit("shared", 100, now=T0).allowed
