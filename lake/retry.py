"""One retry policy for the lake's storage calls (tenacity), and how errors are classified.

**Classification is by type first**, text last: ``TimeoutError`` and ``ConnectionError`` are
transient whatever their message says (``read timed out after 400 ms`` once matched the
"400" of a permanent pattern); botocore and minio errors are judged by their error code and
HTTP status; only pyarrow's S3 errors, which arrive as plain ``OSError`` carrying the AWS error
name, are judged by their text. Anything else — a schema conflict, a commit conflict, a bug — is
not retried.

**A commit is retried only after checking that it did not land.** Writes to the lake are
whole Iceberg commits tagged with the run id. If the catalog committed but its answer was lost
(a connection cut after the commit), repeating the write would append the rows twice; so
:func:`with_retry` takes a ``landed`` probe, called before every repeat, that looks for a
snapshot of this run newer than the ones there before the first try. pyarrow's own S3 client
retries single requests below this; this policy is for whole operations.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

logger = logging.getLogger(__name__)

T = TypeVar("T")

ATTEMPTS = 4
BASE_DELAY_S = 0.25
MAX_DELAY_S = 4.0

TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "Throttling",
        "ThrottlingException",
        "TooManyRequests",
        "RequestLimitExceeded",
    }
)
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})

# pyarrow's S3 errors: "AWS Error <NAME> during <Op> operation: …" (and curl-level texts)
_OSERROR_PERMANENT = (
    "access_denied",
    "accessdenied",
    "invalid_access_key_id",
    "invalidaccesskeyid",
    "signature_does_not_match",
    "signaturedoesnotmatch",
    "no_such_bucket",
    "nosuchbucket",
    "no_such_key",
    "nosuchkey",
)
_OSERROR_TRANSIENT = (
    "network_connection",
    "slow_down",
    "slowdown",
    "service_unavailable",
    "internal_failure",
    "request_timeout",
    "throttl",
    "connection reset",
    "connection refused",
    "broken pipe",
    "timed out",
    "temporarily unavailable",
    "http response code 5",
    "status code: 5",
)


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying: connection trouble, timeouts, 5xx, throttling; never 4xx."""
    if isinstance(exc, TimeoutError | ConnectionError):  # socket timeouts, resets, refusals
        return True
    botocore = _botocore_verdict(exc)
    if botocore is not None:
        return botocore
    if isinstance(exc, OSError):
        text = f"{exc}".lower()
        if any(p in text for p in _OSERROR_PERMANENT):
            return False
        return any(p in text for p in _OSERROR_TRANSIENT)
    return False


def _botocore_verdict(exc: BaseException) -> bool | None:
    """botocore's own errors (s3fs, boto3), judged by code and status; None for other types."""
    try:
        from botocore import exceptions as bex
    except ImportError:  # pragma: no cover - botocore comes with s3fs
        return None
    if isinstance(exc, bex.ClientError):
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return str(err.get("Code", "")) in TRANSIENT_CODES or int(status or 0) in TRANSIENT_STATUS
    if isinstance(exc, bex.EndpointConnectionError | bex.ConnectionClosedError | bex.ReadTimeoutError):
        return True
    if isinstance(exc, bex.ConnectTimeoutError):
        return True
    if isinstance(exc, bex.BotoCoreError):
        return False
    return None


def with_retry(
    fn: Callable[[], T],
    *,
    what: str,
    attempts: int = ATTEMPTS,
    base_delay: float = BASE_DELAY_S,
    max_delay: float = MAX_DELAY_S,
    retry_on: Callable[[BaseException], bool] = is_transient,
    landed: Callable[[], T | None] | None = None,
) -> T:
    """Call ``fn``; on an error ``retry_on`` calls transient, wait (exponential, jittered, capped
    at ``max_delay``) and call it again, at most ``attempts`` times in all.

    ``landed``, when given, is asked before each repeat whether the previous try's effect is
    there after all (a commit whose answer was lost); if it returns something, that is the
    result and ``fn`` is not called again. Other errors, and the last failure, are raised as
    they are."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")

    def log_retry(state: object) -> None:
        outcome = getattr(state, "outcome", None)
        exc = outcome.exception() if outcome is not None else None
        number = getattr(state, "attempt_number", 0)
        logger.warning("%s failed (%s), retry %d/%d", what, exc, number, attempts - 1)

    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential_jitter(initial=base_delay, max=max_delay, jitter=base_delay),
        retry=retry_if_exception(retry_on),
        before_sleep=log_retry,
        reraise=True,
    )
    for attempt in retrying:
        with attempt:
            if landed is not None and attempt.retry_state.attempt_number > 1:
                done = landed()
                if done is not None:
                    logger.warning("%s: the previous try had landed; not repeated", what)
                    return done
            return fn()
    raise AssertionError("unreachable")  # pragma: no cover - reraise=True raises the last error
