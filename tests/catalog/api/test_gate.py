"""The data-call gate on both hub databases, the bare ``/ping`` endpoint and the hot-path reads.

Record lookups and stored-certificate verification read through ``catalog.serving.reads``: the
catalog's SQLAlchemy functions on SQLite, the same statements straight through psycopg on
PostgreSQL. Both must give the same answers, and nothing may be cached between calls: a
revoked grant, a rotated secret or a disabled app shows on the very next call.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from catalog import audit
from catalog.access import app_registry, applications
from catalog.db import tables
from catalog.serving.reads import PsycopgPool, SqlAlchemyReads
from tests.catalog.api_hub import CERT_TYPE, USCC, ApiHub
from tests.catalog.conftest import ApiHubFactory

APPLY = {"purpose": "企业开办一件事", "legal_basis": "《优化营商环境条例》第十九条"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def hub(request: pytest.FixtureRequest, make_api_hub: ApiHubFactory) -> Iterator[ApiHub]:
    if request.param == "sqlite":
        h = make_api_hub()
    else:
        h = make_api_hub(database_url=request.getfixturevalue("hub_pg_url"))
    try:
        yield h
    finally:
        h.client.app.state.hub.close()  # type: ignore[attr-defined]
        h.engine.dispose()


def approve_licences(hub: ApiHub, **body: Any) -> dict[str, Any]:
    r = hub.client.post(
        "/api/v1/applications", json={"dataset": "SCJ-LIC", **APPLY, **body}, headers=hub.as_app("企业开办")
    )
    assert r.status_code == 201, r.text
    d = hub.client.post(
        f"/api/v1/applications/{r.json()['id']}/decision",
        json={"decision": "approve"},
        headers=hub.as_staff("scj_approver"),
    )
    assert d.status_code == 200, d.text
    return dict(d.json())


def records(hub: ApiHub, **params: str) -> Any:
    params = params or {"subject": USCC[0]}
    return hub.client.get("/api/v1/datasets/SCJ-LIC/records", params=params, headers=hub.as_app("企业开办"))


def error(r: Any) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


def test_grant_changes_show_on_the_next_call(hub: ApiHub) -> None:
    assert error(records(hub)) == (403, "no_grant")
    approve_licences(hub)
    r = records(hub)
    assert r.status_code == 200, r.text
    (item,) = r.json()["items"]
    assert item["uscc"] == USCC[0] and item["legal_rep"] == "张**" and item["capital"] == "100.00"
    assert r.json()["masked"] == ["legal_rep"] and r.json()["next_cursor"] is None
    assert records(hub, uscc=USCC[1]).json()["items"][0]["ent_name"] == "乙公司"  # by key
    rec = hub.last_audit()
    assert (rec["decision"], rec["dataset_code"], rec["subject"], rec["row_count"]) == (
        "allow",
        "SCJ-LIC",
        USCC[1],
        1,
    )

    (grant,) = applications.list_grants(hub.engine, app_id=hub.apps["企业开办"][0])
    applications.revoke(hub.engine, grant.id, by="scj_approver", reason="案件办结")
    assert error(records(hub)) == (403, "grant_revoked")
    assert hub.last_audit()["reason"] == "grant_revoked"

    approve_licences(hub)
    assert records(hub).status_code == 200
    with hub.engine.begin() as conn:  # time passes: the grant's end is now in the past
        past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        conn.execute(sa.update(tables.grants).values(valid_until=past))
    assert error(records(hub)) == (403, "grant_expired")


def test_app_changes_show_on_the_next_call(hub: ApiHub) -> None:
    approve_licences(hub)
    assert records(hub).status_code == 200
    cid = hub.apps["企业开办"][0]
    app_registry.set_status(hub.engine, cid, "disabled")
    assert error(records(hub)) == (403, "app_disabled")
    assert hub.last_audit()["app_id"] is None  # refused before the app was accepted
    app_registry.set_status(hub.engine, cid, "active")
    # the token issued before the app was disabled stays dead; a new one works
    assert error(records(hub)) == (401, "invalid_token")
    hub.tokens.clear()
    assert records(hub).status_code == 200
    app_registry.rotate_secret(hub.engine, cid)
    assert error(records(hub)) == (401, "invalid_token")


def test_refusals_in_the_gates_order(hub: ApiHub) -> None:
    headers = hub.as_app("企业开办")
    no_purpose = hub.as_app("企业开办", purpose=False)
    get = hub.client.get
    assert error(get("/api/v1/datasets/NOPE/records", params={"subject": "x"}, headers=headers)) == (
        404,
        "dataset_not_found",
    )
    assert error(get("/api/v1/datasets/SCJ-SECRET/records", params={"k": "1"}, headers=headers)) == (
        403,
        "not_shared",
    )
    # personal data (a sensitive field) needs the purpose before the grant is even looked at
    assert error(get("/api/v1/datasets/SCJ-LIC/records", params={"subject": "x"}, headers=no_purpose)) == (
        400,
        "purpose_required",
    )
    r = hub.client.post(
        "/api/v1/applications", json={"dataset": "SCJ-LIC", **APPLY}, headers=hub.as_app("企业开办")
    )
    assert error(records(hub)) == (403, "application_pending")
    hub.client.post(
        f"/api/v1/applications/{r.json()['id']}/decision",
        json={"decision": "refuse", "reason": "与办理事项无关"},
        headers=hub.as_staff("scj_approver"),
    )
    refused = records(hub)
    assert error(refused) == (403, "application_refused") and "与办理事项无关" in refused.text
    # no token, a staff token, a token that is not a bearer token
    anonymous = get("/api/v1/datasets/SCJ-LIC/records", params={"subject": "x"})
    assert error(anonymous) == (401, "not_authenticated")
    staff_call = get(
        "/api/v1/datasets/SCJ-LIC/records", params={"subject": "x"}, headers=hub.as_staff("scj_approver")
    )
    assert error(staff_call) == (403, "wrong_party")
    assert hub.last_audit()["staff"] == "scj_approver"
    basic = get(
        "/api/v1/datasets/SCJ-LIC/records", params={"subject": "x"}, headers={"Authorization": "Basic eA=="}
    )
    assert error(basic) == (401, "invalid_token")


def test_pages_and_filters(hub: ApiHub) -> None:
    approve_licences(hub)
    page = records(hub, subject=USCC[0], limit="1").json()
    assert page["count"] == 1 and page["next_cursor"] is None  # the subject is the key here
    # a cursor the hub sealed for this app, dataset and subject pages on
    sealer = hub.client.app.state.hub.cursors
    after_it = sealer.seal([USCC[0]], hub.apps["企业开办"][0], "SCJ-LIC", USCC[0])
    rest = records(hub, subject=USCC[0], cursor=after_it).json()
    assert rest["count"] == 0 and rest["next_cursor"] is None
    # the same key, not sealed (or sealed for another subject), is refused
    plain = base64.urlsafe_b64encode(json.dumps([USCC[0]]).encode()).decode().rstrip("=")
    assert error(records(hub, subject=USCC[0], cursor=plain)) == (400, "bad_cursor")
    assert error(records(hub, subject=USCC[1], cursor=after_it)) == (400, "bad_cursor")
    assert error(records(hub, subject=USCC[0], ent_name="x")) == (400, "filter_not_allowed")
    assert error(records(hub, cursor="!!")) == (400, "filter_required")
    assert error(records(hub, subject=USCC[0], cursor="bm90IGpzb24")) == (400, "bad_cursor")
    assert records(hub, subject="91330100MA00000000").json()["items"] == []


def test_verify_stored_certificates(hub: ApiHub) -> None:
    with hub.engine.connect() as conn:
        rows = conn.execute(
            sa.select(tables.certificates.c.holder_id, tables.certificates.c.identifier).order_by(
                tables.certificates.c.holder_id
            )
        ).all()
    ident = {h: i for h, i in rows}
    before = hub.audit_count()
    good = hub.client.get(f"/api/v1/certificates/{ident[USCC[0]]}/verify").json()
    assert good["valid"] is True and good["status"] == "valid" and all(good["checks"].values())
    revoked = hub.client.get(f"/api/v1/certificates/{ident[USCC[2]]}/verify").json()
    assert revoked["valid"] is False and revoked["problems"] == ["revoked"]
    gone = ident[USCC[0]][:-3] + "9.Q"
    unknown = hub.client.get(f"/api/v1/certificates/{gone}/verify").json()
    assert unknown["valid"] is False and "unknown_certificate" in unknown["problems"]
    assert hub.audit_count() == before + 3
    assert hub.last_audit()["action"] == "certificates.verify" and hub.last_audit()["certificate_id"] == gone
    assert audit.verify(hub.engine).ok


def test_ping_is_bare(hub: ApiHub, monkeypatch: pytest.MonkeyPatch) -> None:
    before = hub.audit_count()

    def no_database(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("/ping must not touch the database")

    monkeypatch.setattr(sa.Engine, "connect", no_database)
    r = hub.client.get("/api/v1/ping")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert "x-request-id" not in r.headers  # not audited, like /health
    bad = hub.client.get("/api/v1/ping", params={"verbose": "1"})  # the same stack: strict query
    assert error(bad) == (400, "unknown_parameter")
    monkeypatch.undo()
    assert hub.audit_count() == before
    assert "/api/v1/ping" in hub.client.get("/openapi.json").json()["paths"]


# ---- the reads: psycopg on PostgreSQL gives what SQLAlchemy gives -------------------------------


@pytest.mark.services
def test_psycopg_reads_match_sqlalchemy(hub_pg_url: str, make_api_hub: ApiHubFactory) -> None:
    from catalog.directory import store

    hub = make_api_hub(database_url=hub_pg_url)
    api_hub = hub.client.app.state.hub  # type: ignore[attr-defined]
    try:
        cid = hub.apps["企业开办"][0]
        lic = store.get_dataset(hub.engine, "SCJ-LIC").spec
        with hub.engine.connect() as conn:
            idents = list(conn.execute(sa.select(tables.certificates.c.identifier)).scalars())
        pool = PsycopgPool(hub.engine, 2)

        def both(fn: Any) -> tuple[Any, Any]:
            with hub.engine.connect() as conn, pool.reads() as pg:
                return fn(SqlAlchemyReads(conn, hub.engine)), fn(pg)

        def same(fn: Any) -> Any:
            a, b = both(fn)
            assert a == b
            return a

        assert same(lambda r: r.app_standing(cid, "SCJ-LIC"))[1].kind == "none"
        assert same(lambda r: r.app_standing("app-nobody", "SCJ-LIC"))[0] is None
        approve_licences(hub, clear_fields=["legal_rep"])
        app, state = same(lambda r: r.app_standing(cid, "SCJ-LIC"))
        assert app is not None and app.status == "active" and state.kind == "granted"
        assert state.grant is not None and state.grant.clear_fields == ["legal_rep"]
        assert isinstance(state.grant.valid_from, dt.datetime) and state.grant.valid_from.tzinfo is not None
        applications.revoke(hub.engine, state.grant.id, by="scj_approver", reason="案件办结")
        assert same(lambda r: r.app_standing(cid, "SCJ-LIC"))[1].kind == "revoked"

        rows = same(lambda r: r.lookup_subject(lic, USCC[0], limit=5))
        assert rows and rows[0]["est_date"] == dt.date(2020, 1, 1) and str(rows[0]["capital"]) == "100.00"
        assert same(lambda r: r.lookup_subject(lic, USCC[0], limit=5, after=[USCC[0]])) == []
        assert same(lambda r: r.lookup_key(lic, {"uscc": USCC[1]}))["ent_name"] == "乙公司"
        assert same(lambda r: r.lookup_key(lic, {"uscc": "none"})) is None
        for ident in [*idents, idents[0][:-3] + "9.Q", "not-an-identifier"]:
            same(lambda r, i=ident: r.certificate(i))
        row, _ = same(lambda r: r.certificate(idents[0]))
        assert row["type_code"] == CERT_TYPE and isinstance(row["face"], dict)

        # a pooled connection that the server dropped is replaced once, transparently
        with pool.reads() as pg:
            pg.lookup_key(lic, {"uscc": USCC[1]})
        (stale,) = pool._idle
        with hub.engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": stale.info.backend_pid})
        with pool.reads() as pg:
            assert pg.lookup_key(lic, {"uscc": USCC[1]}) is not None
        assert pool._idle and pool._idle[0] is not stale
        # a statement prepared on a pooled connection survives its table being recreated
        for _ in range(8):  # psycopg prepares a statement on its fifth use
            with pool.reads() as pg:
                pg.lookup_key(lic, {"uscc": USCC[1]})
        (prepared,) = pool._idle
        with hub.engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE srv_scj_lic ALTER COLUMN capital TYPE text"))
        with pool.reads() as pg:
            assert pg.lookup_key(lic, {"uscc": USCC[1]})["capital"] == "100.00"
        assert pool._idle[0] is not prepared  # PostgreSQL refused the cached plan: a fresh connection
        pool.close()
    finally:
        api_hub.close()
        hub.engine.dispose()
