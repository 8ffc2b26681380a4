"""Signing in and out, sessions, CSRF, language, refusals: as a hostile visitor would try them."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from catalog.access import staff
from catalog.db import tables
from catalog.portal import sessions
from tests.catalog.api_hub import PASSWORD
from tests.catalog.portal.conftest import csrf_of


def _audit_rows(engine: sa.Engine, path_prefix: str) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(tables.audit)
            .where(tables.audit.c.path.startswith(path_prefix))
            .order_by(tables.audit.c.seq)
        ).all()
    return [dict(r._mapping) for r in rows]


def test_cookies_are_httponly_samesite_and_scoped_to_the_portal(portal_hub) -> None:
    client = TestClient(portal_hub.client.app)
    r = client.get("/portal/login")
    csrf_cookie = r.headers["set-cookie"]
    assert "HttpOnly" in csrf_cookie and "SameSite=strict" in csrf_cookie and "Path=/portal" in csrf_cookie
    staff.create_staff(portal_hub.engine, "scj_pub", "SCJ", ["publisher"], PASSWORD)
    r = client.post(
        "/portal/login",
        data={"username": "scj_pub", "password": PASSWORD, "csrf_token": csrf_of(r.text)},
        follow_redirects=False,
    )
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("sharehub_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/portal" in cookie
    assert "Secure" not in cookie  # the embedded default serves plain HTTP on localhost


def test_secure_cookies_when_configured(make_api_hub, tmp_path) -> None:
    from tests.catalog.api_hub import build_hub

    hub = build_hub(tmp_path / "s", portal=True, portal_secure_cookies=True)
    r = hub.client.get("/portal/login")
    assert "Secure" in r.headers["set-cookie"]


@pytest.mark.services
def test_secure_by_default_outside_the_embedded_default(hub_pg_url: str, tmp_path) -> None:
    from tests.catalog.api_hub import build_hub

    deployed = build_hub(tmp_path / "pg", portal=True, database_url=hub_pg_url)
    assert "Secure" in deployed.client.get("/portal/login").headers["set-cookie"]


def test_wrong_password_and_unknown_user_look_the_same_and_are_audited(portal_hub) -> None:
    client = TestClient(portal_hub.client.app)
    staff.create_staff(portal_hub.engine, "scj_pub", "SCJ", ["publisher"], PASSWORD)
    token = csrf_of(client.get("/portal/login").text)
    a = client.post(
        "/portal/login", data={"username": "scj_pub", "password": "not the password", "csrf_token": token}
    )
    b = client.post(
        "/portal/login", data={"username": "nobody", "password": "not the password", "csrf_token": token}
    )
    assert a.status_code == b.status_code == 401
    assert "sharehub_session" not in a.headers.get("set-cookie", "")
    assert a.text.replace("scj_pub", "X") == b.text.replace("nobody", "X")
    denied = [r for r in _audit_rows(portal_hub.engine, "/portal/login") if r["method"] == "POST"]
    assert [r["decision"] for r in denied] == ["deny", "deny"]
    assert {r["reason"] for r in denied} == {"invalid_grant"}
    assert all(r["staff"] is None for r in denied)


def test_sign_in_without_or_with_a_wrong_csrf_token_is_refused(portal_hub) -> None:
    client = TestClient(portal_hub.client.app)
    staff.create_staff(portal_hub.engine, "scj_pub", "SCJ", ["publisher"], PASSWORD)
    client.get("/portal/login")
    for data in (
        {"username": "scj_pub", "password": PASSWORD},
        {"username": "scj_pub", "password": PASSWORD, "csrf_token": "forged"},
    ):
        r = client.post("/portal/login", data=data, follow_redirects=False)
        assert r.status_code == 403 and "sharehub_session" not in r.headers.get("set-cookie", "")
    # a token from another browser (its own csrf cookie) is no good here either
    other = TestClient(portal_hub.client.app)
    foreign = csrf_of(other.get("/portal/login").text)
    r = client.post(
        "/portal/login",
        data={"username": "scj_pub", "password": PASSWORD, "csrf_token": foreign},
        follow_redirects=False,
    )
    assert r.status_code == 403


def test_signed_in_actions_need_the_sessions_own_token_and_a_same_site_origin(portal_hub, as_staff) -> None:
    client = as_staff("scj_pub")
    token = csrf_of(client.get("/portal/").text)
    assert client.post("/portal/logout", data={}, follow_redirects=False).status_code == 403
    assert (
        client.post("/portal/logout", data={"csrf_token": "x" * 43}, follow_redirects=False).status_code
        == 403
    )
    r = client.post(
        "/portal/logout",
        data={"csrf_token": token},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert r.status_code == 403
    # still signed in after the refusals
    assert "scj_pub" in client.get("/portal/").text
    refused = [r for r in _audit_rows(portal_hub.engine, "/portal/logout")]
    assert refused and all(r["reason"] == "csrf" and r["decision"] == "deny" for r in refused)
    r = client.post("/portal/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert "scj_pub" not in client.get("/portal/").text


def test_sign_out_ends_the_session_on_the_server(portal_hub, as_staff) -> None:
    client = as_staff("scj_pub")
    stolen = client.cookies.get("sharehub_session")
    token = csrf_of(client.get("/portal/").text)
    client.post("/portal/logout", data={"csrf_token": token})
    thief = TestClient(portal_hub.client.app)
    thief.cookies.set("sharehub_session", stolen, path="/portal")
    assert "scj_pub" not in thief.get("/portal/").text


def test_a_password_change_or_disabling_ends_every_session(portal_hub, as_staff) -> None:
    a, b = as_staff("scj_pub"), as_staff("scj_pub")
    staff.set_password(portal_hub.engine, "scj_pub", "another long passphrase")
    assert "scj_pub" not in a.get("/portal/").text
    c = TestClient(portal_hub.client.app)
    sign_in_ok = c.post(
        "/portal/login",
        data={
            "username": "scj_pub",
            "password": "another long passphrase",
            "csrf_token": csrf_of(c.get("/portal/login").text),
        },
        follow_redirects=False,
    )
    assert sign_in_ok.status_code == 303
    staff.set_status(portal_hub.engine, "scj_pub", "disabled")
    assert "scj_pub" not in c.get("/portal/").text
    assert "scj_pub" not in b.get("/portal/").text


def test_idle_and_expired_sessions_end(portal_hub) -> None:
    user = staff.create_staff(portal_hub.engine, "scj_pub", "SCJ", ["publisher"], PASSWORD)
    t0 = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
    sid, _ = sessions.start(portal_hub.engine, user, max_age=dt.timedelta(hours=12), at=t0)
    idle = dt.timedelta(minutes=30)
    assert sessions.load(portal_hub.engine, sid, idle=idle, at=t0 + dt.timedelta(minutes=29)) is not None
    assert sessions.load(portal_hub.engine, sid, idle=idle, at=t0 + dt.timedelta(minutes=58)) is not None
    assert sessions.load(portal_hub.engine, sid, idle=idle, at=t0 + dt.timedelta(minutes=120)) is None
    sid2, _ = sessions.start(portal_hub.engine, user, max_age=dt.timedelta(hours=1), at=t0)
    at = t0
    for _ in range(5):  # kept busy, it still ends at its maximum age
        at += dt.timedelta(minutes=20)
        result = sessions.load(portal_hub.engine, sid2, idle=idle, at=at)
    assert result is None


def test_the_db_keeps_no_usable_session_id(portal_hub, as_staff) -> None:
    client = as_staff("scj_pub")
    cookie = client.cookies.get("sharehub_session")
    with portal_hub.engine.connect() as conn:
        stored = [dict(r._mapping) for r in conn.execute(sa.select(tables.portal_sessions))]
    assert stored and cookie not in str(stored)


def test_redirect_after_sign_in_stays_in_the_portal(portal_hub) -> None:
    staff.create_staff(portal_hub.engine, "scj_pub", "SCJ", ["publisher"], PASSWORD)
    for target in (
        "https://evil.example/",
        "//evil.example/portal",
        "/portal\\@evil.example",
        "/api/v1/keys",
    ):
        client = TestClient(portal_hub.client.app)
        token = csrf_of(client.get("/portal/login").text)
        r = client.post(
            "/portal/login",
            data={"username": "scj_pub", "password": PASSWORD, "csrf_token": token, "next": target},
            follow_redirects=False,
        )
        assert r.headers["location"] == "/portal/", target
    r = TestClient(portal_hub.client.app).get(
        "/portal/lang?to=en&next=https://evil.example/", follow_redirects=False
    )
    assert r.headers["location"] == "/portal/"


def test_language_switch_and_chinese_by_default(portal_hub) -> None:
    client = TestClient(portal_hub.client.app)
    assert '<html lang="zh-CN">' in client.get("/portal/").text
    assert "数据目录" in client.get("/portal/").text
    client.get("/portal/lang?to=en&next=/portal/")
    page = client.get("/portal/").text
    assert '<html lang="en">' in page and "Data directory" in page


def test_refusals_are_html_pages_under_the_portal_and_json_under_the_api(portal_hub) -> None:
    client = TestClient(portal_hub.client.app)
    r = client.get("/portal/no-such-page")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "页面不存在" in r.text
    r = client.get("/api/v1/no-such-endpoint")
    assert r.status_code == 404 and r.json()["error"]["code"] == "route_not_found"


def test_every_portal_request_is_audited_with_who_made_it(portal_hub, as_staff) -> None:
    client = as_staff("scj_pub")
    client.get("/portal/datasets/SCJ-LIC")
    rows = _audit_rows(portal_hub.engine, "/portal/datasets/SCJ-LIC")
    assert rows[-1]["staff"] == "scj_pub" and rows[-1]["actor_kind"] == "staff"
    assert rows[-1]["action"] == "portal.dataset" and rows[-1]["dataset_code"] == "SCJ-LIC"
    # static assets are not
    assert client.get("/portal/static/portal.css").status_code == 200
    assert _audit_rows(portal_hub.engine, "/portal/static") == []
