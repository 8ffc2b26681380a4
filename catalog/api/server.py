"""The HTTP server's own limits: what uvicorn must refuse before the application sees a request.

uvicorn's default parser (httptools) takes request headers of any size and waits for them for
ever: a 16 MB header was accepted and 300 half-sent requests stayed open. The application
cannot help, since it sees a request only once its headers are complete. So the hub runs
uvicorn with its own HTTP protocol class, :data:`HttpProtocol`, which adds to uvicorn's:

* **header size** (``api_max_header_bytes``, 16 KiB): request line and headers together;
  more answers ``431 Request Header Fields Too Large`` and closes the connection;
* **header time** (``api_header_timeout_seconds``, 10 s): from the connection's first byte —
  or from its opening, for a client that sends nothing — to the end of the headers, and again
  for each further request on a kept-alive connection; when it passes the server answers
  ``408 Request Timeout`` and closes.

With uvicorn's ``--limit-concurrency`` (``api_limit_concurrency``: 503 beyond that many open
connections and requests per worker) and the application's own limits
(:mod:`catalog.api.limits`: body size and time, query parameters) this bounds what one client
can hold. These refusals happen before a request exists, so they are logged (without the
request) but not audited.

Use it as ``sharehub serve`` does, or with uvicorn's command line::

    uvicorn sharehub.serve:create_app --factory --http sharehub.serve:HttpProtocol \\
        --limit-concurrency 1000 --workers 4

``sharehub.serve.HttpProtocol`` reads its limits from the hub's settings (environment, secrets
file, config file) when the first connection arrives; :func:`protocol_class` makes one with
explicit limits; the classes here use the defaults.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    HAVE_HTTPTOOLS = True
except ImportError:  # pragma: no cover - httptools is installed with uvicorn[standard]
    HAVE_HTTPTOOLS = False

log = logging.getLogger("sharehub.server")


@dataclass(frozen=True)
class ServerLimits:
    """What one connection may take before the application sees a request."""

    max_header_bytes: int = 16_384
    header_timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, s: Any) -> ServerLimits:
        """The limits of the hub's settings (``api_max_header_bytes``, ``api_header_timeout_seconds``)."""
        return cls(max_header_bytes=s.api_max_header_bytes, header_timeout_s=s.api_header_timeout_seconds)


def _response(status: int, reason: str, code: str, message: str, message_zh: str) -> bytes:
    body = json.dumps(
        {"error": {"code": code, "message": message, "message_zh": message_zh}}, ensure_ascii=False
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


_TOO_LARGE = _response(
    431,
    "Request Header Fields Too Large",
    "headers_too_large",
    "the request line and headers are too large",
    "请求行和请求头过大",
)
_TIMEOUT = _response(
    408,
    "Request Timeout",
    "header_timeout",
    "the request headers did not arrive in time",
    "请求头未能及时传完",
)


class _HeadGuard:
    """The shared part: a byte count and a timer while a request's head is being read.

    Subclasses say when a head is being read (:meth:`_reading_head`) and call
    :meth:`_head_started` / :meth:`_head_done` from the parser's events."""

    limits: ClassVar[ServerLimits | None] = None
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    client: tuple[str, int] | None

    def _guard_init(self) -> None:
        lim = type(self).limits
        if lim is None:
            lim = type(self).limits = type(self).load_limits()
        self._limits = lim
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None

    @classmethod
    def load_limits(cls) -> ServerLimits:
        """The limits when the class has none: the defaults (``sharehub.serve`` reads the settings)."""
        return ServerLimits()

    def _reading_head(self) -> bool:
        raise NotImplementedError

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self._limits.header_timeout_s, self._head_timed_out)

    def _head_done(self) -> None:
        self._head_bytes = 0
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._reading_head() and not self.transport.is_closing():
            log.warning(
                "closing a connection whose request headers took over %.0f s", self._limits.header_timeout_s
            )
            self._refuse(_TIMEOUT)

    def _count_head(self, n: int) -> bool:
        """Count ``n`` bytes of a head; False (and the connection refused) once over the limit."""
        self._head_bytes += n
        if self._head_bytes > self._limits.max_header_bytes:
            log.warning("refusing request headers over %d bytes", self._limits.max_header_bytes)
            self._refuse(_TOO_LARGE)
            return False
        return True

    def _refuse(self, response: bytes) -> None:
        self._head_done()
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()


class GuardedH11Protocol(_HeadGuard, H11Protocol):
    """uvicorn's h11 protocol with the header timer (h11 bounds the header size itself)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard_init()
        # h11 refuses (400) a head larger than its max_incomplete_event_size
        self.conn._max_incomplete_event_size = self._limits.max_header_bytes

    def _reading_head(self) -> bool:
        import h11

        return bool(self.conn.their_state is h11.IDLE)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        if self._reading_head():
            self._arm_head_timer()
            # h11 bounds only a head still incomplete; one that arrives whole is measured here
            end = data.find(b"\r\n\r\n")
            if end >= 0 and self._head_bytes + end + 4 > self._limits.max_header_bytes:
                self._refuse(_TOO_LARGE)
                return
            self._head_bytes += len(data) if end < 0 else 0
        super().data_received(data)
        if not self._reading_head():
            self._head_done()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_done()
        super().connection_lost(exc)


if HAVE_HTTPTOOLS:

    class GuardedHttpToolsProtocol(_HeadGuard, HttpToolsProtocol):
        """uvicorn's httptools protocol with a header size limit and the header timer.

        The size is counted twice over: the bytes of a head still open (a client streaming
        a huge header is cut off after the limit, not after 16 MB), and the request line and
        headers as the parser hands them over (a complete head that arrived in one piece)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._guard_init()
            self._in_head = True
            self._parsed_head = 0
            self._refused = False

        def _reading_head(self) -> bool:
            return self._in_head

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_head_timer()

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            if not self._in_head:
                super().data_received(data)
                return
            self._arm_head_timer()
            self._head_bytes += len(data)
            super().data_received(data)  # may end the head (on_headers_complete)
            # a chunk that ends the head may carry the body too: only a head still open counts
            if self._in_head and not self._refused and not self.transport.is_closing():
                self._count_head(0)

        def on_message_begin(self) -> None:
            self._parsed_head = 0
            super().on_message_begin()

        def on_url(self, url: bytes) -> None:
            self._parsed_head += len(url)
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._parsed_head += len(name) + len(value) + 4
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_head = False
            if self._refused or self.transport.is_closing():
                self._refused = True
                return
            if self._parsed_head > self._limits.max_header_bytes:
                log.warning("refusing request headers over %d bytes", self._limits.max_header_bytes)
                self._refused = True
                self._refuse(_TOO_LARGE)
                return
            self._head_done()
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if not self._refused:
                super().on_body(body)

        def on_message_complete(self) -> None:
            if self._refused:
                return
            super().on_message_complete()
            self._in_head = True  # what follows on this connection is the next request's head
            self._head_bytes = 0

        def connection_lost(self, exc: Exception | None) -> None:
            self._head_done()
            super().connection_lost(exc)

    #: the protocol the hub runs: httptools (fast) when installed, else h11
    HttpProtocol: type[asyncio.Protocol] = GuardedHttpToolsProtocol
else:  # pragma: no cover
    HttpProtocol = GuardedH11Protocol


def protocol_class(limits: ServerLimits, *, h11: bool = False) -> type[asyncio.Protocol]:
    """A protocol class with explicit limits (tests, embedding), httptools unless ``h11``."""
    base: type[_HeadGuard] = GuardedH11Protocol if h11 or not HAVE_HTTPTOOLS else GuardedHttpToolsProtocol
    return type(f"{base.__name__}WithLimits", (base,), {"limits": limits})  # type: ignore[return-value]
