"""Request limits the application enforces itself, whatever server runs it.

* **Body size** (``api_max_body_bytes``, 1 MiB): a declared ``Content-Length`` above it is
  refused before anything is read; a chunked body is counted as it arrives and refused when it
  passes the limit. 413 ``body_too_large``.
* **Body time** (``api_body_timeout_seconds``, 30 s): the whole body must arrive within it
  (a client dripping one byte at a time holds a worker otherwise). 408 ``body_timeout``.
* **Query parameters** (``api_max_query_params``, 50): counted on the raw query string
  before anything parses it (parsing thousands of unknown parameters first made one call
  cost a noticeable share of a worker). 400 ``too_many_parameters``.
* **NUL characters** in the path or the query: no identifier, code or key holds one, and
  PostgreSQL text cannot store one (the lookup would fail with a 500). 400 ``nul_character``.

The server-level limits — header size, time to send the headers, open connections — are in
:mod:`catalog.api.server`, because an application sees a request only once its headers are in.

Every refusal is audited like any other call (this middleware runs inside the audit middleware).
"""

from __future__ import annotations

import time
from typing import Any

import anyio
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalog.api.status import status_of
from catalog.errors import HubError, error_body


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a body passes the limit (FastAPI re-raises HTTPExceptions
    it meets while reading a body, so the app's handler answers 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"the body is larger than {limit} bytes")
        self.limit = limit


class BodyTimeout(HTTPException):
    """Raised from ``receive`` when the body did not arrive in time."""

    def __init__(self, seconds: float) -> None:
        super().__init__(status_code=408, detail=f"the body did not arrive within {seconds:g} s")


class LimitsMiddleware:
    """Body size and time, number of query parameters (plain ASGI, HTTP only)."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, body_timeout_s: float, max_query_params: int
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.body_timeout = body_timeout_s
        self.max_params = max_query_params

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query: bytes = scope.get("query_string", b"")
        if "\x00" in scope["path"] or b"\x00" in query or b"%00" in query:
            # no identifier, code or key holds a NUL, and PostgreSQL text cannot store one
            await _refuse(scope, receive, send, HubError("nul_character"))
            return
        if query and query.count(b"&") + query.count(b";") + 1 > self.max_params:
            await _refuse(scope, receive, send, HubError("too_many_parameters", limit=self.max_params))
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await _refuse(scope, receive, send, HubError("body_too_large", limit=self.max_body))
            return
        await self.app(scope, self._guarded(receive), send)

    def _guarded(self, receive: Receive) -> Receive:
        state: dict[str, Any] = {"read": 0, "done": False, "deadline": None}

        async def guarded() -> Message:
            if state["done"]:
                return await receive()  # after the body: waiting for a disconnect, unbounded
            if state["deadline"] is None:
                state["deadline"] = time.monotonic() + self.body_timeout
            remaining = state["deadline"] - time.monotonic()
            if remaining <= 0:
                raise BodyTimeout(self.body_timeout)
            try:
                with anyio.fail_after(remaining):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(self.body_timeout) from None
            if message["type"] == "http.request":
                state["read"] += len(message.get("body", b""))
                if state["read"] > self.max_body:
                    raise BodyTooLarge(self.max_body)
                if not message.get("more_body", False):
                    state["done"] = True
            else:
                state["done"] = True
            return message

        return guarded


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(scope: Scope, receive: Receive, send: Send, err: HubError) -> None:
    call = scope.get("state", {}).get("call")
    if call is not None:
        call.reason = err.code
    response = JSONResponse(
        status_code=status_of(err), content=error_body(err), headers={"Connection": "close"}
    )
    await response(scope, receive, send)
