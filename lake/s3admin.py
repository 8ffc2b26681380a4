"""The S3 side of the lake through the ``minio`` client: bucket setup, health, pre-signed URLs,
whole-file uploads, retries.

Table data goes through pyarrow/pyiceberg (``lake.tables``); this module administers the
warehouse bucket and puts single finished files into it (the Delta Sharing files that
``catalog.sharing`` hands out by pre-signed URL). Plain arguments in, no settings: the CLI
(``sharehub lake``) and the API pass them.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from lake.errors import LakeError
from lake.properties import DEFAULT_S3_REGION
from lake.retry import TRANSIENT_CODES as _LAKE_TRANSIENT_CODES
from lake.retry import TRANSIENT_STATUS, is_transient, with_retry

if TYPE_CHECKING:
    from minio import Minio

logger = logging.getLogger(__name__)

T = TypeVar("T")

AWS_ENDPOINT = "s3.amazonaws.com"
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 60.0
MAX_PRESIGN_EXPIRY_S = 7 * 86_400
"""S3's limit for a SigV4 pre-signed URL."""

ATTEMPTS = 5
BASE_DELAY_S = 0.2
MAX_DELAY_S = 5.0

TRANSIENT_CODES = _LAKE_TRANSIENT_CODES
"""S3 error codes worth retrying: throttling, timeouts and server-side failures."""
# Not worth retrying whatever the status: the request itself or the account is wrong.
_CREDENTIAL_CODES = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"})


def minio_client(
    endpoint: str | None,
    access_key: str | None,
    secret_key: str | None,
    region: str | None,
    *,
    secure: bool | None = None,
) -> Minio:
    """A ``Minio`` client for an S3 endpoint such as ``http://minio:9000`` (None = AWS S3).

    ``secure`` defaults to the endpoint's scheme (https when there is none). The client does
    not retry by itself (urllib3 retries are off): callers wrap calls in :func:`with_retries`,
    so one policy decides and a rejected key or a missing bucket surfaces at once.
    """
    import certifi
    import urllib3
    from minio import Minio

    host, scheme_secure = _split_endpoint(endpoint)
    if access_key and not secret_key:
        raise LakeError(f"S3 access key given without a secret key for {endpoint or AWS_ENDPOINT}")
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=READ_TIMEOUT_S),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=False,
    )
    return Minio(
        host,
        access_key=access_key or None,
        secret_key=secret_key or None,
        # always set: without a region the client asks the server where each bucket lives
        region=region or DEFAULT_S3_REGION,
        secure=scheme_secure if secure is None else secure,
        http_client=http,
    )


def _split_endpoint(endpoint: str | None) -> tuple[str, bool]:
    """``host[:port]`` and whether the scheme is https."""
    if not endpoint:
        return AWS_ENDPOINT, True
    if "://" not in endpoint:
        return endpoint.rstrip("/"), True
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LakeError(f"S3 endpoint must look like http://host:9000 or https://host, not {endpoint!r}")
    if parts.path not in ("", "/") or parts.query:
        raise LakeError(f"S3 endpoint must not have a path or query: {endpoint!r}")
    return parts.netloc, parts.scheme == "https"


def endpoint_of(client: Minio) -> str:
    """The client's endpoint as a URL, for messages (never carries credentials)."""
    # Minio keeps its endpoint in a private BaseURL; there is no public accessor.
    base = getattr(client, "_base_url", None)
    if base is None:
        return "<S3 endpoint>"
    return f"{'https' if base.is_https else 'http'}://{base.host}"


def ensure_bucket(client: Minio, bucket: str, *, versioning: bool = True) -> bool:
    """Create ``bucket`` if it is missing (returns True then, False if it existed).

    With ``versioning`` (the default) also turns object versioning on; with False an existing
    bucket's versioning is left as it is. Idempotent and safe against a concurrent creator.
    Transient errors are retried; anything else raises :class:`LakeError` saying why.
    """
    from minio.commonconfig import ENABLED
    from minio.error import S3Error
    from minio.versioningconfig import VersioningConfig

    endpoint = endpoint_of(client)
    what = f"bucket {bucket!r} at {endpoint}"
    created = False
    try:
        try:
            status = with_retries(lambda: client.get_bucket_versioning(bucket).status, what=what)
        except S3Error as exc:
            if exc.code != "NoSuchBucket":
                raise
            try:
                with_retries(lambda: client.make_bucket(bucket), what=f"creating {what}")
                created = True
            except S3Error as make_exc:
                if make_exc.code != "BucketAlreadyOwnedByYou":  # another init won the race
                    raise
            status = None
        if versioning and status != ENABLED:
            with_retries(
                lambda: client.set_bucket_versioning(bucket, VersioningConfig(ENABLED)),
                what=f"versioning on {what}",
            )
    except Exception as exc:
        raise LakeError(f"cannot set up {what}: {describe_error(exc, endpoint)}") from exc
    logger.info("%s %s (versioning %s)", what, "created" if created else "exists", versioning)
    return created


def health(client: Minio, bucket: str) -> dict[str, Any]:
    """Check that the endpoint answers, the keys work and the bucket exists; never raises.

    Returns ``{"ok", "endpoint", "bucket", "versioning", "latency_ms", "error"}``:
    ``versioning`` is ``Enabled`` / ``Suspended`` / ``Off`` (None when the check failed) and
    ``error`` names the cause (connection refused, InvalidAccessKeyId, SignatureDoesNotMatch,
    NoSuchBucket...) without secrets. One request, no retries: it reports the state now.
    """
    endpoint = endpoint_of(client)
    result: dict[str, Any] = {
        "ok": False,
        "endpoint": endpoint,
        "bucket": bucket,
        "versioning": None,
        "latency_ms": None,
        "error": None,
    }
    start = time.perf_counter()
    try:
        # GET ?versioning rather than HEAD: a HEAD error has no body, so no code to name the cause
        config = client.get_bucket_versioning(bucket)
    except Exception as exc:
        result["error"] = describe_error(exc, endpoint)
    else:
        result["ok"] = True
        result["versioning"] = config.status_string
    result["latency_ms"] = round((time.perf_counter() - start) * 1000, 1)
    return result


def presigned_get(client: Minio, bucket: str, key: str, *, expires_s: int) -> str:
    """A pre-signed GET URL for ``bucket/key``, valid ``expires_s`` seconds (1 s to 7 days).

    Signed locally (no request); it does not check that the object exists.
    """
    if not 1 <= expires_s <= MAX_PRESIGN_EXPIRY_S:
        raise ValueError(f"expiry must be between 1 and {MAX_PRESIGN_EXPIRY_S} seconds, not {expires_s}")
    return client.presigned_get_object(bucket, key, expires=dt.timedelta(seconds=expires_s))


def put_file_once(
    client: Minio,
    bucket: str,
    key: str,
    path: str | os.PathLike[str],
    *,
    content_type: str = "application/octet-stream",
) -> tuple[int, bool]:
    """Make sure ``bucket/key`` exists: keep an object already there, else upload ``path``.

    For keys that name their content (a digest), so an existing object is the same file and
    is not written again (no new object version in a versioned bucket). Returns the object's
    size and whether it was uploaded now. Transient errors are retried; anything else raises
    :class:`LakeError` saying why, without secrets.
    """
    from minio.error import S3Error

    endpoint = endpoint_of(client)
    what = f"s3://{bucket}/{key} at {endpoint}"
    try:
        try:
            found = with_retries(lambda: client.stat_object(bucket, key), what=f"looking up {what}")
        except S3Error as exc:
            if exc.code != "NoSuchKey":
                raise
        else:
            return int(found.size or 0), False
        size = os.path.getsize(path)
        with_retries(
            lambda: client.fput_object(bucket, key, os.fspath(path), content_type=content_type),
            what=f"uploading {what}",
        )
    except Exception as exc:
        raise LakeError(f"cannot put {what}: {describe_error(exc, endpoint)}") from exc
    return size, True


def is_transient_s3(exc: BaseException) -> bool:
    """True for S3 errors worth retrying: connection errors and timeouts, 5xx, SlowDown,
    RequestTimeout and throttling; False for 4xx such as 403 or NoSuchBucket."""
    import urllib3.exceptions as u3
    from minio.error import InvalidResponseError, S3Error, ServerError

    if isinstance(exc, S3Error):
        if exc.code in _CREDENTIAL_CODES:
            return False
        status = exc.response.status if exc.response is not None else 0
        return exc.code in TRANSIENT_CODES or status in TRANSIENT_STATUS
    if isinstance(exc, ServerError):
        return exc.status_code in TRANSIENT_STATUS
    if isinstance(exc, InvalidResponseError):  # a non-XML answer, e.g. a proxy's 502 page
        return getattr(exc, "_code", None) in TRANSIENT_STATUS
    if isinstance(exc, u3.MaxRetryError):
        return exc.reason is not None and is_transient_s3(exc.reason)
    if isinstance(exc, u3.SSLError):
        return False
    # urllib3's TimeoutError covers NewConnectionError (refused, unresolved) and read timeouts
    if isinstance(exc, (u3.TimeoutError, u3.ProtocolError)):
        return True
    return is_transient(exc)  # builtin ConnectionError / TimeoutError, pyarrow's OSError texts


def with_retries(
    fn: Callable[[], T],
    *,
    attempts: int = ATTEMPTS,
    base_delay: float = BASE_DELAY_S,
    max_delay: float = MAX_DELAY_S,
    retry_on: Callable[[BaseException], bool] = is_transient_s3,
    what: str = "S3 request",
) -> T:
    """Call ``fn`` under the lake's one retry policy (:func:`lake.retry.with_retry`), judging
    errors with ``retry_on`` (minio's and urllib3's types, then the lake's classification).
    Other errors (403, NoSuchBucket...) and the last failure are raised as they are."""
    return with_retry(
        fn, what=what, attempts=attempts, base_delay=base_delay, max_delay=max_delay, retry_on=retry_on
    )


def describe_error(exc: BaseException, endpoint: str | None = None) -> str:
    """A short, secret-free account of an S3 failure that names its cause."""
    import urllib3.exceptions as u3
    from minio.error import InvalidResponseError, S3Error, ServerError

    where = endpoint or "the S3 endpoint"
    if isinstance(exc, S3Error):
        text = f"{exc.code}: {exc.message}" if exc.message else str(exc.code)
        if exc.code == "NoSuchBucket" and exc.bucket_name:
            text += f" (bucket {exc.bucket_name!r})"
        elif exc.code == "NoSuchKey" and exc.object_name:
            text += f" (key {exc.object_name!r})"
        elif exc.code in ("InvalidAccessKeyId", "SignatureDoesNotMatch"):
            text += " (check the access key and secret key)"
        return text
    if isinstance(exc, ServerError):
        return f"HTTP {exc.status_code} from {where}: {exc}"
    if isinstance(exc, InvalidResponseError):
        return _shorten(f"unexpected answer from {where}: {exc}")
    if isinstance(exc, u3.MaxRetryError) and exc.reason is not None:
        return describe_error(exc.reason, endpoint)
    if isinstance(exc, u3.NewConnectionError):
        # "HTTPConnection(host=..., port=...): Failed to establish ...: [Errno 111] Connection refused"
        reason = str(exc).split("): ", 1)[-1]
        return f"cannot connect to {where}: {reason}"
    if isinstance(exc, u3.TimeoutError):
        return f"timed out talking to {where}: {exc}"
    if isinstance(exc, u3.ProtocolError):
        return f"connection to {where} broke: {exc}"
    if isinstance(exc, u3.SSLError):
        return f"TLS error talking to {where}: {exc}"
    return _shorten(f"{type(exc).__name__}: {exc}")


def _shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
