"""Rate limits per grant (app × dataset): GCRA on in-process memory or on Redis.

Algorithm: GCRA, the generic cell rate algorithm (as in redis-cell and throttled). A key
holds one number, the theoretical arrival time (TAT): when the key would be empty again.
Each allowed request pushes it by the emission interval ``T = period / limit``; a request
is allowed when the backlog after it (``TAT + T - now``) is at most one ``period``. So a
fresh key takes a burst of ``limit`` requests, and after that one request every ``T``.
Chosen over a sliding window because it is exact (no approximation at window edges like
the two-bucket sliding counter), needs O(1) state per key (a sliding *log* keeps up to
``limit`` timestamps), and gives Retry-After directly: the time until the backlog fits.

Arithmetic is exact: times are whole microseconds, and ``T`` is kept as ``q`` µs plus
``r / limit`` µs (``period_us = q * limit + r``), so the TAT is an integer µs plus a
fraction numerator. Redis's Lua has only doubles; integers below 2**53 (epoch µs are about
2**51) stay exact, so the script and the Python code give the same answers.

Backends: :class:`MemoryRateLimiter` (embedded default; one process) and
:class:`RedisRateLimiter` (counters shared by every API worker and replica; one atomic
Lua script per hit, on the Redis server's clock). :func:`open_rate_limiter` picks one
from ``Settings.redis_url``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import redis

_US = 1_000_000


@dataclass(frozen=True)
class RateResult:
    """The answer to one hit."""

    allowed: bool
    limit: int
    remaining: int  # further requests allowed right now
    retry_after: int  # whole seconds until a request is allowed again (>= 1); 0 when allowed
    reset_after: float  # seconds until the key is back to a full burst of ``limit``


@runtime_checkable
class RateLimiter(Protocol):
    """Counts requests per key; a key allows ``limit`` requests per ``period_s``."""

    def hit(self, key: str, limit: int, *, period_s: float = 60.0, now: float | None = None) -> RateResult:
        """Count one request on ``key`` and say whether it is allowed.

        ``now`` (seconds) is for tests; by default the backend's own clock is used.
        """
        ...


class RateLimiterUnavailable(RuntimeError):
    """The shared counter store cannot be reached; no decision was made."""


def rate_key(app_id: str, dataset_code: str) -> str:
    """The limiter key of a grant: one counter per app × dataset."""
    return f"{app_id}|{dataset_code}"


def rate_headers(result: RateResult) -> dict[str, str]:
    """HTTP headers for a result: ``RateLimit-*`` always, ``Retry-After`` when refused."""
    headers = {
        "RateLimit-Limit": str(result.limit),
        "RateLimit-Remaining": str(result.remaining),
        "RateLimit-Reset": str(math.ceil(result.reset_after)),
    }
    if not result.allowed:
        headers["Retry-After"] = str(result.retry_after)
    return headers


def _emission(limit: int, period_s: float) -> tuple[int, int, int]:
    """``(period_us, q, r)`` with ``T = q + r / limit`` µs."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    period_us = round(period_s * _US)
    if period_us < 1:
        raise ValueError(f"period_s must be positive, got {period_s}")
    q, r = divmod(period_us, limit)
    return period_us, q, r


def _result(allowed: bool, backlog_us: int, backlog_frac: int, limit: int, period_us: int) -> RateResult:
    """Turn a backlog (``backlog_us + backlog_frac / limit`` µs) into a result.

    When allowed, the backlog is the one after this request; when refused, the one before it.
    """
    backlog_ticks = backlog_us * limit + backlog_frac  # in 1/limit µs; T is period_us ticks
    reset_after = backlog_ticks / (limit * _US)
    if allowed:
        remaining = (period_us * limit - backlog_ticks) // period_us
        return RateResult(True, limit, remaining, 0, reset_after)
    # allowed again once backlog + T - elapsed <= period
    wait_ticks = backlog_ticks + period_us - period_us * limit
    retry_after = max(1, -(-wait_ticks // (limit * _US)))
    return RateResult(False, limit, 0, retry_after, reset_after)


def _gcra(
    state: tuple[int, int, int] | None, now_us: int, limit: int, q: int, r: int, period_us: int
) -> tuple[bool, int, int, tuple[int, int, int] | None]:
    """One GCRA step; mirrors ``_LUA`` line by line.

    ``state`` is ``(tat_us, tat_frac, limit)``. Returns ``(allowed, backlog_us, backlog_frac,
    new_state)``; ``new_state`` is None when refused (a refused request costs nothing).
    """
    tat, frac = now_us, 0
    if state is not None:
        s_tat, s_frac, s_limit = state
        if s_limit != limit:
            s_frac = 0  # fraction of another limit's 1/limit µs: dropping it errs by < 1 µs
        if s_tat > now_us or (s_tat == now_us and s_frac > 0):
            tat, frac = s_tat, s_frac
    nt, nf = tat + q, frac + r
    if nf >= limit:
        nt, nf = nt + 1, nf - limit
    backlog = nt - now_us
    if backlog < period_us or (backlog == period_us and nf == 0):
        return True, backlog, nf, (nt, nf, limit)
    return False, tat - now_us, frac, None


class MemoryRateLimiter:
    """GCRA counters in this process (embedded default; not shared between workers).

    Thread-safe (one lock; a hit is a few dict operations). A key whose TAT has passed is
    equivalent to a missing one, so such idle keys are swept out once per ``sweep_interval_s``
    of the clock, or at most once a second while more than ``max_keys`` are held. A key whose
    TAT is still ahead is **never** dropped: forgetting it would give its owner a fresh burst,
    and strangers could reset an app's exhausted budget by filling the table with their own
    addresses. Memory stays bounded all the same: a live key dies within ``period / limit`` of
    its last hit, so the table holds at most (hits per second) × (the longest emission
    interval) live keys; ``max_keys`` only says when to sweep more often.
    """

    def __init__(
        self,
        *,
        max_keys: int = 100_000,
        sweep_interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._max_keys = max_keys
        self._sweep_us = round(sweep_interval_s * _US)
        self._clock = clock
        self._lock = threading.Lock()
        self._state: OrderedDict[str, tuple[int, int, int]] = OrderedDict()
        self._next_sweep: int | None = None
        self._next_over_sweep = 0

    def __len__(self) -> int:
        """Number of keys held."""
        with self._lock:
            return len(self._state)

    def hit(self, key: str, limit: int, *, period_s: float = 60.0, now: float | None = None) -> RateResult:
        """Count one request on ``key`` (``now``: seconds on this limiter's clock, for tests)."""
        period_us, q, r = _emission(limit, period_s)
        now_us = round((self._clock() if now is None else now) * _US)
        with self._lock:
            allowed, b_us, b_frac, new = _gcra(self._state.get(key), now_us, limit, q, r, period_us)
            if new is not None:
                self._state[key] = new
                self._state.move_to_end(key)
            self._maybe_sweep(now_us)
        return _result(allowed, b_us, b_frac, limit, period_us)

    def _maybe_sweep(self, now_us: int) -> None:
        over = len(self._state) > self._max_keys and now_us >= self._next_over_sweep
        if not over and self._next_sweep is not None and now_us < self._next_sweep:
            return
        self._next_sweep = now_us + self._sweep_us
        self._next_over_sweep = now_us + _US  # a full table of live keys: sweep once a second, not per hit
        idle = [
            k for k, (tat, frac, _) in self._state.items() if tat < now_us or (tat == now_us and not frac)
        ]
        for k in idle:
            del self._state[k]


# KEYS[1]: state key. ARGV: limit, q, r, period_us, now_us ('' = the server's TIME).
# State: "tat_us tat_frac limit". Returns {allowed, backlog_us, backlog_frac} like _gcra.
_LUA = """
local limit = tonumber(ARGV[1])
local q = tonumber(ARGV[2])
local r = tonumber(ARGV[3])
local period = tonumber(ARGV[4])
local now
if ARGV[5] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[5])
end
local tat, frac = now, 0
local state = redis.call('GET', KEYS[1])
if state then
  local s_tat, s_frac, s_limit = string.match(state, '^(%d+) (%d+) (%d+)$')
  if s_tat then
    local t = tonumber(s_tat)
    local f = tonumber(s_frac)
    if tonumber(s_limit) ~= limit then f = 0 end
    if t > now or (t == now and f > 0) then
      tat, frac = t, f
    end
  end
end
local nt = tat + q
local nf = frac + r
if nf >= limit then
  nt = nt + 1
  nf = nf - limit
end
local backlog = nt - now
if backlog < period or (backlog == period and nf == 0) then
  redis.call('SET', KEYS[1], string.format('%.0f %.0f %.0f', nt, nf, limit),
             'PX', math.floor(backlog / 1000) + 1)
  return {1, backlog, nf}
end
return {0, tat - now, frac}
"""


def _where(url: str) -> str:
    """``host:port/db`` of a Redis URL, without credentials (for error messages)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path}"


class RedisRateLimiter:
    """GCRA counters in Redis, shared by every API worker and replica.

    Each hit is one atomic Lua script (EVALSHA; on NOSCRIPT, e.g. after a Redis restart, the
    script is loaded again and retried). The script reads the clock with Redis ``TIME`` so
    that replicas with drifting clocks agree; ``now`` overrides it in tests. A key expires in
    Redis when its TAT passes, so idle keys cost nothing. Any Redis failure raises
    :class:`RateLimiterUnavailable`; the caller decides whether to refuse or serve.
    """

    def __init__(self, url: str, *, prefix: str = "sharehub:rl:", timeout_s: float = 2.0) -> None:
        import redis

        self.prefix = prefix
        self._where = _where(url)
        self._client: redis.Redis = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._script = self._client.register_script(_LUA)

    @property
    def client(self) -> redis.Redis:
        """The underlying Redis client."""
        return self._client

    def hit(self, key: str, limit: int, *, period_s: float = 60.0, now: float | None = None) -> RateResult:
        """Count one request on ``key``.

        ``now`` (epoch seconds) is for tests; by default the script uses Redis ``TIME``. Keys
        still expire by the server's clock, ``backlog`` after the (possibly injected) now.
        """
        import redis

        period_us, q, r = _emission(limit, period_s)
        now_arg = "" if now is None else str(round(now * _US))
        try:
            out = self._script(keys=[self.prefix + key], args=[limit, q, r, period_us, now_arg])
        except redis.RedisError as exc:
            raise RateLimiterUnavailable(f"rate limiter Redis at {self._where} failed: {exc}") from exc
        allowed, b_us, b_frac = (int(v) for v in out)
        return _result(bool(allowed), b_us, b_frac, limit, period_us)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def open_rate_limiter(redis_url: str | None) -> RateLimiter:
    """Redis-backed limiter when ``redis_url`` is set (``Settings.redis_url``), else in-process memory."""
    if redis_url:
        return RedisRateLimiter(redis_url)
    return MemoryRateLimiter()
