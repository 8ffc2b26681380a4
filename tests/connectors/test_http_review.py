"""Adversarial review of the http connector (issue 16): a hostile or buggy department API.

Each test is a way a page could be read wrongly while the run reports success (garbled text,
lost digits, a poisoned watermark, records behind an empty page), or a way a secret could
leave in a message, or a body that exhausts the worker's memory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from connectors.http import HttpConnector, HttpError, MalformedPage

TOKEN = "tok-S3cr3t-9f8e7d"
SECRET = "cl1ent-S3cret-4b2a"


def base_url(server: HTTPServer, userinfo: str = "") -> str:
    return f"http://{userinfo + '@' if userinfo else ''}{server.host}:{server.port}/api"


def read(conn: HttpConnector) -> list[dict[str, Any]]:
    return [r for b in conn.read_batches() for r in b.to_pylist()]


def raw(server: HTTPServer, body: bytes, content_type: str = "application/json") -> None:
    server.expect_request("/api/x").respond_with_response(
        Response(body, status=200, headers={"Content-Type": content_type})
    )


# ---- text encoding -------------------------------------------------------------------------------


def test_a_gbk_body_without_a_charset_is_refused_not_garbled(httpserver: HTTPServer) -> None:
    raw(httpserver, json.dumps([{"id": 1, "name": "张三"}], ensure_ascii=False).encode("gbk"))
    with pytest.raises(MalformedPage, match="not JSON"):
        read(HttpConnector(base_url(httpserver), path="x"))


def test_a_gbk_body_labelled_utf8_is_refused_not_garbled(httpserver: HTTPServer) -> None:
    raw(
        httpserver,
        json.dumps([{"id": 1, "name": "张三"}], ensure_ascii=False).encode("gbk"),
        "application/json; charset=utf-8",
    )
    with pytest.raises(MalformedPage, match="not JSON"):
        read(HttpConnector(base_url(httpserver), path="x"))


def test_a_declared_gbk_charset_is_honoured(httpserver: HTTPServer) -> None:
    raw(
        httpserver,
        json.dumps([{"id": 1, "name": "张三"}], ensure_ascii=False).encode("gbk"),
        "application/json; charset=GBK",
    )
    assert read(HttpConnector(base_url(httpserver), path="x"))[0]["name"] == "张三"


def test_a_utf8_bom_is_read_as_utf8(httpserver: HTTPServer) -> None:
    raw(httpserver, b"\xef\xbb\xbf" + json.dumps([{"id": 1, "name": "张三"}], ensure_ascii=False).encode())
    assert read(HttpConnector(base_url(httpserver), path="x"))[0]["name"] == "张三"


# ---- JSON values ---------------------------------------------------------------------------------


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_not_json_and_fail_the_page(httpserver: HTTPServer, literal: str) -> None:
    raw(httpserver, f'[{{"id": 1, "amount": {literal}}}]'.encode())
    with pytest.raises(MalformedPage, match="not JSON"):
        read(HttpConnector(base_url(httpserver), path="x"))


def test_an_infinite_cursor_cannot_poison_the_watermark(httpserver: HTTPServer) -> None:
    raw(httpserver, b'[{"id": 1, "seq": 5}, {"id": 2, "seq": Infinity}]')
    conn = HttpConnector(base_url(httpserver), path="x", cursor="seq", since_param="after", watermark=0)
    with pytest.raises(MalformedPage):
        read(conn)


def test_decimals_keep_every_digit(httpserver: HTTPServer) -> None:
    raw(httpserver, b'[{"id": 1, "amount": 12345678901234567.89, "rate": 0.1000000000000000055511}]')
    row = read(HttpConnector(base_url(httpserver), path="x"))[0]
    assert row["amount"] == "12345678901234567.89"
    assert row["rate"] == "0.1000000000000000055511"


def test_a_number_beyond_float_range_is_kept_as_written_not_made_infinite(httpserver: HTTPServer) -> None:
    raw(httpserver, b'[{"id": 1, "amount": 1e400}]')
    assert read(HttpConnector(base_url(httpserver), path="x"))[0]["amount"] == "1E+400"


def test_nested_values_keep_their_json_text_and_digits(httpserver: HTTPServer) -> None:
    nested = '{"城市": "杭州", "lat": 30.27415000000000000001, "tags": [1, true, null]}'
    raw(httpserver, f'[{{"id": 1, "addr": {nested}}}]'.encode())
    row = read(HttpConnector(base_url(httpserver), path="x"))[0]
    assert row["addr"] == nested


def test_big_integers_keep_every_digit(httpserver: HTTPServer) -> None:
    raw(httpserver, b'[{"id": 123456789012345678901234567890}]')
    assert read(HttpConnector(base_url(httpserver), path="x"))[0]["id"] == "123456789012345678901234567890"


def test_decimal_cursor_values_are_compared_as_numbers(httpserver: HTTPServer) -> None:
    raw(httpserver, b'[{"id": 1, "seq": 2.5}, {"id": 2, "seq": 10.25}, {"id": 3, "seq": 3}]')
    conn = HttpConnector(base_url(httpserver), path="x", cursor="seq", since_param="after", watermark=0)
    read(conn)
    assert str(conn.new_watermark) == "10.25"


def test_a_duplicate_key_in_a_record_fails_the_page(httpserver: HTTPServer) -> None:
    raw(httpserver, b'[{"id": 1, "name": "a", "name": "b"}]')
    with pytest.raises(MalformedPage, match="duplicate key 'name'"):
        read(HttpConnector(base_url(httpserver), path="x"))


# ---- pagination ----------------------------------------------------------------------------------


def test_an_empty_cursor_page_that_names_a_next_cursor_is_followed(httpserver: HTTPServer) -> None:
    pages = {"": ([{"id": 1}], "c2"), "c2": ([], "c3"), "c3": ([{"id": 2}], None)}

    def handle(req: Request) -> Response:
        items, nxt = pages[req.args.get("cursor", "")]
        return Response(json.dumps({"items": items, "next": nxt}), content_type="application/json")

    httpserver.expect_request("/api/x").respond_with_handler(handle)
    conn = HttpConnector(
        base_url(httpserver), path="x", records="items", pagination={"style": "cursor", "cursor_path": "next"}
    )
    assert [r["id"] for r in read(conn)] == ["1", "2"]


def test_an_empty_last_cursor_page_that_repeats_the_cursor_ends_the_read(httpserver: HTTPServer) -> None:
    def handle(req: Request) -> Response:
        cur = req.args.get("cursor")
        items = [{"id": 1}] if cur is None else []
        return Response(json.dumps({"items": items, "next": "c2"}), content_type="application/json")

    httpserver.expect_request("/api/x").respond_with_handler(handle)
    conn = HttpConnector(
        base_url(httpserver), path="x", records="items", pagination={"style": "cursor", "cursor_path": "next"}
    )
    assert [r["id"] for r in read(conn)] == ["1"]


def test_an_empty_next_link_page_that_names_a_next_link_is_followed(httpserver: HTTPServer) -> None:
    pages = {"1": ([{"id": 1}], "x?p=2"), "2": ([], "x?p=3"), "3": ([{"id": 2}], None)}

    def handle(req: Request) -> Response:
        items, nxt = pages[req.args.get("p", "1")]
        return Response(json.dumps({"items": items, "next": nxt}), content_type="application/json")

    httpserver.expect_request("/api/x").respond_with_handler(handle)
    conn = HttpConnector(
        base_url(httpserver),
        path="x",
        records="items",
        pagination={"style": "next_link", "next_path": "next"},
    )
    assert [r["id"] for r in read(conn)] == ["1", "2"]


# ---- memory --------------------------------------------------------------------------------------


def test_a_body_that_never_ends_is_cut_off(httpserver: HTTPServer) -> None:
    def endless() -> Iterator[bytes]:
        yield b'[{"id": "'
        chunk = b"x" * 65536
        for _ in range(1 << 20):  # 64 GiB: the hub must stop long before
            yield chunk

    httpserver.expect_request("/api/x").respond_with_response(
        Response(endless(), status=200, content_type="application/json")
    )
    conn = HttpConnector(base_url(httpserver), path="x", max_page_bytes=1 << 20)
    with pytest.raises(HttpError, match="larger than max_page_bytes"):
        read(conn)


# ---- secrets -------------------------------------------------------------------------------------


def test_a_token_answer_with_a_bad_expires_in_does_not_leak_the_token(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/oauth/token").respond_with_json({"access_token": TOKEN, "expires_in": "soon"})
    conn = HttpConnector(
        base_url(httpserver, f"hub-client:{SECRET}"), path="x", auth="oauth2", token_url="/oauth/token"
    )
    with pytest.raises(HttpError) as exc:
        read(conn)
    assert TOKEN not in str(exc.value) and SECRET not in str(exc.value)


def test_a_form_encoded_token_answer_is_not_quoted_in_the_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/oauth/token").respond_with_data(
        f"access_token={TOKEN}&token_type=bearer", content_type="application/x-www-form-urlencoded"
    )
    conn = HttpConnector(
        base_url(httpserver, f"hub-client:{SECRET}"), path="x", auth="oauth2", token_url="/oauth/token"
    )
    with pytest.raises(HttpError, match="no access_token") as exc:
        read(conn)
    assert TOKEN not in str(exc.value)


def test_an_echoed_oauth2_basic_header_is_masked(httpserver: HTTPServer) -> None:
    import base64

    basic = base64.b64encode(f"hub-client:{SECRET}".encode()).decode()
    httpserver.expect_request("/oauth/token").respond_with_json(
        {"error": "invalid_client", "got": f"Basic {basic}"}, status=400
    )
    conn = HttpConnector(
        base_url(httpserver, f"hub-client:{SECRET}"), path="x", auth="oauth2", token_url="/oauth/token"
    )
    with pytest.raises(HttpError) as exc:
        read(conn)
    assert basic not in str(exc.value)
