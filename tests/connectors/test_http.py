"""The http connector against a real HTTP server on loopback (pytest-httpserver).

Each test serves a small department API whose handler records what it received, so the
assertions are about the requests the hub actually sent (headers, parameters, timing) as well
as the rows it read.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import itertools
import json
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from connectors import open_connector
from connectors.base import ConnectorError
from connectors.conform import conform
from connectors.drift import compare_schema
from connectors.http import (
    HttpConnector,
    HttpError,
    MalformedPage,
    Redactor,
    dig,
    next_link,
    retry_after_seconds,
)

TOKEN = "tok-S3cr3t-9f8e7d"
PASSWORD = "pa55-W0rd-xyz"
ROWS = [
    {"id": i, "name": f"名称{i}", "amount": i * 10, "updated_at": f"2026-11-01T08:{i:02d}:00+08:00"}
    for i in range(1, 24)
]
TARGET = pa.schema(
    [
        pa.field("id", pa.int64()),
        pa.field("name", pa.string()),
        pa.field("amount", pa.int64()),
        pa.field("updated_at", pa.timestamp("us")),
    ]
)
COLUMNS = {f.name: f.name for f in TARGET}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False), status=status, headers=headers, content_type="application/json"
    )


def base_url(server: HTTPServer, userinfo: str = "", path: str = "/api") -> str:
    return f"http://{userinfo + '@' if userinfo else ''}{server.host}:{server.port}{path}"


def read(conn: HttpConnector) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for batch in conn.read_batches():
        out.extend(batch.to_pylist())
    return out


def ids(rows: list[dict[str, Any]]) -> list[int]:
    return [int(r["id"]) for r in rows]


def requests_to(server: HTTPServer, path: str) -> list[Request]:
    return [req for req, _ in server.log if req.path == path]


def paged(rows: list[dict[str, Any]], size: int) -> Callable[[Request], Response]:
    """page/page_size pagination under {"data": {"items": [...]}}."""

    def handle(req: Request) -> Response:
        page = int(req.args["page"])
        n = int(req.args.get("page_size", size))
        return _json({"data": {"items": rows[(page - 1) * n : page * n]}, "page": page})

    return handle


# ---- pagination ------------------------------------------------------------------------------


def test_page_number_pagination_reads_every_row_once_and_stops_at_the_empty_page(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request("/api/licences").respond_with_handler(paged(ROWS, 5))
    conn = HttpConnector(
        base_url(httpserver),
        path="licences",
        params={"dept": "scj", "active": True},
        records="data.items",
        pagination={"style": "page", "size_param": "page_size", "page_size": 5},
        columns=COLUMNS,
    )
    rows = read(conn)
    assert ids(rows) == list(range(1, 24))
    assert [r["_row"] for r in rows] == list(range(1, 24))
    assert {r["_source"] for r in rows} == {"licences"}
    assert rows[0]["name"] == "名称1" and rows[0]["amount"] == "10"  # values as text, like JSON lines
    sent = requests_to(httpserver, "/api/licences")
    assert [r.args["page"] for r in sent] == ["1", "2", "3", "4", "5", "6"]  # 6: the empty page
    assert all(r.args["dept"] == "scj" and r.args["active"] == "true" for r in sent)
    assert conn.pages == 6 and conn.rejects == []


def test_page_numbers_may_start_at_zero(httpserver: HTTPServer) -> None:
    def handle(req: Request) -> Response:
        page = int(req.args["p"])
        return _json(ROWS[page * 10 : page * 10 + 10])

    httpserver.expect_request("/api/x").respond_with_handler(handle)
    conn = HttpConnector(
        base_url(httpserver), path="x", pagination={"style": "page", "page_param": "p", "first_page": 0}
    )
    assert ids(read(conn)) == list(range(1, 24))


def test_offset_pagination_advances_by_what_the_server_sent_when_it_caps_the_limit(
    httpserver: HTTPServer,
) -> None:
    def handle(req: Request) -> Response:
        offset, limit = int(req.args["start"]), min(int(req.args["rows"]), 4)  # the server caps at 4
        return _json({"result": ROWS[offset : offset + limit]})

    httpserver.expect_request("/api/x").respond_with_handler(handle)
    conn = HttpConnector(
        base_url(httpserver),
        path="x",
        records="result",
        pagination={"style": "offset", "offset_param": "start", "limit_param": "rows", "page_size": 10},
    )
    assert ids(read(conn)) == list(range(1, 24))  # nothing skipped, nothing twice
    assert [r.args["start"] for r in requests_to(httpserver, "/api/x")][:3] == ["0", "4", "8"]


def test_cursor_pagination_sends_back_the_body_cursor(httpserver: HTTPServer) -> None:
    def handle(req: Request) -> Response:
        start = int(req.args.get("after", "0"))
        chunk = ROWS[start : start + 7]
        nxt = str(start + 7) if start + 7 < len(ROWS) else None
        return _json({"items": chunk, "meta": {"next_cursor": nxt}})

    httpserver.expect_request("/api/x").respond_with_handler(handle)
    conn = HttpConnector(
        base_url(httpserver),
        path="x",
        records="items",
        pagination={
            "style": "cursor",
            "cursor_param": "after",
            "cursor_path": "meta.next_cursor",
            "size_param": "limit",
            "page_size": 7,
        },
    )
    assert ids(read(conn)) == list(range(1, 24))
    sent = requests_to(httpserver, "/api/x")
    assert ["after" in r.args for r in sent] == [False, True, True, True]
    assert all(r.args["limit"] == "7" for r in sent)


def test_a_cursor_that_repeats_is_a_loop_and_an_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/x").respond_with_json({"items": [{"id": 1}], "next": "same"})
    conn = HttpConnector(
        base_url(httpserver), path="x", records="items", pagination={"style": "cursor", "cursor_path": "next"}
    )
    with pytest.raises(HttpError, match=r"repeats an earlier page"):
        read(conn)


def test_next_link_from_a_body_field_relative(httpserver: HTTPServer) -> None:
    def handle(req: Request) -> Response:
        page = int(req.args.get("pg", "1"))
        nxt = f"x?pg={page + 1}&sig=abc" if page * 10 < len(ROWS) else None
        return _json({"records": ROWS[(page - 1) * 10 : page * 10], "links": {"next": nxt}})

    httpserver.expect_request("/api/x").respond_with_handler(handle)
    conn = HttpConnector(
        base_url(httpserver),
        path="x",
        records="records",
        params={"q": "1"},
        pagination={"style": "next_link", "next_path": "links.next"},
    )
    assert ids(read(conn)) == list(range(1, 24))
    sent = requests_to(httpserver, "/api/x")
    assert [r.query_string.decode() for r in sent] == ["q=1", "pg=2&sig=abc", "pg=3&sig=abc"]


def test_next_link_from_the_link_header(httpserver: HTTPServer) -> None:
    def handle(req: Request) -> Response:
        page = int(req.args.get("page", "1"))
        links = [f'<{base_url(httpserver)}/x?page=1>; rel="first"']
        if page * 9 < len(ROWS):
            links.append(f'<{base_url(httpserver)}/x?page={page + 1}>; rel="next"')
        return _json(ROWS[(page - 1) * 9 : page * 9], headers={"Link": ", ".join(links)})

    httpserver.expect_request("/api/x").respond_with_handler(handle)
    conn = HttpConnector(base_url(httpserver), path="x", pagination={"style": "next_link"})
    assert ids(read(conn)) == list(range(1, 24))
    assert len(requests_to(httpserver, "/api/x")) == 3


def test_link_header_parsing() -> None:
    assert next_link('<https://a/x?p=2>; rel="next", <https://a/x?p=9>; rel="last"') == "https://a/x?p=2"
    assert next_link('<https://a/x?p=9>; rel="last"') is None
    assert next_link("<https://a/x?p=3>; rel=next") == "https://a/x?p=3"
    assert next_link(None) is None


def test_a_next_link_to_another_host_is_refused_before_credentials_go_there(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/x").respond_with_json(
        {"items": [{"id": 1}], "next": "http://evil.example:9/steal"}
    )
    conn = HttpConnector(
        base_url(httpserver, f":{TOKEN}"),
        path="x",
        auth="bearer",
        records="items",
        pagination={"style": "next_link", "next_path": "next"},
    )
    with pytest.raises(HttpError, match="leaves the connection's host") as exc:
        read(conn)
    assert TOKEN not in str(exc.value)
    assert conn.requests == 1


def test_a_server_that_ignores_the_page_parameter_is_an_error_not_an_endless_loop(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request("/api/x").respond_with_json(ROWS[:5])
    conn = HttpConnector(base_url(httpserver), path="x", pagination={"style": "page", "page_size": 5})
    with pytest.raises(
        HttpError, match=r"\(page 2\): the page repeats the one before \(does the API ignore page\?\)"
    ):
        read(conn)


def test_post_sends_the_body_with_pagination_and_the_incremental_start(httpserver: HTTPServer) -> None:
    seen: list[dict[str, Any]] = []

    def handle(req: Request) -> Response:
        body = json.loads(req.data)
        seen.append(body)
        start = body["pageNo"] * 10 - 10
        return _json({"data": ROWS[start : start + 10]})

    httpserver.expect_request("/api/search", method="POST").respond_with_handler(handle)
    conn = HttpConnector(
        base_url(httpserver),
        path="search",
        method="POST",
        body={"region": "330100"},
        records="data",
        pagination={"style": "page", "page_param": "pageNo", "size_param": "pageSize", "page_size": 10},
        cursor="updated_at",
        since_param="updatedSince",
        watermark="2026-11-01T08:00:00+08:00",
    )
    assert ids(read(conn)) == list(range(1, 24))
    assert seen[0] == {
        "region": "330100",
        "updatedSince": "2026-11-01T08:00:00+08:00",
        "pageNo": 1,
        "pageSize": 10,
    }
    assert [b["pageNo"] for b in seen] == [1, 2, 3, 4]


def test_dig_paths() -> None:
    body = {"data": {"items": [1, 2], "pages": [{"x": 5}]}}
    assert dig(body, "") is body
    assert dig(body, "data.items") == [1, 2]
    assert dig(body, "data.pages.0.x") == 5
    with pytest.raises(KeyError, match="list"):
        dig(body, "data.list")


# ---- auth ------------------------------------------------------------------------------------


def _auth_server(server: HTTPServer, check: Callable[[Request], bool]) -> None:
    def handle(req: Request) -> Response:
        if not check(req):
            return _json({"error": "unauthorised"}, status=401)
        return paged(ROWS, 10)(req)

    server.expect_request("/api/x").respond_with_handler(handle)


def _auth_conn(server: HTTPServer, userinfo: str, **kw: Any) -> HttpConnector:
    kw.setdefault("pagination", {"style": "page"})
    return HttpConnector(base_url(server, userinfo), path="x", records="data.items", **kw)


def test_bearer_token_from_the_connection_ref(httpserver: HTTPServer) -> None:
    _auth_server(httpserver, lambda r: r.headers.get("Authorization") == f"Bearer {TOKEN}")
    assert ids(read(_auth_conn(httpserver, f":{TOKEN}", auth="bearer"))) == list(range(1, 24))
    sent = requests_to(httpserver, "/api/x")
    assert len(sent) == 4 and all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in sent)
    assert all(TOKEN not in r.url for r in sent)


def test_api_key_header_with_a_percent_encoded_key(httpserver: HTTPServer) -> None:
    key = "k@y/with:odd+chars"
    _auth_server(httpserver, lambda r: r.headers.get("X-Dept-Key") == key)
    from urllib.parse import quote

    conn = _auth_conn(httpserver, quote(key, safe=""), auth="api_key", api_key_header="X-Dept-Key")
    assert ids(read(conn)) == list(range(1, 24))
    assert "Authorization" not in requests_to(httpserver, "/api/x")[0].headers


def test_api_key_as_a_query_parameter(httpserver: HTTPServer) -> None:
    _auth_server(httpserver, lambda r: r.args.get("appkey") == TOKEN)
    conn = _auth_conn(httpserver, f":{TOKEN}", auth="api_key", api_key_param="appkey")
    assert ids(read(conn)) == list(range(1, 24))
    assert all(r.args["appkey"] == TOKEN for r in requests_to(httpserver, "/api/x"))


def test_basic_auth(httpserver: HTTPServer) -> None:
    expected = "Basic " + base64.b64encode(f"reader:{PASSWORD}".encode()).decode()
    _auth_server(httpserver, lambda r: r.headers.get("Authorization") == expected)
    assert ids(read(_auth_conn(httpserver, f"reader:{PASSWORD}", auth="basic"))) == list(range(1, 24))


def test_no_auth_sends_no_credentials_and_refuses_a_ref_that_has_some(httpserver: HTTPServer) -> None:
    _auth_server(httpserver, lambda r: "Authorization" not in r.headers)
    assert len(read(_auth_conn(httpserver, ""))) == 23
    with pytest.raises(ConnectorError, match="carries credentials but the source's auth is none") as exc:
        _auth_conn(httpserver, f":{TOKEN}")
    assert TOKEN not in str(exc.value)


def test_an_auth_mode_without_its_secret_says_where_it_goes(httpserver: HTTPServer) -> None:
    with pytest.raises(ConnectorError, match=r"auth bearer needs the token in the connection ref's URL"):
        _auth_conn(httpserver, "", auth="bearer")
    with pytest.raises(ConnectorError, match="client_id:client_secret"):
        _auth_conn(httpserver, "only-id", auth="oauth2", token_url="/oauth/token")


class _TokenServer:
    """An OAuth2 client-credentials token endpoint plus a resource that checks the token."""

    def __init__(self, server: HTTPServer, expires_in: float, slow_page: int | None = None) -> None:
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.expires_in = expires_in
        self.slow_page = slow_page
        server.expect_request("/oauth/token", method="POST").respond_with_handler(self.token)
        server.expect_request("/api/x").respond_with_handler(self.resource)

    def token(self, req: Request) -> Response:
        expected = "Basic " + base64.b64encode(f"hub-client:{PASSWORD}".encode()).decode()
        if req.headers.get("Authorization") != expected or req.form.get("grant_type") != "client_credentials":
            return _json({"error": "invalid_client"}, status=401)
        token = f"at-{len(self.issued) + 1}-{TOKEN}"
        self.issued.append(token)
        return _json({"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in})

    def resource(self, req: Request) -> Response:
        auth = req.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.issued or auth[7:] in self.revoked:
            return _json({"error": "invalid_token"}, status=401)
        if self.slow_page is not None and req.args["page"] == str(self.slow_page):
            time.sleep(1.2)
        return paged(ROWS, 5)(req)


def _oauth_conn(server: HTTPServer, **kw: Any) -> HttpConnector:
    return _auth_conn(
        server,
        f"hub-client:{PASSWORD}",
        auth="oauth2",
        token_url="/oauth/token",
        scope="read",
        pagination={"style": "page", "page_size": 5, "size_param": "page_size"},
        **kw,
    )


def test_oauth2_token_is_fetched_once_and_cached(httpserver: HTTPServer) -> None:
    tokens = _TokenServer(httpserver, expires_in=3600)
    assert ids(read(_oauth_conn(httpserver))) == list(range(1, 24))
    assert len(requests_to(httpserver, "/oauth/token")) == 1
    assert requests_to(httpserver, "/oauth/token")[0].form["scope"] == "read"
    assert len(requests_to(httpserver, "/api/x")) == 6
    assert {r.headers["Authorization"] for r in requests_to(httpserver, "/api/x")} == {
        f"Bearer {tokens.issued[0]}"
    }


def test_oauth2_token_is_fetched_again_after_it_expires(httpserver: HTTPServer) -> None:
    tokens = _TokenServer(httpserver, expires_in=1, slow_page=2)  # page 2 takes longer than the token lives
    assert ids(read(_oauth_conn(httpserver))) == list(range(1, 24))
    assert len(tokens.issued) == 2
    used = [r.headers["Authorization"][7:] for r in requests_to(httpserver, "/api/x")]
    assert used[:2] == [tokens.issued[0]] * 2 and set(used[2:]) == {tokens.issued[1]}


def test_oauth2_a_401_fetches_a_new_token_once_then_fails(httpserver: HTTPServer) -> None:
    tokens = _TokenServer(httpserver, expires_in=3600)
    conn = _oauth_conn(httpserver)
    gen = conn.read_batches()
    # revoke the first token behind the hub's back once the read has started
    httpserver.expect_oneshot_request("/api/x", query_string="page=1&page_size=5").respond_with_handler(
        lambda req: tokens.revoked.add(tokens.issued[0]) or tokens.resource(req)  # type: ignore[func-returns-value]
    )
    rows = [r for b in gen for r in b.to_pylist()]
    assert ids(rows) == list(range(1, 24))
    assert len(tokens.issued) == 2  # one refresh after the 401

    httpserver.clear()
    tokens = _TokenServer(httpserver, expires_in=3600)
    tokens.revoked = _AlwaysIn()  # every token is refused: refresh once, then a clear error
    with pytest.raises(HttpError, match=r"HTTP 401") as exc:
        read(_oauth_conn(httpserver))
    assert len(tokens.issued) == 2 and exc.value.status == 401
    assert TOKEN not in str(exc.value) and PASSWORD not in str(exc.value)


class _AlwaysIn(set):  # type: ignore[type-arg]
    def __contains__(self, item: object) -> bool:
        return True


def test_oauth2_token_endpoint_refusal_is_a_clear_error_without_the_secret(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/oauth/token").respond_with_json(
        {"error": "invalid_client", "echo": f"hub-client:{PASSWORD}"}, status=400
    )
    with pytest.raises(HttpError) as exc:
        read(_oauth_conn(httpserver))
    text = str(exc.value)
    assert "POST" in text and "/oauth/token" in text and "HTTP 400" in text and "invalid_client" in text
    assert PASSWORD not in text


# ---- retries, rate limit, errors -------------------------------------------------------------


def test_a_flaky_page_is_retried_and_read_exactly_once(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request("/api/x", query_string="page=2").respond_with_data("boom", status=500)
    httpserver.expect_oneshot_request("/api/x", query_string="page=3").respond_with_data("bad gw", status=502)
    httpserver.expect_request("/api/x").respond_with_handler(paged(ROWS, 10))
    conn = HttpConnector(
        base_url(httpserver), path="x", records="data.items", pagination={"style": "page"}, backoff=0.01
    )
    rows = read(conn)
    assert ids(rows) == list(range(1, 24))  # exact, no duplicates
    assert [r.args["page"] for r in requests_to(httpserver, "/api/x")] == ["1", "2", "2", "3", "3", "4"]
    assert conn.requests == 6


def test_429_honours_retry_after_seconds(httpserver: HTTPServer) -> None:
    stamps: list[float] = []

    def record(resp: Response) -> Callable[[Request], Response]:
        def handle(req: Request) -> Response:
            stamps.append(time.monotonic())
            return resp

        return handle

    httpserver.expect_oneshot_request("/api/x").respond_with_handler(
        record(Response("slow down", status=429, headers={"Retry-After": "0.4"}))
    )
    httpserver.expect_request("/api/x").respond_with_handler(record(_json(ROWS[:3])))
    conn = HttpConnector(base_url(httpserver), path="x", backoff=0.001)
    assert ids(read(conn)) == [1, 2, 3]
    assert len(stamps) == 2 and stamps[1] - stamps[0] >= 0.4 * 0.8  # waited as asked, not the tiny backoff


def test_503_honours_retry_after_as_an_http_date(httpserver: HTTPServer) -> None:
    past = email.utils.format_datetime(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5), usegmt=True)
    httpserver.expect_oneshot_request("/api/x").respond_with_response(
        Response("maintenance", status=503, headers={"Retry-After": past})
    )
    httpserver.expect_request("/api/x").respond_with_json([{"id": 7}])
    assert ids(read(HttpConnector(base_url(httpserver), path="x"))) == [7]


def test_retry_after_parsing() -> None:
    now = dt.datetime(2026, 11, 1, 8, 0, 0, tzinfo=dt.UTC)
    assert retry_after_seconds("120") == 120
    assert retry_after_seconds("0.25") == 0.25
    assert retry_after_seconds("Sun, 01 Nov 2026 08:00:30 GMT", now=now) == 30
    assert retry_after_seconds("Sun, 01 Nov 2026 07:00:00 GMT", now=now) == 0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
    assert retry_after_seconds("-3") == 0


def test_a_retry_after_beyond_max_wait_fails_loudly(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/x").respond_with_response(
        Response("quota", status=429, headers={"Retry-After": "3600"})
    )
    with pytest.raises(HttpError, match=r"HTTP 429 .*asks to retry after 3600s"):
        read(HttpConnector(base_url(httpserver), path="x", max_wait=5))
    assert len(requests_to(httpserver, "/api/x")) == 1


def test_a_permanent_5xx_names_the_url_without_secrets_the_status_and_the_body(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    # an earlier test in this process may have loaded Airflow's logging config, which sets httpx's
    # logger to WARNING (and can disable existing loggers): httpx's request lines must really be
    # emitted here, so that their redaction is tested
    for name in ("httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
        monkeypatch.setattr(logging.getLogger(name), "disabled", False)
        monkeypatch.setattr(logging.getLogger(name), "propagate", True)
    # the server echoes the key in its error page, as some gateways do
    httpserver.expect_request("/api/x").respond_with_data(
        f"<html>Internal error for appkey={TOKEN}: upstream DB down</html>" + "x" * 500, status=500
    )
    conn = HttpConnector(
        base_url(httpserver, f":{TOKEN}", path=f"/api?tenant=T-{PASSWORD}"),
        path="x",
        auth="api_key",
        api_key_param="appkey",
        params={"q": "open"},
        max_retries=2,
        backoff=0.01,
    )
    with pytest.raises(HttpError) as exc:
        read(conn)
    err = exc.value
    text = str(err)
    assert err.status == 500 and len(requests_to(httpserver, "/api/x")) == 3
    assert text.startswith(f"GET http://{httpserver.host}:{httpserver.port}/api/x?")
    assert "q=open" in text and "appkey=***" in text and "tenant=***" in text
    assert "HTTP 500 INTERNAL SERVER ERROR after 3 attempts" in text
    assert "upstream DB down" in text and len(text) < 600
    # the hub's logs (its own and httpx's request lines); werkzeug's are the test server's
    hub_logs = [r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug")]
    assert any(r.name == "httpx" and "/api/x?" in r.getMessage() for r in caplog.records)
    everything = json.dumps([text, repr(err), err.url, err.args, hub_logs], ensure_ascii=False)
    assert TOKEN not in everything and PASSWORD not in everything
    assert any("retry 1" in m for m in hub_logs)  # the retries were logged (redacted)


def test_a_4xx_is_not_retried(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/x").respond_with_json({"error": "no such dataset"}, status=404)
    with pytest.raises(HttpError, match=r"\(page 1\): HTTP 404 NOT FOUND; body: .*no such dataset"):
        read(HttpConnector(base_url(httpserver), path="x"))
    assert len(requests_to(httpserver, "/api/x")) == 1


def test_a_connection_error_is_retried_then_reported_without_credentials() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once closed
    conn = HttpConnector(
        f"http://u:{PASSWORD}@127.0.0.1:{port}/api",
        path="x",
        auth="basic",
        max_retries=2,
        backoff=0.01,
        timeout=2,
    )
    with pytest.raises(HttpError, match=r"ConnectError.*after 3 attempts") as exc:
        read(conn)
    assert exc.value.status is None and PASSWORD not in str(exc.value)
    assert conn.requests == 3


def test_the_rate_limit_spaces_requests(httpserver: HTTPServer) -> None:
    stamps: list[float] = []

    def handle(req: Request) -> Response:
        stamps.append(time.monotonic())
        return paged(ROWS, 3)(req)

    httpserver.expect_request("/api/x").respond_with_handler(handle)
    conn = HttpConnector(
        base_url(httpserver),
        path="x",
        records="data.items",
        pagination={"style": "page", "size_param": "page_size", "page_size": 3},
        max_rps=20,
    )
    assert ids(read(conn)) == list(range(1, 24))
    assert len(stamps) == 9
    # arrival times jitter with connection set-up, so only the overall pace is asserted
    gaps = sorted(b - a for a, b in itertools.pairwise(stamps))
    assert stamps[-1] - stamps[0] >= 8 * 0.05 * 0.8, gaps
    assert gaps[len(gaps) // 2] >= 0.05 * 0.8, gaps


def test_redactor_masks_user_secret_params_and_known_values() -> None:
    r = Redactor(["abc123"], {"tenant"})
    assert (
        r.url("https://u:abc123@h/p?tenant=9&q=1&access_token=zz")
        == "https://h/p?tenant=***&q=1&access_token=***"
    )
    assert r.text("key abc123 and abc123") == "key *** and ***"


# ---- malformed pages and schema --------------------------------------------------------------


def test_a_page_that_is_not_json_names_the_url_and_the_page(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/x", query_string="page=2").respond_with_data(
        "<html>502 proxy error</html>", content_type="text/html"
    )
    httpserver.expect_request("/api/x").respond_with_handler(paged(ROWS, 10))
    conn = HttpConnector(base_url(httpserver), path="x", records="data.items", pagination={"style": "page"})
    gen = conn.read_batches()
    with pytest.raises(MalformedPage) as exc:
        list(gen)
    text = str(exc.value)
    assert "/api/x?page=2 (page 2): the body is not JSON" in text
    assert "text/html" in text and "502 proxy error" in text


def test_a_records_path_that_is_not_a_list_or_missing(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/a").respond_with_json({"data": {"items": {"id": 1}}})
    httpserver.expect_request("/api/b").respond_with_json({"error": "quota"})
    with pytest.raises(
        MalformedPage, match=r"/api/a \(page 1\): the records path 'data.items' holds dict, not a list"
    ):
        read(HttpConnector(base_url(httpserver), path="a", records="data.items"))
    with pytest.raises(
        MalformedPage, match=r"the records path 'data.items' is not in the body \(no 'data'\)"
    ):
        read(HttpConnector(base_url(httpserver), path="b", records="data.items"))


def test_a_record_that_is_not_an_object_is_a_read_reject(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/x").respond_with_json([{"id": 1}, "oops", {"id": 3}])
    conn = HttpConnector(base_url(httpserver), path="x", columns={"id": "id"})
    rows = read(conn)
    assert [(r["id"], r["_row"]) for r in rows] == [("1", 1), ("3", 3)]
    (rj,) = conn.rejects
    assert (rj.source, rj.row, rj.field, rj.kind) == ("x", 2, None, "read")
    assert "page 1, record 2: not a JSON object" in rj.reason


def test_a_changed_schema_behaves_as_for_json_lines(httpserver: HTTPServer) -> None:
    """A new field goes to _extra and is drift; a declared field no record has is a missing_column
    reject; a changed type is a cast reject per value (JSON values arrive as text, like JSON lines)."""
    changed = [
        {"id": i, "name": f"n{i}", "amount": "lots" if i == 2 else i, "region": "杭州"} for i in (1, 2, 3)
    ]
    httpserver.expect_request("/api/x").respond_with_json(changed)
    conn = HttpConnector(base_url(httpserver), path="x", columns=COLUMNS)
    batches = list(conn.read_batches())
    assert len(batches) == 1
    drift = compare_schema([n for n in batches[0].schema.names if not n.startswith("_")], TARGET)
    assert drift.added == ["region"] and drift.missing == ["updated_at"] and drift.retyped == []
    (missing,) = conn.rejects
    assert (missing.kind, missing.field, missing.row) == ("missing_column", "updated_at", 0)
    assert "declared column updated_at (field updated_at) is in none of the records" in missing.reason
    out = conform(batches[0], TARGET)
    assert out.batch.column("amount").to_pylist() == [1, None, 3]
    assert [(r.row, r.field, r.value) for r in out.rejects] == [(2, "amount", "lots")]
    assert json.loads(out.batch.column("_extra")[0].as_py()) == {"region": "杭州"}


def test_an_empty_incremental_read_reports_no_missing_columns(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/x").respond_with_json([])
    conn = HttpConnector(
        base_url(httpserver),
        path="x",
        columns=COLUMNS,
        cursor="updated_at",
        since_param="since",
        watermark="2026-11-01T08:00:00",
    )
    assert read(conn) == [] and conn.rejects == [] and conn.new_watermark is None


# ---- incremental -----------------------------------------------------------------------------


def _incremental_api(server: HTTPServer, data: list[dict[str, Any]]) -> list[str | None]:
    """Serves the records with updated_at >= since (an inclusive start, as the hub requires)."""
    sinces: list[str | None] = []

    def handle(req: Request) -> Response:
        since = req.args.get("updated_since")
        sinces.append(since)
        page = int(req.args["page"])
        chosen = [
            r
            for r in data
            if since is None or dt.datetime.fromisoformat(r["updated_at"]) >= dt.datetime.fromisoformat(since)
        ]
        return _json({"items": chosen[(page - 1) * 10 : page * 10]})

    server.expect_request("/api/x").respond_with_handler(handle)
    return sinces


def _incremental(server: HTTPServer, watermark: Any) -> HttpConnector:
    return HttpConnector(
        base_url(server),
        path="x",
        records="items",
        pagination={"style": "page"},
        cursor="updated_at",
        since_param="updated_since",
        watermark=watermark,
        lookback=dt.timedelta(minutes=5),
    )


def test_incremental_cursor_with_closed_start_and_lookback_across_two_runs(httpserver: HTTPServer) -> None:
    data = [dict(r) for r in ROWS]
    data[4]["updated_at"] = (
        "2026-11-01T00:59:00Z"  # the same instant as 08:59+08:00 but written in UTC: the max
    )
    sinces = _incremental_api(httpserver, data)
    first = _incremental(httpserver, None)
    assert ids(read(first)) == list(range(1, 24))
    assert set(sinces) == {None}
    assert first.new_watermark == "2026-11-01T00:59:00Z"  # compared as times, not as text

    # run 2: two rows changed since (one at the watermark's instant, one late inside the lookback)
    data[9]["updated_at"] = "2026-11-01T08:56:00+08:00"
    data[10]["updated_at"] = "2026-11-01T09:30:00+08:00"
    sinces.clear()
    second = _incremental(httpserver, first.new_watermark)
    rows = read(second)
    assert set(sinces) == {"2026-11-01T00:54:00+00:00"}  # watermark - 5 min, closed start
    assert sorted(ids(rows)) == [5, 10, 11]  # 5 (the watermark itself) is read again; 23 (08:23) is not
    assert second.new_watermark == "2026-11-01T09:30:00+08:00"


def test_lookback_needs_a_time_watermark(httpserver: HTTPServer) -> None:
    conn = _incremental(httpserver, 42)
    with pytest.raises(ConnectorError, match="lookback needs a date/time watermark"):
        read(conn)


# ---- the registry and the directory ----------------------------------------------------------


def test_http_is_a_registered_kind_built_from_its_source_model(httpserver: HTTPServer) -> None:
    from catalog.directory.sources import source_model

    httpserver.expect_request("/api/v1/licences").respond_with_handler(paged(ROWS, 10))
    spec = source_model("http").model_validate(
        {
            "kind": "http",
            "connection": "scj_api",
            "path": "v1/licences",
            "records": "data.items",
            "auth": "bearer",
            "pagination": {"style": "page"},
            "cursor": "updated_at",
            "since_param": "updated_since",
            "lookback": "1h",
            "max_rps": 50,
        }
    )

    class Ctx:
        location = base_url(httpserver, f":{TOKEN}")
        full = False
        batch_size = 7
        columns = COLUMNS

        def watermark(self) -> Any:
            return "2026-11-01T08:00:00+08:00"

    conn = open_connector("http", **spec.connector_options(Ctx()))  # type: ignore[arg-type]
    batches = list(conn.read_batches())
    assert [b.num_rows for b in batches] == [7, 7, 7, 2]
    sent = requests_to(httpserver, "/api/v1/licences")
    assert sent[0].args["updated_since"] == "2026-11-01T07:00:00+08:00"
    assert spec.typed is False and spec.matches_columns is True and spec.incremental is True


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"pagination": {"style": "offset"}}, "offset pagination needs page_size"),
        ({"pagination": {"style": "page", "cursor_path": "x"}}, "style page does not take cursor_path"),
        ({"cursor": "updated_at"}, "needs both cursor and since_param"),
        ({"auth": "oauth2"}, "auth oauth2 needs token_url"),
        (
            {"auth": "oauth2", "token_url": "https://id:pw@idp/token"},
            "credentials belong in the connection ref",
        ),
        ({"path": "https://other/x"}, "not a URL"),
        ({"body": {"a": 1}}, "body is for method POST"),
        ({"lookback": "5 minutes"}, "must look like 30m"),
        ({"table": "t"}, "Extra inputs are not permitted"),
    ],
)
def test_the_source_model_refuses_bad_specs(source: dict[str, Any], message: str) -> None:
    from pydantic import ValidationError

    from catalog.directory.sources import source_model

    with pytest.raises(ValidationError, match=message):
        source_model("http").model_validate({"kind": "http", "connection": "c", **source})


def test_redactor_leaves_short_values_in_text_but_not_in_urls() -> None:
    r = Redactor(["abc"], {"v"})
    r.add("json", min_length=8)
    assert r.text("page abc of json") == "page abc of json"
    assert r.url("https://abc:x@h/p?v=abc&format=json") == "https://h/p?v=***&format=json"


def test_connection_parameters_go_with_every_request_and_a_flaky_post_is_resent_whole(
    httpserver: HTTPServer,
) -> None:
    bodies: list[dict[str, Any]] = []

    def handle(req: Request) -> Response:
        body = json.loads(req.data)
        bodies.append(body)
        if len(bodies) == 2:
            return Response("overloaded", status=503)
        start = (body["page"] - 1) * 10
        return _json({"rows": ROWS[start : start + 10]})

    httpserver.expect_request("/api/q", method="POST").respond_with_handler(handle)
    conn = HttpConnector(
        base_url(httpserver, path="/api?appid=hub-01&sign=0123456789abcdef"),
        path="q",
        method="POST",
        body={"filter": {"region": "330100"}},
        records="rows",
        pagination={"style": "page"},
        backoff=0.01,
    )
    assert ids(read(conn)) == list(range(1, 24))
    sent = requests_to(httpserver, "/api/q")
    assert all(r.args["appid"] == "hub-01" and r.args["sign"] == "0123456789abcdef" for r in sent)
    assert bodies[1] == bodies[2] == {"filter": {"region": "330100"}, "page": 2}  # the retry resent the body
    assert [b["page"] for b in bodies] == [1, 2, 2, 3, 4]
