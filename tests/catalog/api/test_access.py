"""The access API end to end: tokens, applications, grants, the authorization matrix, masking,
rate limits, the subject view, certificates and the audit trail (embedded SQLite hub)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from catalog import audit
from catalog.access import app_registry
from catalog.auth import tokens
from catalog.auth.keys import KeyStore
from catalog.db import tables
from tests.catalog.api_hub import CITIZENS, USCC, ApiHub
from tests.catalog.conftest import ApiHubFactory

APPLY = {"purpose": "企业开办一件事", "legal_basis": "《优化营商环境条例》第十九条"}


@pytest.fixture
def hub(make_api_hub: ApiHubFactory) -> ApiHub:
    return make_api_hub()


def apply(hub: ApiHub, app: str, dataset: str, **body: Any) -> dict[str, Any]:
    r = hub.client.post(
        "/api/v1/applications", json={"dataset": dataset, **APPLY, **body}, headers=hub.as_app(app)
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def decide(hub: ApiHub, application_id: int, who: str = "scj_approver", **body: Any) -> Any:
    return hub.client.post(
        f"/api/v1/applications/{application_id}/decision", json=body, headers=hub.as_staff(who)
    )


def lic(hub: ApiHub, app: str = "企业开办", **headers: str) -> Any:
    return hub.client.get(
        "/api/v1/datasets/SCJ-LIC/records", params={"uscc": USCC[0]}, headers={**hub.as_app(app), **headers}
    )


# ---- tokens -------------------------------------------------------------------------------


def test_token_endpoint_and_forgeries(hub: ApiHub, tmp_path: Path) -> None:
    cid, secret = hub.apps["企业开办"]
    ok = hub.client.post(
        "/api/v1/token", data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret}
    )
    assert ok.status_code == 200 and ok.headers["cache-control"] == "no-store"
    body = ok.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == hub.settings.token_ttl_seconds
    # HTTP Basic works too (RFC 6749 §2.3.1)
    basic = hub.client.post("/api/v1/token", data={"grant_type": "client_credentials"}, auth=(cid, secret))
    assert basic.status_code == 200
    wrong = hub.client.post(
        "/api/v1/token", data={"grant_type": "client_credentials", "client_id": cid, "client_secret": "x"}
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert hub.last_audit()["reason"] == "invalid_client" and hub.last_audit()["decision"] == "deny"
    assert secret not in str(hub.last_audit())
    bad_grant = hub.client.post("/api/v1/token", data={"grant_type": "implicit"})
    assert bad_grant.status_code == 400 and bad_grant.json()["error"] == "unsupported_grant_type"

    s = hub.settings

    def call(token: str) -> Any:
        return hub.client.get("/api/v1/grants", headers={"Authorization": f"Bearer {token}"})

    assert call(body["access_token"]).status_code == 200
    # expired
    old, _ = tokens.issue_token(
        hub.keys,
        subject=cid,
        kind="app",
        audience=s.token_audience,
        issuer=s.token_issuer,
        ttl_s=60,
        claims={"gen": 1},
        now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
    )
    r = call(old)
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_expired"
    assert "invalid_token" in r.headers["www-authenticate"]
    # wrong audience
    aud, _ = tokens.issue_token(
        hub.keys,
        subject=cid,
        kind="app",
        audience="another-api",
        issuer=s.token_issuer,
        ttl_s=60,
        claims={"gen": 1},
    )
    assert call(aud).json()["error"]["code"] == "invalid_token"
    # forged: signed by a key the hub never published
    other = sa.create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    tables.metadata.create_all(other)
    stranger = KeyStore(other, tmp_path / "otherkeys")
    forged, _ = tokens.issue_token(
        stranger,
        subject=cid,
        kind="app",
        audience=s.token_audience,
        issuer=s.token_issuer,
        ttl_s=60,
        claims={"gen": 1},
    )
    r = call(forged)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
    # tampered payload
    head, payload, sig = body["access_token"].split(".")
    assert call(f"{head}.{payload}x.{sig}").status_code == 401
    assert call("not-a-token").status_code == 401
    assert hub.client.get("/api/v1/grants", headers={"Authorization": "Basic abc"}).status_code == 401
    assert hub.client.get("/api/v1/grants").json()["error"]["code"] == "not_authenticated"


def test_rotated_secret_and_disabled_app(hub: ApiHub) -> None:
    cid, old_secret = hub.apps["企业开办"]
    token = hub.app_token("企业开办")
    _, new_secret = app_registry.rotate_secret(hub.engine, cid)
    r = hub.client.get("/api/v1/grants", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
    old = hub.client.post(
        "/api/v1/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": old_secret},
    )
    assert old.status_code == 401
    hub.apps["企业开办"] = (cid, new_secret)
    hub.tokens.clear()
    assert hub.client.get("/api/v1/grants", headers=hub.as_app("企业开办")).status_code == 200
    app_registry.set_status(hub.engine, cid, "disabled")
    r = hub.client.get("/api/v1/grants", headers=hub.as_app("企业开办"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "app_disabled"


# ---- the authorization matrix ---------------------------------------------------------------


def _state(hub: ApiHub, share: str, state: str) -> None:
    """Bring 企业开办 into ``state`` for the dataset of ``share`` type."""
    dataset = {"conditional": "SCJ-LIC", "unconditional": "SCJ-OPEN"}[share]
    if state == "none":
        return
    body: dict[str, Any] = {}
    if share == "unconditional" and state in {"pending", "refused"}:
        body["clear_fields"] = ["contact_mobile"]  # asking for clear text needs a decision
    a = apply(hub, "企业开办", dataset, **body)
    if state == "pending":
        return
    if a["status"] == "pending":
        if state == "refused":
            assert decide(hub, a["id"], decision="refuse", reason="与办理事项无关").status_code == 200
            return
        assert decide(hub, a["id"], decision="approve").status_code == 200
    if state == "expired":
        with hub.engine.begin() as conn:  # time passes: the grant's end is now in the past
            conn.execute(
                sa.update(tables.grants).values(valid_until=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
            )
    if state == "revoked":
        (g,) = hub.client.get("/api/v1/grants", headers=hub.as_app("企业开办")).json()["items"]
        r = hub.client.post(
            f"/api/v1/grants/{g['id']}/revoke",
            json={"reason": "案件办结"},
            headers=hub.as_staff("scj_approver"),
        )
        assert r.status_code == 200 and r.json()["status"] == "revoked"


EXPECTED = {
    "none": (403, "no_grant"),
    "pending": (403, "application_pending"),
    "refused": (403, "application_refused"),
    "expired": (403, "grant_expired"),
    "revoked": (403, "grant_revoked"),
    "approved": (200, None),
}


@pytest.mark.parametrize("share", ["conditional", "unconditional"])
@pytest.mark.parametrize("state", list(EXPECTED))
def test_authorization_matrix(share: str, state: str, make_api_hub: ApiHubFactory) -> None:
    hub = make_api_hub()
    _state(hub, share, state)
    dataset = {"conditional": "SCJ-LIC", "unconditional": "SCJ-OPEN"}[share]
    headers = hub.as_app("企业开办")
    before = hub.audit_count()
    r = hub.client.get(f"/api/v1/datasets/{dataset}/records", params={"uscc": USCC[0]}, headers=headers)
    status, code = EXPECTED[state]
    assert r.status_code == status, r.text
    rec = hub.last_audit()
    assert hub.audit_count() == before + 1
    assert (rec["app_id"], rec["dataset_code"], rec["end_user"], rec["case_number"]) == (
        hub.apps["企业开办"][0],
        dataset,
        "officer-007",
        "QYKB-2026-000123",
    )
    if code:
        assert r.json()["error"]["code"] == code and r.json()["error"]["message_zh"]
        assert (rec["decision"], rec["reason"], rec["row_count"], rec["fields"]) == ("deny", code, 0, None)
        if state == "refused":
            assert "与办理事项无关" in r.json()["error"]["message"]
        return
    (item,) = r.json()["items"]
    if share == "conditional":
        assert item["legal_rep"] == "张**" and item["ent_name"] == "甲公司"  # masked by default
        assert r.json()["masked"] == ["legal_rep"]
    else:
        assert item["contact_mobile"] == "138****5678"
    assert (rec["decision"], rec["reason"], rec["row_count"], rec["subject"]) == ("allow", None, 1, USCC[0])
    masked = set(r.json()["masked"])
    code = rec["dataset_code"]
    assert rec["fields"] == [f"{code}.{f}:masked" if f in masked else f"{code}.{f}" for f in item]


def test_none_data_is_never_served_or_granted(hub: ApiHub) -> None:
    r = hub.client.post(
        "/api/v1/applications", json={"dataset": "SCJ-SECRET", **APPLY}, headers=hub.as_app("企业开办")
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_shared"
    r = hub.client.get(
        "/api/v1/datasets/SCJ-SECRET/records", params={"k": "1"}, headers=hub.as_app("企业开办")
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_shared"
    assert hub.last_audit()["reason"] == "not_shared"


def test_field_grants_drop_and_clear(hub: ApiHub) -> None:
    a = apply(
        hub,
        "企业开办",
        "SCJ-LIC",
        fields=["uscc", "ent_name", "legal_rep", "status"],
        clear_fields=["legal_rep"],
    )
    assert a["status"] == "pending" and a["deadline"] > dt.date.today().isoformat()
    # the approver narrows: no capital asked anyway, status dropped, legal_rep stays clear
    d = decide(hub, a["id"], decision="approve", fields=["uscc", "ent_name", "legal_rep"])
    assert d.status_code == 200 and d.json()["status"] == "approved"
    r = lic(hub)
    (item,) = r.json()["items"]
    assert item == {"uscc": USCC[0], "ent_name": "甲公司", "legal_rep": "张三丰"}
    assert r.json()["masked"] == []
    assert hub.last_audit()["fields"] == ["SCJ-LIC.uscc", "SCJ-LIC.ent_name", "SCJ-LIC.legal_rep"]
    # a filter on a field that is not a key is refused; a missing record looks like any empty answer
    assert lic(hub).status_code == 200
    r = hub.client.get(
        "/api/v1/datasets/SCJ-LIC/records", params={"ent_name": "甲公司"}, headers=hub.as_app("企业开办")
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "filter_not_allowed"
    r = hub.client.get(
        "/api/v1/datasets/SCJ-LIC/records", params={"uscc": "nope"}, headers=hub.as_app("企业开办")
    )
    assert r.status_code == 200 and r.json()["items"] == []


def test_decisions_need_the_owner_and_a_reason(hub: ApiHub) -> None:
    a = apply(hub, "企业开办", "SCJ-LIC")
    r = decide(hub, a["id"], who="rsj_approver", decision="approve")
    assert r.status_code == 404  # another department's application is not even visible
    r = decide(hub, a["id"], who="scj_auditor", decision="approve")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_role"
    r = decide(hub, a["id"], decision="refuse")
    assert r.status_code == 400 and r.json()["error"]["code"] == "reason_required"
    r = hub.client.post(
        f"/api/v1/applications/{a['id']}/decision",
        json={"decision": "approve"},
        headers=hub.as_app("企业开办"),
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "wrong_party"
    r = decide(hub, a["id"], who="hub_admin", decision="approve")
    assert r.status_code == 200 and r.json()["decided_by"] == "hub_admin"
    r = decide(hub, a["id"], decision="refuse", reason="x")
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_decided"


def test_overdue_applications_are_flagged(hub: ApiHub) -> None:
    a = apply(hub, "企业开办", "SCJ-LIC")
    listing = hub.client.get(
        "/api/v1/applications", params={"overdue": True}, headers=hub.as_staff("scj_approver")
    ).json()
    assert listing["count"] == 0
    with hub.engine.begin() as conn:
        conn.execute(sa.update(tables.applications).values(deadline=dt.date.today() - dt.timedelta(days=1)))
    listing = hub.client.get(
        "/api/v1/applications", params={"overdue": True}, headers=hub.as_staff("scj_approver")
    ).json()
    assert [x["id"] for x in listing["items"]] == [a["id"]] and listing["items"][0]["overdue"] is True
    # another department's staff does not see it
    other = hub.client.get("/api/v1/applications", headers=hub.as_staff("rsj_approver")).json()
    assert other["count"] == 0


def test_purpose_headers_for_personal_data(hub: ApiHub) -> None:
    assert apply(hub, "不动产登记", "RSJ-PEN")["status"] == "approved"  # unconditional: granted at once
    no_purpose = hub.as_app("不动产登记", purpose=False)
    r = hub.client.get(
        "/api/v1/datasets/RSJ-PEN/records", params={"subject": CITIZENS[0]}, headers=no_purpose
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "purpose_required"
    assert hub.last_audit()["reason"] == "purpose_required"
    r = hub.client.get(
        "/api/v1/datasets/RSJ-PEN/records",
        params={"subject": CITIZENS[0], "limit": 1},
        headers=hub.as_app("不动产登记"),
    )
    page = r.json()
    assert r.status_code == 200 and page["items"][0]["person_id"] == "1***************2X"
    assert page["items"][0]["name"] == "张*" and page["next_cursor"]
    r2 = hub.client.get(
        "/api/v1/datasets/RSJ-PEN/records",
        params={"subject": CITIZENS[0], "cursor": page["next_cursor"]},
        headers=hub.as_app("不动产登记"),
    )
    assert [i["month"] for i in r2.json()["items"]] == ["2026-10"] and r2.json()["next_cursor"] is None
    assert hub.last_audit()["subject"] == CITIZENS[0]


def test_rate_limit_answers_429_with_retry_after(hub: ApiHub) -> None:
    a = apply(hub, "企业开办", "SCJ-LIC")
    assert decide(hub, a["id"], decision="approve", rate_limit=2).status_code == 200
    assert lic(hub).status_code == 200 and lic(hub).status_code == 200
    r = lic(hub)
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    assert int(r.headers["retry-after"]) >= 1
    assert hub.last_audit()["reason"] == "rate_limited"


def test_subject_view_across_departments(hub: ApiHub) -> None:
    apply(hub, "不动产登记", "RSJ-PEN")
    apply(hub, "不动产登记", "SCJ-OPEN")
    r = hub.client.get(f"/api/v1/subjects/{CITIZENS[0]}", headers=hub.as_app("不动产登记"))
    assert r.status_code == 200
    view = r.json()
    assert [d["code"] for d in view["datasets"]] == ["RSJ-PEN"] and view["datasets"][0]["count"] == 2
    assert view["certificates"] == []
    r = hub.client.get(f"/api/v1/subjects/{USCC[0]}", headers=hub.as_app("不动产登记"))
    assert [d["code"] for d in r.json()["datasets"]] == ["SCJ-OPEN"]
    assert hub.last_audit()["fields"] == [
        "SCJ-OPEN.uscc",
        "SCJ-OPEN.ent_name",
        "SCJ-OPEN.contact_mobile:masked",
    ]
    # both granted datasets were consulted, though only one knew the enterprise
    assert hub.last_audit()["datasets"] == {"RSJ-PEN": 0, "SCJ-OPEN": 1}
    r = hub.client.get(f"/api/v1/subjects/{USCC[0]}", headers=hub.as_app("不动产登记", purpose=False))
    assert r.status_code == 400


def test_open_data_without_credentials(hub: ApiHub) -> None:
    listing = hub.client.get("/api/v1/datasets").json()
    assert [d["code"] for d in listing["items"]] == ["SCJ-OPEN"]
    assert len(hub.client.get("/api/v1/datasets", headers=hub.as_app("企业开办")).json()["items"]) == 4
    assert hub.client.get("/api/v1/datasets/SCJ-LIC").status_code == 404
    r = hub.client.get("/api/v1/datasets/SCJ-OPEN/download")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "uscc,ent_name" and len(lines) == 4  # the sensitive mobile is left out
    rec = hub.last_audit()
    assert (rec["actor_kind"], rec["action"], rec["row_count"]) == ("anonymous", "open.download", 3)
    # closed data answers like data that does not exist; the audit keeps the real reason
    r = hub.client.get("/api/v1/datasets/SCJ-LIC/download")
    assert r.status_code == 404 and r.json()["error"]["code"] == "dataset_not_found"
    assert hub.last_audit()["reason"] == "not_open"


# ---- certificates ---------------------------------------------------------------------------


def _approve_licences(hub: ApiHub, **body: Any) -> None:
    a = apply(hub, "企业开办", "SCJ-LIC", **body)
    assert decide(hub, a["id"], decision="approve").status_code == 200


def test_certificates_are_hidden_without_grant_and_signed_with_one(hub: ApiHub) -> None:
    ident = hub.client.get(
        "/api/v1/certificates/1.2.156.3005.2.X.Y.00000001.1.Z", headers=hub.as_app("企业开办")
    )
    assert ident.status_code == 404
    with hub.engine.connect() as conn:
        real = conn.execute(
            sa.select(tables.certificates.c.identifier).where(tables.certificates.c.holder_id == USCC[0])
        ).scalar_one()
    missing = real[:-3] + "9.Q"
    a = hub.client.get(f"/api/v1/certificates/{real}", headers=hub.as_app("企业开办"))
    b = hub.client.get(f"/api/v1/certificates/{missing}", headers=hub.as_app("企业开办"))
    assert a.status_code == b.status_code == 404
    assert a.json()["error"]["code"] == b.json()["error"]["code"] == "certificate_not_found"
    assert hub.last_audit()["reason"] == "no_grant"  # the auditor knows why; the app does not
    assert (
        hub.client.get(f"/api/v1/subjects/{USCC[0]}/certificates", headers=hub.as_app("企业开办")).json()[
            "count"
        ]
        == 0
    )

    _approve_licences(hub, clear_fields=["legal_rep"])
    cert = hub.client.get(f"/api/v1/certificates/{real}", headers=hub.as_app("企业开办")).json()
    assert cert["complete"] is True and cert["signed"]["signature"]["alg"] == "EdDSA"
    assert cert["face"]["legal_rep"] == "张三丰"
    ok = hub.client.post("/api/v1/verify", json={"document": cert["signed"]}).json()
    assert ok["valid"] is True, ok
    changed = {
        **cert["signed"],
        "certificate": {
            **cert["signed"]["certificate"],
            "face": {**cert["signed"]["certificate"]["face"], "capital": "999.00"},
        },
    }
    bad = hub.client.post("/api/v1/verify", json={"document": changed}).json()
    assert bad["valid"] is False and bad["problems"]
    assert hub.client.get(f"/api/v1/certificates/{real}/verify").json()["valid"] is True
    # a revoked licence fails verification even with a good signature
    with hub.engine.connect() as conn:
        revoked = conn.execute(
            sa.select(tables.certificates.c.identifier).where(tables.certificates.c.holder_id == USCC[2])
        ).scalar_one()
    v = hub.client.get(f"/api/v1/certificates/{revoked}/verify").json()
    assert v["valid"] is False and v["status"] == "revoked" and "revoked" in v["problems"]


def test_masked_certificate_view_carries_no_signature(hub: ApiHub) -> None:
    _approve_licences(hub)
    certs = hub.client.get(f"/api/v1/subjects/{USCC[0]}/certificates", headers=hub.as_app("企业开办")).json()[
        "items"
    ]
    (cert,) = certs
    assert cert["face"]["legal_rep"] == "张**" and cert["complete"] is False and cert["signed"] is None
    r = hub.client.post(
        f"/api/v1/certificates/{cert['identifier']}/copies",
        json={"reason": "企业开办"},
        headers=hub.as_app("企业开办"),
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "copy_needs_full_grant"


def test_annotated_copy_and_qr(hub: ApiHub) -> None:
    _approve_licences(hub, clear_fields=["legal_rep"])
    with hub.engine.connect() as conn:
        ident = conn.execute(
            sa.select(tables.certificates.c.identifier).where(tables.certificates.c.holder_id == USCC[0])
        ).scalar_one()
    r = hub.client.post(
        f"/api/v1/certificates/{ident}/copies",
        json={"reason": "办理企业开办", "valid_days": 7},
        headers=hub.as_app("企业开办"),
    )
    assert r.status_code == 201, r.text
    copy = r.json()
    ann = copy["document"]["annotation"]
    assert ann["reason"] == "办理企业开办" and ann["case_number"] == "QYKB-2026-000123"
    assert hub.client.post("/api/v1/verify", json={"document": copy["document"]}).json()["valid"] is True
    assert hub.client.post("/api/v1/verify", json={"qr": copy["qr"]}).json()["valid"] is True
    tampered = copy["qr"][:-2] + ("AA" if not copy["qr"].endswith("AA") else "BB")
    assert hub.client.post("/api/v1/verify", json={"qr": tampered}).json()["valid"] is False
    both = hub.client.post("/api/v1/verify", json={"qr": copy["qr"], "document": copy["document"]})
    assert both.status_code == 400 and both.json()["error"]["code"] == "bad_document"


def test_jwks_is_public(hub: ApiHub) -> None:
    hub.app_token("企业开办")  # creates the token key
    keys = hub.client.get("/api/v1/keys").json()["keys"]
    assert {k["purpose"] for k in keys} == {"token", "certificate"}
    assert all(k["kty"] == "OKP" and k["crv"] == "Ed25519" and "d" not in k for k in keys)
    assert hub.client.get("/.well-known/jwks.json").json()["keys"] == keys


# ---- audit ----------------------------------------------------------------------------------


def test_every_call_is_audited_and_scoped(hub: ApiHub) -> None:
    apply(hub, "企业开办", "SCJ-OPEN")
    hub.client.get(
        "/api/v1/datasets/SCJ-OPEN/records", params={"uscc": USCC[1]}, headers=hub.as_app("企业开办")
    )
    hub.client.get(
        "/api/v1/datasets/SCJ-OPEN/records", params={"uscc": USCC[1]}, headers=hub.as_app("不动产登记")
    )
    hub.client.get("/api/v1/nowhere", headers=hub.as_app("企业开办"))
    n = hub.audit_count()
    own = hub.client.get("/api/v1/audit", params={"limit": 1000}, headers=hub.as_app("不动产登记")).json()
    assert own["count"] >= 1 and {i["app_id"] for i in own["items"]} == {hub.apps["不动产登记"][0]}
    dept = hub.client.get("/api/v1/audit", params={"limit": 1000}, headers=hub.as_staff("scj_auditor")).json()
    assert {i["dataset_code"] for i in dept["items"]} <= {"SCJ-LIC", "SCJ-OPEN", "SCJ-SECRET"}
    assert {i["decision"] for i in dept["items"]} == {"allow", "deny"}
    r = hub.client.get("/api/v1/audit", headers=hub.as_staff("scj_approver"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_role"
    assert hub.audit_count() > n  # reading the log is itself audited
    report = audit.verify(hub.engine)
    assert report.ok and report.checked == hub.audit_count()
    with hub.engine.begin() as conn:
        conn.execute(sa.update(tables.audit).where(tables.audit.c.seq == 3).values(app_id="someone-else"))
    report = audit.verify(hub.engine)
    assert not report.ok and any("seq 3" in p for p in report.problems)


def test_audit_failure_serves_nothing(hub: ApiHub) -> None:
    apply(hub, "企业开办", "SCJ-OPEN")
    with hub.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE hub_audit"))
    r = hub.client.get(
        "/api/v1/datasets/SCJ-OPEN/records", params={"uscc": USCC[1]}, headers=hub.as_app("企业开办")
    )
    assert r.status_code == 503 and r.json()["error"]["code"] == "audit_unavailable"
    assert "甲公司" not in r.text and "乙公司" not in r.text


def test_unknown_query_parameters_are_refused(hub: ApiHub) -> None:
    r = hub.client.get("/api/v1/grants", params={"actvie": "true"}, headers=hub.as_app("企业开办"))
    assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_parameter"
    assert "actvie" in r.json()["error"]["message"]
    assert (
        hub.client.get(
            "/api/v1/grants", params={"active": "true"}, headers=hub.as_app("企业开办")
        ).status_code
        == 200
    )
    # Starlette's own refusals come in the same shape, with every allowed method named
    r = hub.client.put("/api/v1/applications", headers=hub.as_app("企业开办"))
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    assert r.headers["allow"] == "GET, POST"


def test_lost_signing_keys_answer_503_not_500(hub: ApiHub) -> None:
    hub.app_token("企业开办")  # the token key exists now
    for pem in hub.settings.signing_keys_dir.glob("*.pem"):
        pem.unlink()
    from fastapi.testclient import TestClient

    from catalog.api import create_app
    from catalog.auth import keys as keys_module

    keys_module._PRIVATE_CACHE.clear()  # as in a freshly started API process

    client = TestClient(create_app(hub.settings))
    cid, secret = hub.apps["企业开办"]
    r = client.post(
        "/api/v1/token", data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret}
    )
    assert r.status_code == 503 and r.json()["error"]["code"] == "keys_unavailable"
    assert ".pem" not in r.text
    assert hub.last_audit()["reason"] == "keys_unavailable"
