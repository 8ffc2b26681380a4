"""The server's own limits and its access log, on a real uvicorn listening on loopback.

Disclosure findings (docs/security.md): finding 9 (a 16 MB header accepted, 300 half-sent
requests kept open) and finding 10 (citizen IDs in the access log). Each test runs the API
under uvicorn with the hub's protocol class (:mod:`catalog.api.server`), both the httptools
and the h11 variant, and talks to it over real sockets.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from catalog.api.server import HAVE_HTTPTOOLS, ServerLimits, protocol_class
from tests.catalog.api_hub import CITIZENS, ApiHub
from tests.catalog.conftest import ApiHubFactory
from tests.paths import REPO

KINDS = ["httptools", "h11"] if HAVE_HTTPTOOLS else ["h11"]
LIMITS = ServerLimits(max_header_bytes=8192, header_timeout_s=1.0)


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=KINDS)
def served(
    request: pytest.FixtureRequest, make_api_hub: ApiHubFactory
) -> Iterator[tuple[ApiHub, str, Captured]]:
    """The API under uvicorn in a thread: (hub, base URL, the access log as formatted)."""
    hub = make_api_hub()
    access = logging.getLogger("uvicorn.access")
    captured = Captured()
    access.addHandler(captured)
    access.setLevel(logging.INFO)
    port = _free_port()
    config = uvicorn.Config(
        hub.client.app,
        host="127.0.0.1",
        port=port,
        http=protocol_class(LIMITS, h11=request.param == "h11"),
        log_config=None,
        access_log=True,
        limit_concurrency=200,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield hub, f"http://127.0.0.1:{port}", captured
    finally:
        server.should_exit = True
        thread.join(10)
        access.removeHandler(captured)


def _raw(base: str, data: bytes, *, wait: float = 5.0) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            out += chunk
        return out


def test_oversized_headers_are_refused(served: tuple[ApiHub, str, Captured]) -> None:
    _hub, base, _log = served
    assert httpx.get(f"{base}/api/v1/ping", headers={"X-Pad": "a" * 4000}).status_code == 200
    # a whole head over the limit, arriving in one piece
    reply = _raw(base, b"GET /api/v1/ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 431"), reply[:200]
    # many small headers add up the same way
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 90) for i in range(100))
    reply = _raw(base, b"GET /api/v1/ping HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert reply.startswith(b"HTTP/1.1 431"), reply[:200]
    # sent in pieces, as a real client would stream 16 MB: refused after the first few KB
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"GET /api/v1/ping HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        try:
            while sent < 16 * 1024 * 1024:
                s.sendall(b"a" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = b""
        try:
            while chunk := s.recv(65536):
                reply += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    assert sent < 16 * 1024 * 1024, "the server read all 16 MB of a header"
    assert reply == b"" or reply.split(b" ")[1] in (b"431", b"400"), reply[:200]


def test_half_sent_requests_are_closed_after_the_header_timeout(served: tuple[ApiHub, str, Captured]) -> None:
    _hub, base, _log = served
    host, port = base.removeprefix("http://").split(":")
    socks = []
    for i in range(60):
        s = socket.create_connection((host, int(port)), timeout=10)
        if i % 3:  # some send part of a head, some nothing at all
            s.sendall(b"GET /api/v1/ping HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        socks.append(s)
    started = time.monotonic()
    closed = 0
    for s in socks:
        try:
            data = s.recv(4096)  # blocks until the server answers 408 and closes (or times out: 10 s)
            closed += data == b"" or data.startswith(b"HTTP/1.1 408")
        except TimeoutError:
            pass
        finally:
            s.close()
    assert closed == 60
    assert time.monotonic() - started < 9  # the 1 s limit, not the client's 10 s socket timeout
    # the server still serves
    assert httpx.get(f"{base}/api/v1/ping").status_code == 200


def test_kept_alive_connection_serves_several_requests(served: tuple[ApiHub, str, Captured]) -> None:
    _hub, base, _log = served
    with httpx.Client() as client:
        for _ in range(5):
            assert client.get(f"{base}/api/v1/ping").status_code == 200
        r = client.post(f"{base}/api/v1/verify", json={"qr": "SH1.a.b.c"})
        assert r.status_code == 200
        assert client.get(f"{base}/api/v1/ping").status_code == 200


def test_access_log_carries_no_subject(served: tuple[ApiHub, str, Captured]) -> None:
    hub, base, log = served
    h = hub.as_app("企业开办")
    cid = CITIZENS[1]
    httpx.get(f"{base}/api/v1/subjects/{cid}", headers=h)
    httpx.get(f"{base}/api/v1/datasets/RSJ-PEN/records", params={"subject": cid, "limit": 5}, headers=h)
    httpx.get(
        f"{base}/api/v1/datasets/RSJ-PEN/records", params={"person_id": cid, "month": "2026-10"}, headers=h
    )
    deadline = time.monotonic() + 5
    while len(log.lines) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    text = "\n".join(log.lines)
    assert len(log.lines) >= 3, text
    assert cid not in text and cid[:6] + "19" not in text
    assert "/api/v1/subjects/*" in text and "subject=*&limit=*" in text and "person_id=*&month=*" in text
    # the audit log, where it belongs, has it
    assert hub.last_audit()["subject"] is None or cid in str(hub.last_audit())


@pytest.mark.slow
def test_sharehub_serve_runs_with_the_limits(tmp_path: Path) -> None:
    """`sharehub serve` itself: the protocol class and the settings reach uvicorn."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHAREHUB_")}
    env |= {
        "SHAREHUB_VAR_DIR": str(tmp_path / "var"),
        "SHAREHUB_SECRETS_FILE": str(tmp_path / "none.toml"),
        "SHAREHUB_CONFIG_FILE": str(tmp_path / "none.toml"),
        "SHAREHUB_API_MAX_HEADER_BYTES": "4096",
        "SHAREHUB_API_HEADER_TIMEOUT_SECONDS": "1",
    }
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sharehub.cli", "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/v1/ping", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        reply = _raw(base, b"GET /api/v1/ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 6000 + b"\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 431"), reply[:200]
        started = time.monotonic()
        assert _raw(base, b"GET /api/v1/ping HTTP/1.1\r\n", wait=10).startswith(b"HTTP/1.1 408")
        assert time.monotonic() - started < 5
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
