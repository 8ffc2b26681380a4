"""The HTTP connector: the records of a department's REST API, page by page, as Arrow batches.

The connection ref resolves to the API's base URL; its credentials travel in the URL's user
part (``https://user:secret@host/base``, as a database URL carries its password) and the
source spec only names the auth mode, so no secret is ever in a spec. Which part is the
secret depends on the mode (see :class:`Credentials`).

Records are JSON objects found at a dotted path in each page's body (``data.items``; the empty
path means the body itself is the list). They are read like JSON lines (``connectors.jsonl``):
values as text, keys matched to the declared columns as headers are, keys nobody declared kept
in ``_extra`` by the conform step, a declared column no record has reported as a
``missing_column`` reject, a record that is not an object a ``read`` reject.

Incremental reads send ``since_param = watermark - lookback`` (a closed start, no end bound,
as the SQL connector reads ``cursor >= watermark - lookback``); ``new_watermark`` is the
largest ``cursor`` value of the records read. The API must treat the parameter as inclusive.

Every request goes through a rate limiter (``max_rps``) and is retried with exponential
backoff on connection errors, 429 and 5xx, honouring ``Retry-After``; a request that still
fails raises :class:`HttpError` naming the URL (credentials and secret query parameters
removed), the status and a short excerpt of the body. A page that is not JSON, or whose path
does not hold a list, raises :class:`MalformedPage`: a run never publishes part of a source.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urljoin, urlsplit, urlunsplit

import httpx
import pyarrow as pa

from connectors.base import DEFAULT_BATCH_SIZE, ConnectorError, Reject
from connectors.common import lower_bound
from connectors.jsonl import RecordColumns

log = logging.getLogger("connectors.http")

AUTH_MODES = ("none", "bearer", "api_key", "basic", "oauth2")
METHODS = ("GET", "POST")
PAGINATION_STYLES = ("none", "page", "offset", "cursor", "next_link")
#: query parameters whose value is hidden in messages whatever the source declares
SECRET_WORDS = ("token", "key", "secret", "password", "passwd", "pwd", "sig", "auth", "credential", "session")
MASK = "***"
EXCERPT_CHARS = 200
#: the largest page body read (decoded); a larger or endless body fails the read, not the worker
MAX_PAGE_BYTES = 64 << 20
#: how much of an error answer's body is read for the message
ERROR_BODY_BYTES = 64 << 10
_LINK_NEXT = re.compile(r"""<([^>]*)>[^,]*?;\s*rel\s*=\s*"?([^",;]*)"?""", re.IGNORECASE)


class HttpError(ConnectorError):
    """A request that failed for good: ``url`` is the redacted URL, ``status`` the HTTP status
    (None for a connection error or a timeout)."""

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class MalformedPage(HttpError):
    """A page whose body is not JSON or whose records path does not hold a list."""


@dataclass(frozen=True)
class Pagination:
    """How the next page is asked for; ``page``/``offset`` stop at an empty page, ``cursor`` and
    ``next_link`` when no next cursor/link is named (or an empty page names the one it was asked
    with: an empty page that names a new one is followed).

    ``page``: ``page_param`` counts from ``first_page`` (``size_param``=``page_size`` sent when
    both are given). ``offset``: ``offset_param`` advances by the records received (so a server
    that caps the page below ``limit_param``=``page_size`` loses nothing). ``cursor``: the body
    field at ``cursor_path`` is sent back as ``cursor_param``; none, null or "" ends the read.
    ``next_link``: the URL in the body field ``next_path``, or without it the ``Link`` header's
    ``rel="next"``; none ends the read. A next link must stay on the connection's host.
    """

    style: str = "none"
    page_param: str = "page"
    first_page: int = 1
    size_param: str | None = None
    page_size: int | None = None
    offset_param: str = "offset"
    limit_param: str = "limit"
    cursor_param: str = "cursor"
    cursor_path: str | None = None
    next_path: str | None = None

    @classmethod
    def of(cls, options: Mapping[str, Any] | None) -> Pagination:
        """Build from plain options (a ConnectorError for an unknown key or a bad combination)."""
        options = dict(options or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConnectorError(f"unknown pagination option(s): {', '.join(unknown)}")
        p = cls(**{k: v for k, v in options.items() if v is not None})
        if p.style not in PAGINATION_STYLES:
            raise ConnectorError(
                f"unknown pagination style {p.style!r}; known: {', '.join(PAGINATION_STYLES)}"
            )
        if p.style == "offset" and not p.page_size:
            raise ConnectorError("offset pagination needs page_size (sent as limit_param)")
        if p.style == "cursor" and not p.cursor_path:
            raise ConnectorError("cursor pagination needs cursor_path (where the body holds the next cursor)")
        if p.page_size is not None and p.page_size < 1:
            raise ConnectorError("page_size must be positive")
        return p


def dig(body: Any, path: str) -> Any:
    """The value at a dotted ``path`` (``data.items``; a number indexes a list; "" is ``body``).

    Raises KeyError naming the first part not found."""
    value = body
    for part in path.split(".") if path else []:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(part)
    return value


def retry_after_seconds(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """``Retry-After`` as seconds to wait: delta-seconds (a decimal is accepted) or an HTTP-date
    (a date in the past is 0). None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


def next_link(header: str | None) -> str | None:
    """The ``rel="next"`` target of a ``Link`` header (RFC 8288), None when there is none."""
    for target, rels in _LINK_NEXT.findall(header or ""):
        if "next" in rels.lower().split():
            return str(target)
    return None


class Redactor:
    """Removes credentials from URLs and secrets from any text (messages, body excerpts, logs)."""

    def __init__(self, secrets: list[str], secret_params: set[str]) -> None:
        self.secrets: list[str] = []
        self.secret_params = {p.lower() for p in secret_params}
        for s in secrets:
            self.add(s)

    def add(self, secret: str | None, *, min_length: int = 4) -> None:
        """Hide ``secret`` (and its URL-encoded forms) from now on.

        Values shorter than ``min_length`` are not searched for in text (masking every "1" or
        "abc" would garble the messages); URLs lose their user part and secret parameters
        whatever their length."""
        if not secret or len(secret) < min_length:
            return
        for form in (secret, quote(secret, safe=""), quote_plus(secret)):
            if form not in self.secrets:
                self.secrets.append(form)
        self.secrets.sort(key=len, reverse=True)  # a secret that contains another goes first

    def _secret_param(self, name: str) -> bool:
        lower = name.lower()
        return lower in self.secret_params or any(w in lower for w in SECRET_WORDS)

    def url(self, url: str | httpx.URL) -> str:
        """``url`` without its user part and with the values of secret parameters masked."""
        parts = urlsplit(str(url))
        netloc = parts.netloc.rpartition("@")[2]
        query = parse_qsl(parts.query, keep_blank_values=True)
        masked = [(k, MASK if self._secret_param(k) else v) for k, v in query]
        return self.text(urlunsplit((parts.scheme, netloc, parts.path, urlencode(masked, safe="*"), "")))

    def text(self, text: str) -> str:
        """``text`` with every known secret replaced by ``***``."""
        for s in self.secrets:
            text = text.replace(s, MASK)
        return text


class _RedactLogs(logging.Filter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redactor.text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


@dataclass(frozen=True)
class Credentials:
    """The connection ref's URL taken apart: the base URL, its query parameters and the secret.

    ``basic``: ``https://user:password@host/…``; ``bearer`` and ``api_key``: the token or key as
    the password (``https://:TOKEN@host/…``) or alone as the user (``https://TOKEN@host/…``);
    ``oauth2``: ``https://client_id:client_secret@host/…``. ``none`` refuses a user part.
    Percent-encode reserved characters in the secret (``@`` is ``%40``).
    """

    base: str
    params: list[tuple[str, str]] = field(default_factory=list)
    user: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str, auth: str) -> Credentials:
        """Split the connection URL; a ConnectorError (naming no secret) when it does not fit ``auth``."""
        from urllib.parse import unquote

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConnectorError("an http source's connection must be an http(s):// URL")
        userinfo, at, host = parts.netloc.rpartition("@")
        user: str | None = None
        password: str | None = None
        if at:
            raw_user, colon, raw_password = userinfo.partition(":")
            user = unquote(raw_user) or None
            password = unquote(raw_password) if colon else None
        base = urlunsplit((parts.scheme, host, parts.path, "", ""))
        params = parse_qsl(parts.query, keep_blank_values=True)
        creds = cls(base, params, user, password)
        creds.check(auth)
        return creds

    def check(self, auth: str) -> None:
        where = "in the connection ref's URL"
        if auth == "none" and (self.user or self.password):
            raise ConnectorError("the connection ref carries credentials but the source's auth is none")
        if auth in ("bearer", "api_key") and not self.secret:
            raise ConnectorError(f"auth {auth} needs the token {where}: https://:TOKEN@host/…")
        if auth == "basic" and not self.user:
            raise ConnectorError(f"auth basic needs user:password {where}: https://user:password@host/…")
        if auth == "oauth2" and not (self.user and self.password):
            raise ConnectorError(
                f"auth oauth2 needs client_id:client_secret {where}: https://id:secret@host/…"
            )

    @property
    def secret(self) -> str | None:
        """The token or key of ``bearer``/``api_key``: the password, else the user."""
        return self.password or self.user


class RateLimiter:
    """At most ``per_second`` request starts a second (None: no limit)."""

    def __init__(
        self,
        per_second: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_second is not None and per_second <= 0:
            raise ConnectorError("max_rps must be positive")
        self.interval = 1.0 / per_second if per_second else 0.0
        self.clock = clock
        self.sleep = sleep
        self._next = 0.0

    def wait(self) -> None:
        """Sleep until the next request may start."""
        if not self.interval:
            return
        now = self.clock()
        if self._next > now:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


def _since_text(value: Any) -> str:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _param_text(value: Any) -> str:
    """A query parameter's text: JSON's spelling for booleans and null, ``str`` otherwise."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return str(value)


def _cursor_key(value: Any) -> tuple[str, Any] | None:
    """A cursor value as something comparable: numbers, or ISO dates/times (naive = UTC+8)."""
    from connectors.conform import HUB_TZINFO

    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return ("number", value)
    if isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        return ("time", when if when.tzinfo else when.replace(tzinfo=HUB_TZINFO))
    return None


class _Unreadable(ValueError):
    """JSON that json.loads would take but that cannot be read exactly."""


def _no_constant(name: str) -> Any:
    raise _Unreadable(f"{name} is not a JSON number")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _Unreadable(f"duplicate key {key!r} in an object")
        obj[key] = value
    return obj


def loads_exact(content: bytes, charset: str | None) -> Any:
    """A page body as JSON, read exactly or not at all.

    The text is decoded strictly: with the declared ``charset``, else as UTF-8/16/32 as
    RFC 8259 says (a byte order mark is accepted), so a GBK body never turns into U+FFFD.
    Decimals are :class:`~decimal.Decimal` (every digit kept); ``NaN``/``Infinity`` and
    duplicate keys raise ``ValueError`` (json.loads would take them and lose data)."""
    if charset:
        text = content.decode(charset)
        text = text.removeprefix("\ufeff")
    else:
        text = content.decode(json.detect_encoding(content))
    return json.loads(text, parse_float=Decimal, parse_constant=_no_constant, object_pairs_hook=_object)


def _json_text(value: Any) -> str:
    """``json.dumps`` of a nested value, decimals written with every digit."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {_json_text(v)}" for k, v in value.items())
            + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(_json_text(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _exact(obj: dict[str, Any]) -> dict[str, Any]:
    """A record's values as :func:`connectors.jsonl.value_text` would write them, decimals exact."""
    return {
        k: str(v) if isinstance(v, Decimal) else _json_text(v) if isinstance(v, dict | list) else v
        for k, v in obj.items()
    }


def _excerpt(response: httpx.Response) -> str:
    try:
        text = response.text
    except (UnicodeDecodeError, LookupError):
        text = response.content[:EXCERPT_CHARS].decode("utf-8", "replace")
    text = " ".join(text.split())
    return text[:EXCERPT_CHARS] + ("…" if len(text) > EXCERPT_CHARS else "")


class HttpConnector:
    """The records of a REST API endpoint as string batches with ``_source`` (the path) and
    ``_row`` (the record's number in the read, from 1).

    ``url`` is the connection ref resolved (base URL with credentials, see :class:`Credentials`);
    ``path`` the endpoint under it. After iteration ``new_watermark`` is the largest ``cursor``
    value read (the record's own text; None when nothing was read or the read is not
    incremental), ``pages`` the number of pages and ``requests`` the number of requests sent.
    """

    def __init__(
        self,
        url: str,
        *,
        path: str = "",
        method: str = "GET",
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        records: str = "",
        auth: str = "none",
        api_key_header: str = "X-API-Key",
        api_key_param: str | None = None,
        token_url: str | None = None,
        scope: str | None = None,
        pagination: Mapping[str, Any] | None = None,
        cursor: str | None = None,
        since_param: str | None = None,
        watermark: Any | None = None,
        lookback: dt.timedelta | None = None,
        columns: Mapping[str, str] | None = None,
        max_rps: float | None = None,
        max_retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_wait: float = 300.0,
        timeout: float = 30.0,
        max_pages: int = 100_000,
        max_page_bytes: int = MAX_PAGE_BYTES,
        max_page_seconds: float = 600.0,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        method = method.upper()
        if method not in METHODS:
            raise ConnectorError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        if auth not in AUTH_MODES:
            raise ConnectorError(f"unknown auth {auth!r}; known: {', '.join(AUTH_MODES)}")
        if auth == "oauth2" and not token_url:
            raise ConnectorError("auth oauth2 needs token_url")
        if watermark is not None and not (cursor and since_param):
            raise ConnectorError("an incremental read (watermark=) needs cursor= and since_param=")
        if "://" in path:
            raise ConnectorError("path is the endpoint under the connection's base URL, not a URL")
        if max_retries < 0 or batch_size < 1 or max_pages < 1 or timeout <= 0:
            raise ConnectorError("max_retries, batch_size, max_pages and timeout must be positive")
        if max_page_bytes < 1 or max_page_seconds <= 0:
            raise ConnectorError("max_page_bytes and max_page_seconds must be positive")
        self.creds = Credentials.parse(url, auth)
        self.path = path
        self.endpoint = self.creds.base.rstrip("/") + "/" + path.lstrip("/") if path else self.creds.base
        self.method = method
        self.params = dict(params or {})
        self.body = dict(body or {})
        self.records = records
        self.auth = auth
        self.api_key_header = api_key_header
        self.api_key_param = api_key_param
        self.token_url = urljoin(self.creds.base, token_url) if token_url else None
        self.scope = scope
        self.pagination = Pagination.of(pagination)
        self.cursor = cursor
        self.since_param = since_param
        self.watermark = watermark
        self.lookback = lookback
        self.columns = dict(columns) if columns is not None else None
        self.limiter = RateLimiter(max_rps)
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_wait = max_wait
        self.timeout = timeout
        self.max_pages = max_pages
        self.max_page_bytes = max_page_bytes
        self.max_page_seconds = max_page_seconds
        self.batch_size = batch_size
        self.source = path or "/"
        secret_params = {k for k, _ in self.creds.params} | ({api_key_param} if api_key_param else set())
        self.redactor = Redactor([s for s in (self.creds.user, self.creds.password) if s], secret_params)
        for _, value in self.creds.params:  # keys and signatures are long; format=json is not a secret
            self.redactor.add(value, min_length=8)
        if auth in ("basic", "oauth2"):  # the base64 of user:password is as secret as the password
            self.redactor.add(self._basic_value().removeprefix("Basic "))
        self.new_watermark: Any | None = None
        self.pages = 0
        self.requests = 0
        self._rejects: list[Reject] = []
        self._token: str | None = None
        self._token_expiry = 0.0
        self._origin = urlsplit(self.creds.base)[:2]
        self._cursor_max: tuple[str, Any] | None = None

    @property
    def rejects(self) -> list[Reject]:
        """Records that are not JSON objects, and declared columns no record has."""
        return self._rejects

    # ---- reading -------------------------------------------------------------------------------
    def read_batches(self) -> Iterator[pa.RecordBatch]:
        """Stream every page's records as string batches (bounded by ``batch_size`` rows)."""
        self.new_watermark = None
        self._cursor_max = None
        self._rejects = []
        self.pages = 0
        self.requests = 0
        record_columns = RecordColumns(self.columns, name=self.source)
        row = 0
        buffered: list[dict[str, Any]] = []
        numbers: list[int] = []
        with self._quiet_client_logs(), httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            for page_no, page in self._pages(client):
                for i, obj in enumerate(page, 1):
                    row += 1
                    if not isinstance(obj, dict):
                        text = self.redactor.text(_json_text(obj))[:EXCERPT_CHARS]
                        reason = f"page {page_no}, record {i}: not a JSON object"
                        self._rejects.append(Reject(self.source, row, None, text, reason))
                        continue
                    if self.cursor is not None:
                        self._note_cursor(obj.get(self.cursor))
                    buffered.append(record_columns.row(_exact(obj)))
                    numbers.append(row)
                    if len(buffered) >= self.batch_size:
                        yield record_columns.batch(buffered, numbers)
                        buffered, numbers = [], []
        if buffered:
            yield record_columns.batch(buffered, numbers)
        if row:  # an empty (incremental) read says nothing about the columns
            self._rejects.extend(record_columns.missing("records"))

    def _note_cursor(self, value: Any) -> None:
        key = _cursor_key(value)
        if key is None:
            return
        if self._cursor_max is not None and key[0] != self._cursor_max[0]:
            raise ConnectorError(
                f"{self.source}: cursor {self.cursor} mixes numbers and dates/times ({value!r})"
            )
        if self._cursor_max is None or key[1] > self._cursor_max[1]:
            self._cursor_max = key
            self.new_watermark = value

    def since_value(self) -> str | None:
        """The text sent as ``since_param``: ``watermark - lookback`` (None: not incremental)."""
        if self.watermark is None or self.since_param is None:
            return None
        return _since_text(lower_bound(self.watermark, self.lookback))

    def _pages(self, client: httpx.Client) -> Iterator[tuple[int, list[Any]]]:
        p = self.pagination
        page_no, page, offset = 1, p.first_page, 0
        cursor: Any = None
        url: str | None = None  # a next link to follow
        seen: set[str] = set()
        previous: str | None = None
        while True:
            extra: dict[str, Any] = {}
            if url is None:
                if p.style == "page":
                    extra[p.page_param] = page
                    if p.size_param and p.page_size:
                        extra[p.size_param] = p.page_size
                elif p.style == "offset":
                    extra[p.offset_param] = offset
                    extra[p.limit_param] = p.page_size
                elif p.style == "cursor":
                    if p.size_param and p.page_size:
                        extra[p.size_param] = p.page_size
                    if cursor is not None:
                        extra[p.cursor_param] = cursor
            response = self._request(client, url or self.endpoint, extra, page_no, follow=url is not None)
            data, records = self._parse(response, page_no)
            self.pages += 1
            # a cursor or a next link says itself whether there is more: an empty page that names
            # a new one is followed (an API that filters after paging), not taken for the end
            if not records and p.style not in ("cursor", "next_link"):
                return
            if p.style in ("page", "offset"):
                digest = hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()
                if digest == previous:
                    param = p.page_param if p.style == "page" else p.offset_param
                    raise HttpError(
                        f"{self._where(response, page_no)}: the page repeats the one before "
                        f"(does the API ignore {param}?)",
                        url=self.redactor.url(response.request.url),
                        status=response.status_code,
                    )
                previous = digest
            if records:
                yield page_no, records
            if p.style == "none":
                return
            if p.style == "page":
                page += 1
            elif p.style == "offset":
                offset += len(records)
            elif p.style == "cursor":
                assert p.cursor_path is not None
                sent = cursor
                try:
                    cursor = dig(data, p.cursor_path)
                except KeyError:
                    return
                if cursor is None or cursor == "" or (not records and cursor == sent):
                    return  # no cursor, or an empty page that names the one it was asked with
                self._no_loop(str(cursor), seen, response, page_no, "cursor")
            else:
                target = self._next_link(data, response)
                if not target:
                    return
                here = str(response.request.url)
                url = str(urljoin(here, target))
                if not records and url == here:
                    return  # an empty page that links to itself
                if urlsplit(url)[:2] != self._origin:
                    raise HttpError(
                        f"{self._where(response, page_no)}: the next link leaves the connection's "
                        f"host ({self.redactor.url(url)}); the hub does not send credentials there",
                        url=self.redactor.url(response.request.url),
                    )
                self._no_loop(url, seen, response, page_no, "next link")
            page_no += 1
            if page_no > self.max_pages:
                raise HttpError(
                    f"{self._where(response, page_no - 1)}: more than max_pages={self.max_pages} pages",
                    url=self.redactor.url(response.request.url),
                )

    def _no_loop(self, value: str, seen: set[str], response: httpx.Response, page_no: int, what: str) -> None:
        if value in seen:
            raise HttpError(
                f"{self._where(response, page_no)}: the {what} repeats an earlier page's; stopping a loop",
                url=self.redactor.url(response.request.url),
            )
        seen.add(value)

    def _next_link(self, data: Any, response: httpx.Response) -> str | None:
        path = self.pagination.next_path
        if path:
            try:
                value = dig(data, path)
            except KeyError:
                return None
            return str(value) if value else None
        return next_link(response.headers.get("link"))

    def _parse(self, response: httpx.Response, page_no: int) -> tuple[Any, list[Any]]:
        where = self._where(response, page_no)
        safe = self.redactor.url(response.request.url)
        try:
            data = loads_exact(response.content, response.charset_encoding)
        except LookupError:
            raise MalformedPage(
                f"{where}: the body's charset {response.charset_encoding!r} is unknown",
                url=safe,
                status=response.status_code,
            ) from None
        except (ValueError, UnicodeError) as exc:  # JSONDecodeError, UnicodeDecodeError, _Unreadable
            excerpt = self.redactor.text(_excerpt(response))
            detail = getattr(exc, "msg", None) or getattr(exc, "reason", None) or exc
            raise MalformedPage(
                f"{where}: the body is not JSON ({exc.__class__.__name__.lstrip('_')}: {detail}); "
                f"content-type {response.headers.get('content-type', 'none')}; body: {excerpt!r}",
                url=safe,
                status=response.status_code,
            ) from None
        try:
            records = dig(data, self.records)
        except KeyError as exc:
            raise MalformedPage(
                f"{where}: the records path {self.records!r} is not in the body (no {exc.args[0]!r})",
                url=safe,
                status=response.status_code,
            ) from None
        if not isinstance(records, list):
            raise MalformedPage(
                f"{where}: the records path {self.records or '(the body)'!r} holds "
                f"{type(records).__name__}, not a list",
                url=safe,
                status=response.status_code,
            )
        return data, records

    # ---- requests ------------------------------------------------------------------------------
    def _where(self, response_or_request: httpx.Response | httpx.Request, page_no: int | None) -> str:
        """``METHOD url (page n)``, the URL redacted: how every message names a request."""
        request = (
            response_or_request.request
            if isinstance(response_or_request, httpx.Response)
            else response_or_request
        )
        where = f"{request.method} {self.redactor.url(request.url)}"
        return f"{where} (page {page_no})" if page_no is not None else where

    def _request(
        self, client: httpx.Client, url: str, extra: dict[str, Any], page_no: int, *, follow: bool
    ) -> httpx.Response:
        """One page: the declared parameters (not on a next link, which carries its own), the
        pagination's, the incremental start; then auth, rate limit and retries."""
        params: list[tuple[str, Any]] = []
        present = {k for k, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
        params += [(k, v) for k, v in self.creds.params if k not in present]
        if self.method == "GET" and not follow:
            params += list(self.params.items())
        body: dict[str, Any] | None = dict(self.body) if self.method == "POST" else None
        since = self.since_value()
        incremental = {self.since_param: since} if since is not None and self.since_param else {}
        if body is not None:
            body.update(incremental)
            body.update(extra)
        elif not follow:
            params += [*incremental.items(), *extra.items()]
        if self.auth == "api_key" and self.api_key_param and self.api_key_param not in present:
            params.append((self.api_key_param, self.creds.secret))
        query: list[tuple[str, str | int | float | bool | None]] = [(k, _param_text(v)) for k, v in params]
        request = client.build_request(self.method, url, params=query or None, json=body)
        return self._send(client, request, page_no)

    def _auth_headers(self, client: httpx.Client) -> dict[str, str]:
        if self.auth == "bearer":
            return {"Authorization": f"Bearer {self.creds.secret}"}
        if self.auth == "api_key" and not self.api_key_param:
            return {self.api_key_header: str(self.creds.secret)}
        if self.auth == "basic":
            return {"Authorization": self._basic_value()}
        if self.auth == "oauth2":
            return {"Authorization": f"Bearer {self._access_token(client)}"}
        return {}

    def _basic_value(self) -> str:
        pair = f"{self.creds.user or ''}:{self.creds.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def _access_token(self, client: httpx.Client) -> str:
        """The OAuth2 client-credentials token, fetched once and again shortly before it expires
        (or after a 401)."""
        if self._token is not None and time.monotonic() < self._token_expiry:
            return self._token
        assert self.token_url is not None
        form = {"grant_type": "client_credentials", **({"scope": self.scope} if self.scope else {})}
        self._token = None
        request = client.build_request(
            "POST",
            self.token_url,
            data=form,
            headers={"Authorization": self._basic_value(), "Accept": "application/json"},
        )
        response = self._send(client, request, None, authorise=False)
        # a 2xx answer of the token endpoint holds the token: its body is never quoted
        payload: Any = None
        try:
            payload = json.loads(response.text)
            token = payload["access_token"]
            if not isinstance(token, str) or not token:
                raise TypeError
        except (ValueError, KeyError, TypeError):
            keys = sorted(payload)[:10] if isinstance(payload, dict) else None
            raise HttpError(
                f"{self._where(response, None)}: the token endpoint's answer has no access_token "
                f"(content-type {response.headers.get('content-type', 'none')}; "
                f"{'keys: ' + ', '.join(map(str, keys)) if keys is not None else 'not a JSON object'})",
                url=self.redactor.url(response.request.url),
                status=response.status_code,
            ) from None
        self.redactor.add(token)
        try:
            expires_in = float(payload.get("expires_in") or 3600)
        except (ValueError, TypeError):
            raise HttpError(
                f"{self._where(response, None)}: the token endpoint's expires_in is not a number "
                f"({self.redactor.text(repr(payload.get('expires_in')))[:EXCERPT_CHARS]})",
                url=self.redactor.url(response.request.url),
                status=response.status_code,
            ) from None
        self._token = str(token)
        # renew a little early: a tenth of the lifetime, at most 30 s
        self._token_expiry = time.monotonic() + expires_in - min(30.0, expires_in / 10)
        return self._token

    def _delay(self, attempt: int) -> float:
        return float(min(self.max_backoff, self.backoff * 2**attempt))

    def _send(
        self, client: httpx.Client, request: httpx.Request, page_no: int | None, *, authorise: bool = True
    ) -> httpx.Response:
        """Send with rate limit and retries; return a 2xx response or raise HttpError."""
        attempt = 0
        refreshed = False
        where = self._where(request, page_no)
        safe = self.redactor.url(request.url)
        while True:
            if authorise:
                request.headers.update(self._auth_headers(client))
            self.limiter.wait()
            self.requests += 1
            try:
                response = self._receive(client, request, where)
            except httpx.TransportError as exc:
                cause = self.redactor.text(f"{type(exc).__name__}: {exc}")
                if attempt >= self.max_retries:
                    raise HttpError(
                        f"{where}: {cause} (after {attempt + 1} attempts)", url=safe, status=None
                    ) from None
                wait = self._delay(attempt)
                log.warning("%s: %s; retry %d in %.2fs", where, cause, attempt + 1, wait)
                time.sleep(wait)
                attempt += 1
                continue
            except httpx.HTTPError as exc:  # not a network problem (a bad URL, undecodable content)
                cause = self.redactor.text(f"{type(exc).__name__}: {exc}")
                raise HttpError(f"{where}: {cause}", url=safe, status=None) from None
            status = response.status_code
            if status == 401 and authorise and self.auth == "oauth2" and not refreshed:
                response.close()
                refreshed = True
                self._token = None  # expired or revoked early: fetch a new one, once
                log.info("%s: 401 with a cached token; fetching a new token", where)
                continue
            if status == 429 or status >= 500:
                if attempt < self.max_retries:
                    asked = retry_after_seconds(response.headers.get("retry-after"))
                    wait = asked if asked is not None else self._delay(attempt)
                    if wait > self.max_wait:
                        raise self._failed(response, where, attempt + 1, f"asks to retry after {wait:.0f}s")
                    log.warning("%s: HTTP %d; retry %d in %.2fs", where, status, attempt + 1, wait)
                    response.close()
                    time.sleep(wait)
                    attempt += 1
                    continue
                raise self._failed(response, where, attempt + 1)
            if not 200 <= status < 300:
                raise self._failed(response, where, attempt + 1)
            return response

    def _receive(self, client: httpx.Client, request: httpx.Request, where: str) -> httpx.Response:
        """Send and read the body as it streams in: at most ``max_page_bytes`` (decoded) within
        ``max_page_seconds``, else HttpError (an endless or huge body must not take the worker's
        memory); an error answer's body only up to ``ERROR_BODY_BYTES`` (for its excerpt)."""
        streamed = client.send(request, stream=True)
        try:
            ok = 200 <= streamed.status_code < 300
            limit = self.max_page_bytes if ok else ERROR_BODY_BYTES
            deadline = time.monotonic() + self.max_page_seconds
            chunks: list[bytes] = []
            size = 0
            for chunk in streamed.iter_bytes():
                size += len(chunk)
                if size > limit:
                    if not ok:
                        chunks.append(chunk[: len(chunk) - (size - limit)])
                        break
                    raise HttpError(
                        f"{where}: the body is larger than max_page_bytes={self.max_page_bytes}",
                        url=self.redactor.url(request.url),
                        status=streamed.status_code,
                    )
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise HttpError(
                        f"{where}: the body was still arriving after "
                        f"max_page_seconds={self.max_page_seconds:g}",
                        url=self.redactor.url(request.url),
                        status=streamed.status_code,
                    )
        finally:
            streamed.close()
        # the body is decoded already: the copy must not say it is compressed
        headers = [
            (k, v)
            for k, v in streamed.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        extensions: dict[str, Any] = {
            k: streamed.extensions[k] for k in ("http_version", "reason_phrase") if k in streamed.extensions
        }
        return httpx.Response(
            streamed.status_code,
            headers=headers,
            content=b"".join(chunks),
            request=request,
            extensions=extensions,
        )

    def _failed(self, response: httpx.Response, where: str, attempts: int, why: str = "") -> HttpError:
        excerpt = self.redactor.text(_excerpt(response))
        phrase = response.reason_phrase or ""
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        more = f", {why}" if why else ""
        if 300 <= response.status_code < 400:
            more += f", redirect to {self.redactor.url(response.headers.get('location', ''))}"
        return HttpError(
            f"{where}: HTTP {response.status_code} {phrase}{tries}{more}; body: {excerpt!r}",
            url=self.redactor.url(response.request.url),
            status=response.status_code,
        )

    @contextmanager
    def _quiet_client_logs(self) -> Iterator[None]:
        """httpx logs each request's full URL (an ``api_key_param`` included): redact those records."""
        flt = _RedactLogs(self.redactor)
        loggers = [logging.getLogger(n) for n in ("httpx", "httpcore")]
        for lg in loggers:
            lg.addFilter(flt)
        try:
            yield
        finally:
            for lg in loggers:
                lg.removeFilter(flt)
