"""Canonical JSON, signed certificates, copies (加注件), QR payloads and the verify service."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from catalog import publishing
from catalog.api.status import status_of
from catalog.auth.keys import KeyStore, SigningKey, b64url, b64url_decode
from catalog.certificates import issuing
from catalog.certificates.canonical import canonical_json
from catalog.certificates.signing import (
    certificate_document,
    make_copy,
    parse_qr,
    qr_payload,
    sign_certificate,
    signed_certificate,
    verify_signature,
)
from catalog.certificates.verify import verify_document, verify_identifier, verify_qr
from catalog.db import tables
from catalog.db.engine import engine_for
from catalog.directory import store
from catalog.directory.model import DirectoryFile
from catalog.errors import HubError
from tests.catalog.api_hub import (
    CERT_TYPE,
    LICENCE_CERT_TYPE,
    LICENCE_DATASET,
    SCJ_DEPARTMENT,
    USCC,
    licences,
)

TYPE = CERT_TYPE
TODAY = dt.date(2026, 11, 22)
NOW = dt.datetime(2026, 11, 22, 4, 0, tzinfo=dt.UTC)
DIRECTORY = {
    "department": SCJ_DEPARTMENT,
    "datasets": [LICENCE_DATASET],
    "certificate_types": [LICENCE_CERT_TYPE],
}


class Hub:
    def __init__(self, engine: sa.Engine, keys: KeyStore) -> None:
        self.engine = engine
        self.keys = keys

    def issue(self, table: pa.Table, *, signer: SigningKey | None = None, run_id: str = "r1") -> Any:
        ds = store.get_dataset(self.engine, "SCJ-LIC")
        return issuing.issue(
            self.engine, ds.spec, ds.department, TYPE, table, run_id=run_id, today=TODAY, signer=signer
        )

    def row(self, uscc: str) -> dict[str, Any]:
        (row,) = issuing.certificates_of(self.engine, uscc)
        return row

    def set(self, identifier: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            t = tables.certificates
            conn.execute(t.update().where(t.c.identifier == identifier).values(**values))


def _hub(url: str, keys_dir: Path) -> Hub:
    engine = engine_for(url)
    publishing.publish(engine, DirectoryFile.model_validate(DIRECTORY), source_file="scj.yaml")
    return Hub(engine, KeyStore(engine, keys_dir))


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    return _hub(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path / "keys")


@pytest.fixture
def signed(hub: Hub) -> Hub:
    res = hub.issue(
        licences(["甲公司", "乙公司", "丙公司"], ["存续", "存续", "注销"]),
        signer=hub.keys.active("certificate"),
    )
    assert res.issued == 3
    return hub


# ---- canonical JSON ------------------------------------------------------------------------


def test_canonical_json_rfc8785_example() -> None:
    # RFC 8785 §3.2.2: the sample input and its canonical output
    text = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_json(json.loads(text)) == expected.encode("utf-8")


def test_canonical_json_stability() -> None:
    a = {"姓名": "张三", "b": [1, {"y": None, "x": True}], "a": "é\u2028", "n": -0.0}
    b = {"n": 0.0, "a": "é\u2028", "b": [1, {"x": True, "y": None}], "姓名": "张三"}
    assert canonical_json(a) == canonical_json(b)
    assert canonical_json(a) == '{"a":"é\u2028","b":[1,{"x":true,"y":null}],"n":0,"姓名":"张三"}'.encode()
    # members sorted by UTF-16 code units (RFC 8785), not by code points
    assert canonical_json({"\ufb33": 1, "\U0001f600": 2}) == '{"\U0001f600":2,"\ufb33":1}'.encode()
    assert canonical_json(
        {"d": dt.date(2026, 1, 2), "m": decimal.Decimal("1.50"), "f": 1.0, "t": (1, 2)}
    ) == (b'{"d":"2026-01-02","f":1,"m":"1.50","t":[1,2]}')
    assert canonical_json({"c": "\x00\x1f\t"}) == b'{"c":"\\u0000\\u001f\\t"}'
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError):
            canonical_json({"x": bad})
    with pytest.raises(TypeError):
        canonical_json({1: "int key"})
    with pytest.raises(TypeError):
        canonical_json({"x": object()})
    # integers a JCS verifier elsewhere (IEEE doubles) would re-serialise differently
    assert canonical_json({"i": 2**53 - 1}) == b'{"i":9007199254740991}'
    for big in (2**53, -(2**53), 10**20):
        with pytest.raises(ValueError):
            canonical_json({"i": big})


# ---- signing at issue and verify by identifier ---------------------------------------------


def test_issue_signs_every_certificate(signed: Hub) -> None:
    key = signed.keys.active("certificate")
    for uscc in USCC:
        row = signed.row(uscc)
        assert row["signing_kid"] == key.kid and len(b64url_decode(row["signature"])) == 64
        assert (
            verify_signature(
                signed.keys,
                certificate_document(row),
                {"alg": "EdDSA", "kid": key.kid, "value": row["signature"]},
            )
            is None
        )
    doc = certificate_document(signed.row(USCC[0]))
    assert set(doc) == {
        "identifier", "type_code", "number", "holder_id", "holder_name", "issuer_code",
        "issuer_name", "valid_from", "valid_until", "version", "face",
    }  # fmt: skip
    assert "status" not in doc and doc["valid_from"] == "2020-01-01" and doc["version"] == 1
    assert doc["face"] == {
        "uscc": USCC[0], "ent_name": "甲公司", "legal_rep": "张三丰", "capital": "100.00",
        "est_date": "2020-01-01",
    }  # fmt: skip
    ok = verify_identifier(signed.engine, signed.keys, doc["identifier"], today=TODAY)
    assert ok.valid and ok.status == "valid" and ok.problems == []
    assert ok.checks == {"signature": True, "matches_record": True, "status": True, "validity_period": True}
    assert ok.to_json() == {
        "valid": True, "identifier": doc["identifier"], "status": "valid", "checks": ok.checks,
        "problems": [], "superseded_by": None,
        "key": {"kid": signed.keys.active("certificate").kid, "status": "active"},
    }  # fmt: skip


def test_changed_face_in_the_db_fails(signed: Hub) -> None:
    row = signed.row(USCC[0])
    signed.set(row["identifier"], face={**row["face"], "legal_rep": "冒名顶替"})
    res = verify_identifier(signed.engine, signed.keys, row["identifier"], today=TODAY)
    assert not res.valid and not res.checks["signature"]
    assert "bad_signature" in res.problems and "record_changed" in res.problems
    # a consistent-looking forgery (digest updated too) still fails on the signature
    changed = {**row["face"], "legal_rep": "冒名顶替"}
    signed.set(row["identifier"], face_sha256=issuing.face_digest(changed))
    res = verify_identifier(signed.engine, signed.keys, row["identifier"], today=TODAY)
    assert res.problems == ["bad_signature"] and not res.valid
    # so does a changed signed column outside the face
    other = signed.row(USCC[2])
    signed.set(other["identifier"], holder_name="别的公司")
    assert (
        "bad_signature"
        in verify_identifier(signed.engine, signed.keys, other["identifier"], today=TODAY).problems
    )


def test_status_and_validity_are_checked_online(signed: Hub) -> None:
    revoked = verify_identifier(signed.engine, signed.keys, signed.row(USCC[2])["identifier"], today=TODAY)
    assert revoked.checks["signature"] and not revoked.checks["status"]
    assert revoked.problems == ["revoked"] and revoked.status == "revoked" and not revoked.valid
    expired = verify_identifier(signed.engine, signed.keys, signed.row(USCC[1])["identifier"], today=TODAY)
    assert (
        expired.checks["signature"] and not expired.checks["validity_period"] and not expired.checks["status"]
    )
    assert expired.problems == ["expired"] and not expired.valid
    ident = signed.row(USCC[0])["identifier"]
    early = verify_identifier(signed.engine, signed.keys, ident, today=dt.date(2019, 12, 31))
    assert early.problems == ["not_yet_valid"] and not early.valid


def test_unknown_and_malformed_identifiers(signed: Hub) -> None:
    ident = signed.row(USCC[0])["identifier"]
    for bogus in ("1.2.3", ident[:-1] + ("0" if ident[-1] != "0" else "1"), ""):
        res = verify_identifier(signed.engine, signed.keys, bogus, today=TODAY)
        assert res.problems == ["unknown_certificate"] and not res.valid and res.status is None
        assert not any(res.checks.values())
    well_formed_unknown = issuing.certificate_identifier(TYPE, "11330100002482345X", 99, 1)
    res = verify_identifier(signed.engine, signed.keys, well_formed_unknown, today=TODAY)
    assert res.problems == ["unknown_certificate"]


def test_unsigned_certificates_and_sign_missing(hub: Hub) -> None:
    hub.issue(licences(["甲公司"], ["存续"]))
    ident = hub.row(USCC[0])["identifier"]
    res = verify_identifier(hub.engine, hub.keys, ident, today=TODAY)
    assert res.problems == ["unsigned"] and not res.valid
    assert issuing.sign_missing(hub.engine, hub.keys.active("certificate"), batch=1) == 1
    assert issuing.sign_missing(hub.engine, hub.keys.active("certificate")) == 0
    assert verify_identifier(hub.engine, hub.keys, ident, today=TODAY).valid


def test_reissue_signs_the_new_version_and_supersedes_the_old(signed: Hub) -> None:
    key = signed.keys.active("certificate")
    old_row = signed.row(USCC[0])
    handed_out = signed_certificate(old_row, old_row["signature"], old_row["signing_kid"])
    res = signed.issue(licences(["甲公司（更名）"], ["存续"]), signer=key, run_id="r2")
    assert (res.reissued, res.issued) == (1, 0)
    new_row = signed.row(USCC[0])
    assert new_row["version"] == 2 and new_row["signature"] != old_row["signature"]
    assert verify_identifier(signed.engine, signed.keys, new_row["identifier"], today=TODAY).valid
    old = verify_identifier(signed.engine, signed.keys, old_row["identifier"], today=TODAY)
    # an identifier alone is told that a newer version exists, not which one
    assert old.problems == ["superseded"] and old.superseded_by is None and not old.valid
    # the holder of the signed document learns the new identifier
    doc = verify_document(signed.engine, signed.keys, handed_out, now=NOW)
    assert doc.checks["signature"] and doc.problems == ["superseded"] and not doc.valid
    assert doc.superseded_by == new_row["identifier"]


def test_status_change_keeps_or_renews_the_signature(signed: Hub) -> None:
    key = signed.keys.active("certificate")
    before = signed.row(USCC[0])
    # a pure status change: the status is not signed, the signature stays
    res = signed.issue(licences(["甲公司"], ["吊销"]), signer=key, run_id="r2")
    assert res.status_changed == 1
    after = signed.row(USCC[0])
    assert after["status"] == "revoked" and after["signature"] == before["signature"]
    res = verify_identifier(signed.engine, signed.keys, after["identifier"], today=TODAY)
    assert res.checks["signature"] and res.problems == ["revoked"]
    # a status change that also moves a signed column outside the face (validity end) re-signs
    res = signed.issue(licences(["甲公司"], ["存续"], [dt.date(2030, 1, 1)]), signer=key, run_id="r3")
    assert res.status_changed == 1
    renewed = signed.row(USCC[0])
    assert renewed["valid_until"] == dt.date(2030, 1, 1) and renewed["signature"] != before["signature"]
    assert verify_identifier(signed.engine, signed.keys, renewed["identifier"], today=TODAY).valid
    # re-issued without a signer: the stale signature is dropped, not left to fail
    signed.issue(licences(["甲公司（新）"], ["存续"], [dt.date(2030, 1, 1)]), run_id="r4")
    bare = signed.row(USCC[0])
    assert bare["signature"] is None and bare["signing_kid"] is None
    assert verify_identifier(signed.engine, signed.keys, bare["identifier"], today=TODAY).problems == [
        "unsigned"
    ]


def test_certificates_signed_before_rotation_still_verify(signed: Hub) -> None:
    ident = signed.row(USCC[0])["identifier"]
    signed.keys.rotate("certificate", now=NOW)
    assert verify_identifier(signed.engine, signed.keys, ident, today=TODAY).valid


# ---- handed-out documents ------------------------------------------------------------------


def _handed_out(hub: Hub, uscc: str) -> dict[str, Any]:
    row = hub.row(uscc)
    # as a client receives it: through JSON
    return json.loads(
        json.dumps(signed_certificate(row, row["signature"], row["signing_kid"]), ensure_ascii=False)
    )


def test_handed_out_document_verifies(signed: Hub) -> None:
    doc = _handed_out(signed, USCC[0])
    assert doc["signature"]["alg"] == "EdDSA" and set(doc) == {"certificate", "signature"}
    res = verify_document(signed.engine, signed.keys, doc, now=NOW)
    assert res.valid and res.identifier == doc["certificate"]["identifier"] and res.status == "valid"
    # member order does not matter: the signature is over the canonical form
    shuffled = {
        "signature": doc["signature"],
        "certificate": dict(reversed(list(doc["certificate"].items()))),
    }
    assert verify_document(signed.engine, signed.keys, shuffled, now=NOW).valid


def test_changed_face_in_a_document_fails(signed: Hub) -> None:
    doc = _handed_out(signed, USCC[0])
    doc["certificate"]["face"]["capital"] = "100000000.00"
    res = verify_document(signed.engine, signed.keys, doc, now=NOW)
    # the signature fails, and that is all the answer says: nothing is compared with the record
    assert not res.valid and res.problems == ["bad_signature"]
    assert res.checks == {"signature": False} and res.status is None


def test_document_signed_with_a_wrong_key_fails(signed: Hub) -> None:
    row = signed.row(USCC[0])
    stranger = Ed25519PrivateKey.generate()
    outsider = SigningKey("cert-20261122-000000", "certificate", stranger, stranger.public_key())
    sig, kid = sign_certificate(outsider, row)
    res = verify_document(signed.engine, signed.keys, signed_certificate(row, sig, kid), now=NOW)
    assert res.problems == ["unknown_key"] and not res.valid and res.checks == {"signature": False}
    # a stranger's signature under the hub's kid
    impostor = SigningKey(row["signing_kid"], "certificate", stranger, stranger.public_key())
    sig, kid = sign_certificate(impostor, row)
    res = verify_document(signed.engine, signed.keys, signed_certificate(row, sig, kid), now=NOW)
    assert res.problems == ["bad_signature"]
    # a hub key of the wrong purpose (the token key) is not a certificate key
    token_key = signed.keys.active("token")
    as_cert = SigningKey(token_key.kid, "certificate", token_key.private_key, token_key.public_key)
    sig, kid = sign_certificate(as_cert, row)
    res = verify_document(signed.engine, signed.keys, signed_certificate(row, sig, kid), now=NOW)
    assert res.problems == ["not_a_certificate_key"]
    with pytest.raises(ValueError, match="certificate key"):
        sign_certificate(token_key, row)
    # wrong algorithm, garbage value
    doc = _handed_out(signed, USCC[0])
    for sig_block in ({**doc["signature"], "alg": "none"}, {**doc["signature"], "value": "!!"}, {}):
        res = verify_document(signed.engine, signed.keys, {**doc, "signature": sig_block}, now=NOW)
        assert res.problems == ["bad_signature"]


def test_revoked_and_expired_documents_fail(signed: Hub) -> None:
    res = verify_document(signed.engine, signed.keys, _handed_out(signed, USCC[2]), now=NOW)
    assert res.checks["signature"] and res.checks["matches_record"] and res.problems == ["revoked"]
    res = verify_document(signed.engine, signed.keys, _handed_out(signed, USCC[1]), now=NOW)
    assert res.checks["signature"] and "expired" in res.problems and not res.valid
    # revoked after handing out: the same document now fails
    doc = _handed_out(signed, USCC[0])
    signed.issue(licences(["甲公司"], ["吊销"]), signer=signed.keys.active("certificate"), run_id="r2")
    assert verify_document(signed.engine, signed.keys, doc, now=NOW).problems == ["revoked"]


def test_bad_document_shapes(signed: Hub) -> None:
    doc = _handed_out(signed, USCC[0])
    for bad in (
        [],
        {"certificate": doc["certificate"]},
        {"signature": doc["signature"]},
        {**doc, "signature": "x"},
        {**doc, "annotation": 1},
        {**doc, "annotation": {"expires_at": "tomorrow"}},
    ):
        with pytest.raises(HubError) as err:
            verify_document(signed.engine, signed.keys, bad, now=NOW)
        assert err.value.code == "bad_document" and status_of(err.value) == 400 and "why" in err.value.params
    # a changed identifier breaks the signature: the hub is not even asked whether it exists
    unknown = {**doc, "certificate": {**doc["certificate"], "identifier": "1.2.3"}}
    assert verify_document(signed.engine, signed.keys, unknown, now=NOW).problems == ["bad_signature"]
    # a document the hub signed, whose certificate the hub no longer holds, is unknown
    with signed.engine.begin() as conn:
        conn.execute(
            sa.delete(tables.certificates).where(
                tables.certificates.c.identifier == doc["certificate"]["identifier"]
            )
        )
    assert verify_document(signed.engine, signed.keys, doc, now=NOW).problems == ["unknown_certificate"]


# ---- copies (加注件) -------------------------------------------------------------------------


def _copy(hub: Hub, uscc: str, *, days: int = 30) -> dict[str, Any]:
    return make_copy(
        hub.keys.active("certificate"),
        certificate_document(hub.row(uscc)),
        copy_id="cp-0001",
        app_id="app-approval",
        app_name="企业开办审批系统",
        reason="办理企业变更登记",
        end_user="330100199001011234",
        case_number="ZJ-2026-000123",
        issued_at=NOW,
        expires_at=NOW + dt.timedelta(days=days),
    )


def test_copy_verifies_until_it_expires(signed: Hub) -> None:
    copy = json.loads(json.dumps(_copy(signed, USCC[0]), ensure_ascii=False))
    assert set(copy) == {"certificate", "annotation", "signature"}
    assert copy["annotation"]["expires_at"] == "2026-12-22T04:00:00+00:00"
    assert (
        copy["annotation"]["reason"] == "办理企业变更登记"
        and copy["annotation"]["app_name"] == "企业开办审批系统"
    )
    res = verify_document(signed.engine, signed.keys, copy, now=NOW + dt.timedelta(days=29))
    assert res.valid and res.checks["copy_not_expired"] and set(res.checks) == {
        "signature", "matches_record", "status", "validity_period", "copy_not_expired",
    }  # fmt: skip
    late = verify_document(signed.engine, signed.keys, copy, now=NOW + dt.timedelta(days=30))
    assert late.problems == ["copy_expired"] and late.checks["signature"] and not late.valid


def test_copy_annotation_cannot_be_changed(signed: Hub) -> None:
    copy = _copy(signed, USCC[0])
    for field, value in (
        ("expires_at", "2099-01-01T00:00:00+00:00"),
        ("reason", "别的用途"),
        ("app_id", "other"),
    ):
        changed = {**copy, "annotation": {**copy["annotation"], field: value}}
        res = verify_document(signed.engine, signed.keys, changed, now=NOW)
        assert res.problems == ["bad_signature"], field
    # the copy's signature does not pass as the certificate's own signature, nor the reverse
    cert_only = {"certificate": copy["certificate"], "signature": copy["signature"]}
    assert verify_document(signed.engine, signed.keys, cert_only, now=NOW).problems == ["bad_signature"]
    plain = _handed_out(signed, USCC[0])
    as_copy = {**plain, "annotation": copy["annotation"]}
    assert verify_document(signed.engine, signed.keys, as_copy, now=NOW).problems == ["bad_signature"]


def test_copy_of_a_revoked_certificate_fails(signed: Hub) -> None:
    copy = _copy(signed, USCC[0])
    signed.issue(licences(["甲公司"], ["注销"]), signer=signed.keys.active("certificate"), run_id="r2")
    res = verify_document(signed.engine, signed.keys, copy, now=NOW)
    assert res.problems == ["revoked"] and res.checks["signature"] and res.checks["copy_not_expired"]


# ---- QR payloads ---------------------------------------------------------------------------


def _qr(hub: Hub, uscc: str = USCC[0], days: int = 30) -> str:
    key = hub.keys.active("certificate")
    return qr_payload(key, hub.row(uscc), copy_id="cp-0001", expires_at=NOW + dt.timedelta(days=days))


def test_qr_round_trip(signed: Hub) -> None:
    payload = _qr(signed)
    prefix, claims_b64, kid, _sig = payload.split(".")
    assert prefix == "SH1" and kid == signed.keys.active("certificate").kid and len(payload) < 450
    claims = parse_qr(signed.keys, payload)
    row = signed.row(USCC[0])
    assert claims == {
        "id": row["identifier"], "v": 1, "n": USCC[0], "hn": "甲*", "fh": claims["fh"], "c": "cp-0001",
        "exp": "2026-12-22T04:00:00Z",
    }  # fmt: skip
    assert base64.urlsafe_b64decode(claims_b64 + "==") == canonical_json(claims)
    res = verify_qr(signed.engine, signed.keys, payload, now=NOW)
    assert res.valid and res.identifier == row["identifier"] and res.checks["copy_not_expired"]
    assert verify_qr(signed.engine, signed.keys, payload, now=NOW + dt.timedelta(days=31)).problems == [
        "copy_expired"
    ]


def test_qr_verifies_offline_with_the_jwks_only(signed: Hub) -> None:
    payload = _qr(signed)
    jwks = signed.keys.jwks()  # what an offline checker downloaded earlier
    prefix, claims_b64, kid, sig = payload.split(".")
    (jwk,) = [k for k in jwks["keys"] if k["kid"] == kid and k["purpose"] == "certificate"]
    public = Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
    public.verify(b64url_decode(sig), f"{prefix}.{claims_b64}.{kid}".encode())  # raises if bad


def test_qr_tampering(signed: Hub) -> None:
    payload = _qr(signed)
    prefix, claims_b64, kid, sig = payload.split(".")
    claims = json.loads(b64url_decode(claims_b64))
    longer = b64url(canonical_json({**claims, "exp": "2099-01-01T00:00:00+00:00"}))
    other_n = b64url(canonical_json({**claims, "n": USCC[1]}))
    # a changed signature character in the middle (the last one carries padding bits that a
    # lenient base64 decoder may ignore, so changing it can leave the same signature bytes)
    bent = sig[:20] + ("B" if sig[20] != "B" else "C") + sig[21:]
    for forged in (
        f"{prefix}.{longer}.{kid}.{sig}",
        f"{prefix}.{other_n}.{kid}.{sig}",
        f"{prefix}.{claims_b64}.{kid}.{bent}",
    ):
        with pytest.raises(ValueError, match="bad_signature"):
            parse_qr(signed.keys, forged)
        res = verify_qr(signed.engine, signed.keys, forged, now=NOW)
        assert res.problems == ["bad_signature"] and not res.valid
    # another certificate key of the hub under the kid: the kid is part of what is signed
    new = signed.keys.rotate("certificate", now=NOW)
    with pytest.raises(ValueError, match="bad_signature"):
        parse_qr(signed.keys, f"{prefix}.{claims_b64}.{new.kid}.{sig}")
    assert verify_qr(signed.engine, signed.keys, payload, now=NOW).valid  # retired key: still fine
    token_kid = signed.keys.active("token").kid
    assert verify_qr(
        signed.engine, signed.keys, f"{prefix}.{claims_b64}.{token_kid}.{sig}", now=NOW
    ).problems == ["not_a_certificate_key"]
    assert verify_qr(signed.engine, signed.keys, f"{prefix}.{claims_b64}.cert-x.{sig}", now=NOW).problems == [
        "unknown_key"
    ]
    for junk in ("", "SH1", "SH2.a.b.c", "SH1.a.b", f"{payload}.x"):
        with pytest.raises(ValueError, match="malformed"):
            parse_qr(signed.keys, junk)
        with pytest.raises(HubError) as err:
            verify_qr(signed.engine, signed.keys, junk, now=NOW)
        assert err.value.code == "bad_document"


def test_qr_follows_the_record(signed: Hub) -> None:
    payload = _qr(signed)
    key = signed.keys.active("certificate")
    signed.issue(licences(["甲公司"], ["吊销"]), signer=key, run_id="r2")
    assert verify_qr(signed.engine, signed.keys, payload, now=NOW).problems == ["revoked"]
    signed.issue(licences(["甲公司（更名）"], ["存续"]), signer=key, run_id="r3")
    res = verify_qr(signed.engine, signed.keys, payload, now=NOW)
    assert res.problems == ["superseded"] and res.superseded_by == signed.row(USCC[0])["identifier"]
    # the record's face changed under the same identifier: the digest in the QR no longer matches
    fresh = _qr(signed)
    row = signed.row(USCC[0])
    signed.set(row["identifier"], face={**row["face"], "capital": "1.00"})
    assert "record_changed" in verify_qr(signed.engine, signed.keys, fresh, now=NOW).problems


# ---- PostgreSQL: the same round trip through another dialect's Date and JSON types --------------


@pytest.mark.services
def test_sign_and_verify_on_postgres(hub_pg_url: str, tmp_path: Path) -> None:
    hub = _hub(hub_pg_url, tmp_path / "keys")
    key = hub.keys.active("certificate")
    hub.issue(licences(["甲公司", "乙公司", "丙公司"], ["存续", "存续", "注销"]), signer=key)
    ident = hub.row(USCC[0])["identifier"]
    assert verify_identifier(hub.engine, hub.keys, ident, today=TODAY).valid
    assert verify_document(hub.engine, hub.keys, _handed_out(hub, USCC[0]), now=NOW).valid
    assert verify_document(hub.engine, hub.keys, json.loads(json.dumps(_copy(hub, USCC[0]))), now=NOW).valid
    assert verify_qr(hub.engine, hub.keys, _qr(hub), now=NOW).valid
    # status and a signed column change together: re-signed; the dates come back as dates
    hub.issue(licences(["甲公司"], ["吊销"], [dt.date(2030, 1, 1)]), signer=key, run_id="r2")
    res = verify_identifier(hub.engine, hub.keys, ident, today=TODAY)
    assert res.problems == ["revoked"] and res.checks["signature"]
    assert verify_identifier(hub.engine, hub.keys, hub.row(USCC[2])["identifier"], today=TODAY).problems == [
        "revoked"
    ]
    hub.engine.dispose()
