"""A small bounded retry with backoff for transient object-store errors."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

ATTEMPTS = 4
BASE_DELAY_S = 0.25
MAX_DELAY_S = 4.0

# Permanent failures: never retried (4xx: credentials, permissions, missing bucket/key).
_PERMANENT = (
    "accessdenied",
    "access_denied",
    "access denied",
    "invalidaccesskeyid",
    "signaturedoesnotmatch",
    "nosuchbucket",
    "nosuchkey",
    "forbidden",
    "http response code 4",
    "status code: 4",
    " 400",
    " 403",
    " 404",
)
# Transient failures: connection trouble, 5xx, throttling.
_TRANSIENT = (
    "connection reset",
    "connection aborted",
    "broken pipe",
    "timed out",
    "timeout",
    "temporarily unavailable",
    "network_connection",
    "slowdown",
    "slow down",
    "throttl",
    "toomanyrequests",
    "too many requests",
    "requesttimeout",
    "internalerror",
    "serviceunavailable",
    "service unavailable",
    "http response code 5",
    "status code: 5",
    " 500",
    " 502",
    " 503",
    " 504",
)


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying: connection resets, timeouts, 5xx, throttling; never 4xx."""
    text = f"{type(exc).__name__}: {exc}".lower()
    if any(p in text for p in _PERMANENT):
        return False
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    return any(p in text for p in _TRANSIENT)


def with_retry(
    fn: Callable[[], T],
    *,
    what: str,
    attempts: int = ATTEMPTS,
    base_delay: float = BASE_DELAY_S,
    max_delay: float = MAX_DELAY_S,
) -> T:
    """Call ``fn``; on a transient error wait (exponential backoff with jitter) and call it again."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if attempt >= attempts or not is_transient(exc):
                raise
            delay = min(max_delay, base_delay * 2 ** (attempt - 1)) * (1 + random.random() / 5)  # noqa: S311
            logger.warning("%s failed (%s), retry %d/%d in %.2fs", what, exc, attempt, attempts - 1, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
