"""Each finding of the hostile-app disclosure review (docs/security.md), as a test that
failed before the fix.

Every test serialises whole responses (body and headers, cursors decoded) and searches them
for values that must not be there. The property test over many grants is in
``tests/catalog/access/test_disclosure_property.py``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import itertools
import json
import time
from typing import Any

import jwt
import pytest
import sqlalchemy as sa

from catalog.access import app_registry, staff
from catalog.certificates import issuing
from catalog.db import tables
from catalog.directory import store
from catalog.masking import mask
from tests.catalog.api_hub import (
    CERT_TYPE,
    CITIZENS,
    ID_CARD_TYPE,
    PASSWORD,
    USCC,
    ApiHub,
    publish_id_cards,
    residents,
)
from tests.catalog.conftest import ApiHubFactory

APPLY = {"purpose": "不动产登记核验申请人身份", "legal_basis": "《不动产登记暂行条例》第二十七条"}


@pytest.fixture
def hub(make_api_hub: ApiHubFactory) -> ApiHub:
    h = make_api_hub()
    publish_id_cards(h)
    return h


def dump(r: Any) -> str:
    """Everything a response carries: status, headers, body, and any cursor decoded."""
    parts = [str(r.status_code), *(f"{k}: {v}" for k, v in r.headers.items()), r.text]
    try:
        body = r.json()
    except ValueError:
        body = None
    cursors = _find_key(body, "next_cursor")
    for c in cursors:
        if isinstance(c, str):
            with contextlib.suppress(binascii.Error, ValueError):
                parts.append(base64.urlsafe_b64decode(c + "=" * (-len(c) % 4)).decode("utf-8", "replace"))
    return "\n".join(parts)


def _find_key(doc: Any, key: str) -> list[Any]:
    if isinstance(doc, dict):
        return [v for k, v in doc.items() if k == key] + [x for v in doc.values() for x in _find_key(v, key)]
    if isinstance(doc, list):
        return [x for v in doc for x in _find_key(v, key)]
    return []


def apply(hub: ApiHub, app: str, dataset: str, **body: Any) -> dict[str, Any]:
    r = hub.client.post(
        "/api/v1/applications", json={"dataset": dataset, **APPLY, **body}, headers=hub.as_app(app)
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def approve(hub: ApiHub, application_id: int, who: str, **body: Any) -> dict[str, Any]:
    r = hub.client.post(
        f"/api/v1/applications/{application_id}/decision",
        json={"decision": "approve", **body},
        headers=hub.as_staff(who),
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def grant(hub: ApiHub, app: str, dataset: str, fields: list[str], clear: list[str] | None = None) -> None:
    a = apply(hub, app, dataset, fields=fields, clear_fields=clear or [])
    if a["status"] == "pending":
        who = {"GAJ-ID": "gaj_approver", "SCJ-LIC": "scj_approver", "SCJ-OPEN": "scj_approver"}[dataset]
        approve(hub, a["id"], who)


def id_cards(hub: ApiHub) -> list[dict[str, Any]]:
    return [c for cid in CITIZENS for c in issuing.certificates_of(hub.engine, cid, ID_CARD_TYPE)]


def audit_rows(hub: ApiHub) -> list[dict[str, Any]]:
    with hub.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(tables.audit).order_by(tables.audit.c.seq))]


# ---- 1. certificate views follow the grant; serials are unguessable ----------------------


def test_certificate_views_disclose_only_granted_fields(hub: ApiHub) -> None:
    """An app granted only `gender` of the household register sees no citizen ID, name,
    address or validity date anywhere: not in the certificate list, the certificate view or
    the subject view — and the audit says exactly what was released."""
    grant(hub, "不动产登记", "GAJ-ID", ["gender"])
    people = residents().to_pylist()
    person = people[0]
    forbidden = [person["id_no"], person["name"], person["address"], person["authority"]]
    forbidden += [person["id_valid_from"].isoformat(), person["id_valid_until"].isoformat()]
    # the masked forms of the sensitive ones may not appear either: the grant does not cover them
    forbidden += [mask("citizen_id", person["id_no"]), mask("name", person["name"])]
    cert = issuing.certificates_of(hub.engine, person["id_no"], ID_CARD_TYPE)[0]
    h = hub.as_app("不动产登记")
    responses = [
        hub.client.get(f"/api/v1/subjects/{person['id_no']}/certificates", headers=h),
        hub.client.get(f"/api/v1/certificates/{cert['identifier']}", headers=h),
        hub.client.get(f"/api/v1/subjects/{person['id_no']}", headers=h),
    ]
    for r in responses:
        assert r.status_code == 200, r.text
        text = dump(r)
        # the subject view and the list name the subject the app asked about: it sent it
        if "/subjects/" in str(r.request.url):
            text = text.replace(f"/subjects/{person['id_no']}", "")
            text = text.replace(f'"subject":"{person["id_no"]}"', "")
        for value in forbidden:
            assert value not in text, (r.request.url, value)
    view = responses[1].json()
    assert view["face"] == {"gender": "男"}
    assert view["number"] is None and view["holder_id"] is None and view["holder_name"] is None
    assert view["valid_from"] is None and view["valid_until"] is None and view["signed"] is None
    assert view["complete"] is False
    # the audit records exactly what was released: the gender field, nothing else
    records = audit_rows(hub)[-3:]
    assert [r["fields"] for r in records] == [["GAJ-ID.gender"]] * 3
    # the list consulted GAJ-ID (one certificate); the view one record and one certificate
    assert [(r["dataset_code"], r["datasets"]) for r in records] == [
        (None, {"GAJ-ID": 1}),
        ("GAJ-ID", None),
        (None, {"GAJ-ID": 2}),
    ]


def test_certificate_attributes_follow_their_fields_masks(hub: ApiHub) -> None:
    """Granted masked, the number and holder are masked by their own fields' rules."""
    grant(hub, "不动产登记", "GAJ-ID", ["id_no", "name", "gender", "id_valid_from"])
    cid = CITIZENS[1]
    r = hub.client.get(f"/api/v1/subjects/{cid}/certificates", headers=hub.as_app("不动产登记"))
    assert r.status_code == 200, r.text
    (c,) = r.json()["items"]
    assert c["number"] == mask("citizen_id", cid) == c["holder_id"] == c["face"]["id_no"]
    assert c["holder_name"] == mask("name", "司马青岚") == "司***" == c["face"]["name"]
    assert c["valid_from"] == "2013-05-29" and c["valid_until"] is None and c["status"] is None
    assert c["signed"] is None
    assert sorted(hub.last_audit()["fields"]) == [
        "GAJ-ID.gender",
        "GAJ-ID.id_no:masked",
        "GAJ-ID.id_valid_from",
        "GAJ-ID.name:masked",
    ]


def test_new_certificate_serials_are_unguessable(hub: ApiHub) -> None:
    serials = sorted(int(c["serial"]) for c in id_cards(hub))
    assert len(serials) == 3
    assert all(s >= 10**12 for s in serials), serials
    assert all(b - a > 1 for a, b in itertools.pairwise(serials)), serials
    # walking from a known identifier finds nothing
    known = id_cards(hub)[0]
    for delta in (-2, -1, 1, 2):
        walked = issuing.certificate_identifier(
            ID_CARD_TYPE, known["issuer_code"], int(known["serial"]) + delta, 1
        )
        v = hub.client.get(f"/api/v1/certificates/{walked}/verify").json()
        assert v["problems"] == ["unknown_certificate"]


def test_old_sequential_identifiers_stay_verifiable(hub: ApiHub) -> None:
    """A certificate issued before the change (serial 1) keeps its identifier and verifies."""
    d = store.get_dataset(hub.engine, "SCJ-LIC")
    t = tables.certificates
    old = issuing.certificates_of(hub.engine, USCC[0], CERT_TYPE)[0]
    legacy = issuing.certificate_identifier(CERT_TYPE, old["issuer_code"], 1, 1)
    from catalog.certificates.signing import sign_certificate

    row = {**old, "identifier": legacy, "serial": 1}
    sig, kid = sign_certificate(hub.keys.active("certificate"), row)
    with hub.engine.begin() as conn:
        conn.execute(
            t.update()
            .where(t.c.identifier == old["identifier"])
            .values(identifier=legacy, serial=1, signature=sig, signing_kid=kid)
        )
    assert hub.client.get(f"/api/v1/certificates/{legacy}/verify").json()["valid"] is True
    # a face change re-issues it under the same serial, version 2
    from tests.catalog.api_hub import licences

    issuing.issue(
        hub.engine,
        d.spec,
        d.department,
        CERT_TYPE,
        licences(["甲公司（新）", "乙公司", "丙公司"], ["存续", "存续", "吊销"]),
        run_id="r2",
        signer=hub.keys.active("certificate"),
    )
    now = issuing.certificates_of(hub.engine, USCC[0], CERT_TYPE)[0]
    assert (now["serial"], now["version"]) == (1, 2)


# ---- 2. verification is not an oracle -------------------------------------------------------


def _signed_licence(hub: ApiHub) -> dict[str, Any]:
    a = apply(hub, "企业开办", "SCJ-LIC", clear_fields=["legal_rep"])
    approve(hub, a["id"], "scj_approver")
    ident = issuing.certificates_of(hub.engine, USCC[0], CERT_TYPE)[0]["identifier"]
    view = hub.client.get(f"/api/v1/certificates/{ident}", headers=hub.as_app("企业开办")).json()
    assert view["complete"] is True
    return dict(view["signed"])


def test_verify_with_a_bad_signature_reveals_nothing_about_the_record(hub: ApiHub) -> None:
    signed = _signed_licence(hub)
    true_name = signed["certificate"]["face"]["legal_rep"]
    answers = []
    for guess in (true_name, "赵大勇", "钱多多"):
        doc = json.loads(json.dumps(signed))
        doc["certificate"]["face"]["legal_rep"] = guess
        doc["certificate"]["holder_name"] = "猜测公司"
        r = hub.client.post("/api/v1/verify", json={"document": doc})
        assert r.status_code == 200
        answers.append(r.json())
    # the right guess and the wrong ones get the same answer: only the signature was judged
    assert answers[0] == answers[1] == answers[2]
    assert answers[0]["valid"] is False and answers[0]["problems"] == ["bad_signature"]
    assert answers[0]["status"] is None and "matches_record" not in answers[0]["checks"]
    # the good document still verifies in full
    ok = hub.client.post("/api/v1/verify", json={"document": signed}).json()
    assert ok["valid"] is True and ok["checks"]["matches_record"] is True


def test_public_verify_is_rate_limited(make_api_hub: ApiHubFactory) -> None:
    hub = make_api_hub(public_verify_rate_limit=5)
    ident = issuing.certificates_of(hub.engine, USCC[0], CERT_TYPE)[0]["identifier"]
    codes = [hub.client.get(f"/api/v1/certificates/{ident}/verify").status_code for _ in range(5)]
    assert codes == [200] * 5
    r = hub.client.get(f"/api/v1/certificates/{ident}/verify")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    r = hub.client.post("/api/v1/verify", json={"qr": "SH1.x.y.z"})
    assert r.status_code == 429
    # another client address has its own budget
    other = type(hub.client)(hub.client.app, client=("203.0.113.9", 5000))
    assert other.get(f"/api/v1/certificates/{ident}/verify").status_code == 200


# ---- 3. cursors are opaque and tamper-proof ------------------------------------------------


def test_cursor_reveals_no_ungranted_key_and_cannot_be_forged(hub: ApiHub) -> None:
    a = apply(hub, "企业开办", "RSJ-PEN", fields=["amount"])
    assert a["status"] == "approved"
    h = hub.as_app("企业开办")
    r = hub.client.get(
        "/api/v1/datasets/RSJ-PEN/records", params={"subject": CITIZENS[0], "limit": 1}, headers=h
    )
    assert r.status_code == 200, r.text
    page = r.json()
    cursor = page["next_cursor"]
    assert cursor and page["items"] == [{"amount": 1200}]
    text = dump(r).replace(str(r.request.url), "")
    for value in ("2026-09", "2026-10", CITIZENS[0], mask("citizen_id", CITIZENS[0])):
        assert value not in text
    nxt = hub.client.get(
        "/api/v1/datasets/RSJ-PEN/records",
        params={"subject": CITIZENS[0], "limit": 1, "cursor": cursor},
        headers=h,
    )
    assert nxt.status_code == 200 and nxt.json()["count"] == 1 and nxt.json()["next_cursor"] is None
    # a changed character, another subject, another app: refused alike
    flipped = cursor[:10] + ("A" if cursor[10] != "A" else "B") + cursor[11:]
    for params, headers in (
        ({"subject": CITIZENS[0], "cursor": flipped}, h),
        ({"subject": CITIZENS[1], "cursor": cursor}, h),
    ):
        bad = hub.client.get("/api/v1/datasets/RSJ-PEN/records", params=params, headers=headers)
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_cursor"
    apply(hub, "不动产登记", "RSJ-PEN", fields=["amount"])
    other = hub.client.get(
        "/api/v1/datasets/RSJ-PEN/records",
        params={"subject": CITIZENS[0], "cursor": cursor},
        headers=hub.as_app("不动产登记"),
    )
    assert other.status_code == 400 and other.json()["error"]["code"] == "bad_cursor"
    # the old plain form (base64 JSON of the key) is not accepted
    plain = base64.urlsafe_b64encode(json.dumps([CITIZENS[0], "2026-09"]).encode()).decode().rstrip("=")
    old = hub.client.get(
        "/api/v1/datasets/RSJ-PEN/records", params={"subject": CITIZENS[0], "cursor": plain}, headers=h
    )
    assert old.status_code == 400


# ---- 4. the open-data download does not tell which datasets exist ----------------------------


def test_download_answers_alike_for_unknown_closed_and_unshared(hub: ApiHub) -> None:
    answers = {}
    for code in ("NO-SUCH-1", "SCJ-LIC", "SCJ-SECRET", "GAJ-ID"):
        r = hub.client.get(f"/api/v1/datasets/{code}/download")
        body = r.json()
        body["error"]["message"] = body["error"]["message"].replace(code, "X")
        body["error"]["message_zh"] = body["error"]["message_zh"].replace(code, "X")
        answers[code] = (r.status_code, body)
        # the audit keeps the real reason
        assert hub.last_audit()["status"] == 404
    assert len({json.dumps(v, sort_keys=True) for v in answers.values()}) == 1
    assert answers["SCJ-LIC"][0] == 404
    reasons = [r["reason"] for r in audit_rows(hub)[-4:]]
    assert reasons == ["dataset_not_found", "not_open", "not_shared", "not_open"]


# ---- 5. revocation sticks; one grant per app and dataset; one rate budget --------------------


def test_owner_revocation_blocks_automatic_regrant(hub: ApiHub) -> None:
    a = apply(hub, "企业开办", "SCJ-OPEN", fields=["uscc"])
    assert a["status"] == "approved"
    r = hub.client.post(
        f"/api/v1/grants/{a['grant_id']}/revoke",
        json={"reason": "超范围使用"},
        headers=hub.as_staff("scj_approver"),
    )
    assert r.status_code == 200, r.text
    again = apply(hub, "企业开办", "SCJ-OPEN")  # every field, wider than before
    assert again["status"] == "pending" and again["grant_id"] is None
    rec = hub.client.get(
        "/api/v1/datasets/SCJ-OPEN/records", params={"uscc": USCC[0]}, headers=hub.as_app("企业开办")
    )
    assert rec.status_code == 403 and rec.json()["error"]["code"] == "application_pending"
    # the owner decides; from then on the owner decides this app's applications for the dataset
    approve(hub, again["id"], "scj_approver")
    assert (
        hub.client.get(
            "/api/v1/datasets/SCJ-OPEN/records", params={"uscc": USCC[0]}, headers=hub.as_app("企业开办")
        ).status_code
        == 200
    )
    assert apply(hub, "企业开办", "SCJ-OPEN", fields=["uscc"])["status"] == "pending"


def test_an_app_giving_up_its_grant_may_apply_again_automatically(hub: ApiHub) -> None:
    a = apply(hub, "企业开办", "SCJ-OPEN", fields=["uscc"])
    r = hub.client.post(
        f"/api/v1/grants/{a['grant_id']}/revoke", json={"reason": "不再需要"}, headers=hub.as_app("企业开办")
    )
    assert r.status_code == 200, r.text
    assert apply(hub, "企业开办", "SCJ-OPEN", fields=["uscc"])["status"] == "approved"


def test_owner_decided_grant_is_not_widened_automatically(hub: ApiHub) -> None:
    a = apply(hub, "企业开办", "SCJ-OPEN", fields=["uscc", "contact_mobile"], clear_fields=["contact_mobile"])
    approve(hub, a["id"], "scj_approver", fields=["uscc"], clear_fields=[], rate_limit=5)
    wider = apply(hub, "企业开办", "SCJ-OPEN")
    assert wider["status"] == "pending"


def test_rate_budget_follows_app_and_dataset_not_the_grant(make_api_hub: ApiHubFactory) -> None:
    hub = make_api_hub(default_rate_limit=3)
    h = hub.as_app("企业开办")

    def call() -> int:
        return hub.client.get(
            "/api/v1/datasets/SCJ-OPEN/records", params={"uscc": USCC[0]}, headers=h
        ).status_code

    assert apply(hub, "企业开办", "SCJ-OPEN", fields=["uscc"])["status"] == "approved"
    assert [call() for _ in range(3)] == [200, 200, 200]
    assert call() == 429
    assert apply(hub, "企业开办", "SCJ-OPEN", fields=["uscc"])["status"] == "approved"  # a new grant
    assert call() == 429


def test_one_active_grant_per_app_and_dataset_is_enforced_by_the_database(hub: ApiHub) -> None:
    a = apply(hub, "企业开办", "SCJ-OPEN", fields=["uscc"])
    g = tables.grants
    with hub.engine.connect() as conn:
        row = dict(conn.execute(sa.select(g).where(g.c.id == a["grant_id"])).one()._mapping)
    row.pop("id")
    with pytest.raises(sa.exc.IntegrityError), hub.engine.begin() as conn:
        conn.execute(g.insert().values(**row))


# ---- 6. token keys, lifetimes, disabled apps -------------------------------------------------


def _mint(hub: ApiHub, kid: str, *, iat: int, exp: int, sub: str, gen: int = 1) -> str:
    from cryptography.hazmat.primitives import serialization

    pem = (hub.keys.keys_dir / f"{kid}.pem").read_bytes()
    private = serialization.load_pem_private_key(pem, password=None)
    s = hub.settings
    claims = {
        "iss": s.token_issuer,
        "aud": s.token_audience,
        "sub": sub,
        "kind": "app",
        "gen": gen,
        "iat": iat,
        "nbf": iat,
        "exp": exp,
        "jti": f"j{iat}{exp}",
    }
    return jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": kid})  # type: ignore[arg-type]


def test_retired_token_key_stops_verifying_after_the_longest_token_life(hub: ApiHub) -> None:
    cid, _ = hub.apps["企业开办"]
    old = hub.keys.active("token").kid
    hub.keys.rotate("token")
    now = int(dt.datetime.now(dt.UTC).timestamp())
    fresh = _mint(hub, old, iat=now, exp=now + 60, sub=cid)
    # just retired: tokens it signed are still honoured for their short life
    assert hub.client.get("/api/v1/grants", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200
    t = tables.signing_keys
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=hub.settings.token_ttl_seconds + 120)
    with hub.engine.begin() as conn:
        conn.execute(t.update().where(t.c.kid == old).values(retired_at=long_ago))
    stolen = _mint(hub, old, iat=now, exp=now + 60, sub=cid)
    hub.client.app.state.hub.keys.forget_cached_metadata()  # what the periodic refresh does
    for tok in (stolen, fresh):
        r = hub.client.get("/api/v1/grants", headers={"Authorization": f"Bearer {tok}"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token", r.text
    # still published in the JWKS: certificates and old audit trails verify against it
    assert old in [k["kid"] for k in hub.client.get("/api/v1/keys").json()["keys"]]


def test_token_living_longer_than_the_configured_lifetime_is_refused(hub: ApiHub) -> None:
    cid, _ = hub.apps["企业开办"]
    kid = hub.keys.active("token").kid
    now = int(dt.datetime.now(dt.UTC).timestamp())
    decade = _mint(hub, kid, iat=now, exp=now + 10 * 365 * 86400, sub=cid)
    r = hub.client.get("/api/v1/grants", headers={"Authorization": f"Bearer {decade}"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"


def test_tokens_of_a_disabled_app_stay_dead_after_reenabling(hub: ApiHub) -> None:
    cid, _ = hub.apps["企业开办"]
    token = hub.app_token("企业开办")
    app_registry.set_status(hub.engine, cid, "disabled")
    app_registry.set_status(hub.engine, cid, "active")
    r = hub.client.get("/api/v1/grants", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    hub.tokens.clear()
    assert hub.client.get("/api/v1/grants", headers=hub.as_app("企业开办")).status_code == 200


def test_staff_tokens_stay_dead_after_reenabling(hub: ApiHub) -> None:
    token = hub.staff_token("scj_auditor")
    staff.set_status(hub.engine, "scj_auditor", "disabled")
    staff.set_status(hub.engine, "scj_auditor", "active")
    r = hub.client.get("/api/v1/audit", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


# ---- 7. audit gaps ---------------------------------------------------------------------------


def test_subject_view_and_certificate_list_reach_the_owners_auditor(hub: ApiHub) -> None:
    grant(hub, "不动产登记", "GAJ-ID", ["gender"])
    h = hub.as_app("不动产登记")
    assert hub.client.get(f"/api/v1/subjects/{CITIZENS[0]}", headers=h).status_code == 200
    view_rec = hub.last_audit()
    assert view_rec["datasets"] == {"GAJ-ID": 2}
    assert hub.client.get(f"/api/v1/subjects/{CITIZENS[0]}/certificates", headers=h).status_code == 200
    list_rec = hub.last_audit()
    assert list_rec["datasets"] == {"GAJ-ID": 1}
    seen = hub.client.get("/api/v1/audit", params={"limit": 1000}, headers=hub.as_staff("gaj_auditor")).json()
    seqs = {i["seq"] for i in seen["items"]}
    assert {view_rec["seq"], list_rec["seq"]} <= seqs
    # and not to another department's auditor
    other = hub.client.get(
        "/api/v1/audit", params={"limit": 1000}, headers=hub.as_staff("scj_auditor")
    ).json()
    assert view_rec["seq"] not in {i["seq"] for i in other["items"]}
    from catalog import audit

    assert audit.verify(hub.engine).ok


def test_refused_and_empty_lookups_record_what_was_asked(hub: ApiHub) -> None:
    h = hub.as_app("不动产登记")
    r = hub.client.get("/api/v1/datasets/GAJ-ID/records", params={"subject": CITIZENS[2]}, headers=h)
    assert r.status_code == 403
    rec = hub.last_audit()
    assert rec["subject"] == CITIZENS[2] and rec["dataset_code"] == "GAJ-ID" and rec["reason"] == "no_grant"
    r = hub.client.get("/api/v1/datasets/GAJ-ID/records", params={"id_no": CITIZENS[1]}, headers=h)
    assert r.status_code == 403
    assert json.loads(hub.last_audit()["query"]) == {"id_no": CITIZENS[1]}
    grant(hub, "不动产登记", "GAJ-ID", ["gender"])
    missing = "110101199003070019"
    r = hub.client.get("/api/v1/datasets/GAJ-ID/records", params={"id_no": missing}, headers=h)
    assert r.status_code == 200 and r.json()["count"] == 0
    rec = hub.last_audit()
    assert json.loads(rec["query"]) == {"id_no": missing} and rec["row_count"] == 0 and rec["fields"] == []
    ident = issuing.certificates_of(hub.engine, CITIZENS[0], ID_CARD_TYPE)[0]["identifier"]
    hub.client.get(f"/api/v1/certificates/{ident}", headers=hub.as_app("企业开办"))
    assert hub.last_audit()["certificate_id"] == ident


def test_authenticated_422_and_405_are_recorded_as_the_app(hub: ApiHub) -> None:
    cid, _ = hub.apps["企业开办"]
    h = hub.as_app("企业开办")
    r = hub.client.get("/api/v1/datasets/SCJ-OPEN/records", params={"limit": "many"}, headers=h)
    assert r.status_code == 422
    rec = hub.last_audit()
    assert (rec["actor_kind"], rec["app_id"]) == ("app", cid)
    assert hub.client.delete("/api/v1/datasets", headers=h).status_code == 405
    rec = hub.last_audit()
    assert (rec["actor_kind"], rec["app_id"]) == ("app", cid)


def test_request_ids_are_the_hubs_own(hub: ApiHub) -> None:
    given = {"X-Request-Id": "shared-id-1"}
    r1 = hub.client.get("/api/v1/grants", headers={**hub.as_app("企业开办"), **given})
    a = hub.last_audit()
    r2 = hub.client.get("/api/v1/grants", headers={**hub.as_app("不动产登记"), **given})
    b = hub.last_audit()
    assert a["request_id"] != b["request_id"]
    assert "shared-id-1" not in (a["request_id"], b["request_id"])
    assert r1.headers["x-request-id"] == a["request_id"] and r2.headers["x-request-id"] == b["request_id"]


def test_chinese_purpose_headers_are_stored_as_sent(hub: ApiHub) -> None:
    h = hub.as_app("企业开办")
    h["X-End-User-Id"] = "窗口人员张伟".encode()  # type: ignore[assignment]  # raw UTF-8 bytes on the wire
    h["X-Case-Number"] = "QYKB-2026-000777"
    hub.client.get("/api/v1/datasets/SCJ-OPEN/records", params={"uscc": USCC[0]}, headers=h)
    assert hub.last_audit()["end_user"] == "窗口人员张伟"


def test_placeholder_purposes_are_refused(hub: ApiHub) -> None:
    apply(hub, "企业开办", "RSJ-PEN", fields=["amount"])
    base = {"Authorization": f"Bearer {hub.app_token('企业开办')}"}
    for end_user, case in (("-", "QYKB-2026-000123"), ("officer-1", "-"), ("n/a", "x"), ("无", "无")):
        r = hub.client.get(
            "/api/v1/datasets/RSJ-PEN/records",
            params={"subject": CITIZENS[0]},
            headers={**base, "X-End-User-Id": end_user.encode(), "X-Case-Number": case.encode()},
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "purpose_invalid", (end_user, case)


def test_case_number_format_is_configurable(make_api_hub: ApiHubFactory) -> None:
    hub = make_api_hub(purpose_case_number_pattern=r"^QYKB-\d{4}-\d{6}$")
    apply(hub, "企业开办", "RSJ-PEN", fields=["amount"])
    base = {"Authorization": f"Bearer {hub.app_token('企业开办')}", "X-End-User-Id": "officer-7"}
    for case, status in (("QYKB-2026-000123", 200), ("BDC-2026-0042", 400)):
        r = hub.client.get(
            "/api/v1/datasets/RSJ-PEN/records",
            params={"subject": CITIZENS[0]},
            headers={**base, "X-Case-Number": case},
        )
        assert r.status_code == status, r.text


# ---- 8. no unhandled 500s --------------------------------------------------------------------


def test_edge_inputs_get_4xx_not_500(hub: ApiHub) -> None:
    h = hub.as_staff("hub_admin")
    r = hub.client.get("/api/v1/audit", params={"since": "9999-12-31T23:59:59.999999-23:59"}, headers=h)
    assert r.status_code == 400, r.text
    r = hub.client.get("/api/v1/audit", params={"until": "0001-01-01T00:00:00+23:59"}, headers=h)
    assert r.status_code == 400, r.text
    app_h = {**hub.as_app("企业开办"), "Content-Type": "application/json"}
    for raw in (
        '{"dataset":"SCJ-OPEN","purpose":NaN,"legal_basis":"x"}',
        '{"dataset":"SCJ-OPEN","purpose":"\\ud800","legal_basis":"x"}',
        '{"dataset":"SCJ-OPEN","purpose":"ok","legal_basis":"\\udfff\\ud800"}',
        '{"dataset":"SCJ-OPEN","purpose":Infinity,"legal_basis":"x"}',
    ):
        r = hub.client.post("/api/v1/applications", content=raw, headers=app_h)
        assert 400 <= r.status_code < 500, (raw, r.status_code, r.text)


# ---- 9. resource limits (the in-app ones; the server's own are in test_api_server_limits) ------


def test_large_bodies_are_refused_before_they_are_read(make_api_hub: ApiHubFactory) -> None:
    hub = make_api_hub(api_max_body_bytes=64 * 1024)
    r = hub.client.post("/api/v1/verify", content=b"{" + b" " * (1024 * 1024) + b"}")
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    assert hub.last_audit()["reason"] == "body_too_large"

    def chunks() -> Any:
        for _ in range(100):
            yield b" " * 4096

    r = hub.client.post("/api/v1/verify", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_many_query_parameters_are_refused_at_once(hub: ApiHub) -> None:
    params = [(f"p{i}", "1") for i in range(5000)]
    r = hub.client.get("/api/v1/datasets", params=params)
    assert r.status_code == 400 and r.json()["error"]["code"] == "too_many_parameters"


def test_password_guessing_is_throttled_per_address_not_per_account(hub: ApiHub) -> None:
    staff.create_staff(hub.engine, "victim", "SCJ", ["auditor"], PASSWORD)
    attacker = type(hub.client)(hub.client.app, client=("198.51.100.7", 4000))
    codes = [
        attacker.post(
            "/api/v1/token",
            data={"grant_type": "password", "username": "victim", "password": "wrong-guess-xx"},
        ).status_code
        for _ in range(12)
    ]
    assert codes[-1] == 429 and codes[0] == 400
    # the victim, from its own address, still signs in
    r = hub.client.post(
        "/api/v1/token", data={"grant_type": "password", "username": "victim", "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    # fresh user names from one address are throttled too
    sprayer = type(hub.client)(hub.client.app, client=("198.51.100.8", 4000))
    started = time.monotonic()
    codes = [
        sprayer.post(
            "/api/v1/token", data={"grant_type": "password", "username": f"u{i}", "password": "x" * 12}
        ).status_code
        for i in range(40)
    ]
    # GCRA: the budget refills (one call per 60/limit s) while the argon2 checks run, so as many
    # more pass as refilled during the loop: more on a loaded machine, never unboundedly many
    limit = hub.settings.login_rate_limit_per_address
    refilled = int((time.monotonic() - started) * limit / 60)
    assert 429 in codes and limit <= codes.index(429) <= limit + refilled + 1


def test_open_downloads_are_rate_limited(make_api_hub: ApiHubFactory) -> None:
    hub = make_api_hub(open_download_rate_limit=2)
    codes = [hub.client.get("/api/v1/datasets/SCJ-OPEN/download").status_code for _ in range(3)]
    assert codes == [200, 200, 429]


# ---- 10. logs and the address mask ----------------------------------------------------------


def test_address_mask_keeps_only_the_district_or_street() -> None:
    assert mask("address", "浙江省杭州市西湖区文三路一百零八号七幢") == "浙江省杭州市西湖区****"
    assert mask("address", "浙江省杭州市上城区清波街道河坊街三十九号") == "浙江省杭州市上城区清波街道****"
    assert mask("address", "西湖区文三路100号3幢") == "西湖区****"
    assert mask("address", "余杭区良渚镇古城路8号") == "余杭区良渚镇****"
    assert mask("address", "文三路100号3幢") == "****"
    assert mask("address", "Room 5, 100 Wensan Road") == "****"
    for raw in ("浙江省杭州市西湖区文三路一百零八号七幢", "杭州市拱墅区湖墅南路两百二十二号"):
        assert "路" not in mask("address", raw) and "号" not in mask("address", raw)
