"""A leaked signing key is withdrawn (密钥撤销): the attacker holding it forges certificates,
copies and QR codes with any date written in them; none verifies. What the hub itself signed
before the withdrawal time still verifies; what it signed after fails until re-signed. The
JWKS and every verify answer say the key's state. A withdrawn token key verifies no token."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from catalog.auth.keys import KeyStore, SigningKey
from catalog.certificates import signing
from catalog.db import tables
from tests.catalog.api.test_access import apply, decide
from tests.catalog.api_hub import USCC, ApiHub
from tests.catalog.conftest import ApiHubFactory

UTC = dt.UTC


@pytest.fixture
def hub(make_api_hub: ApiHubFactory) -> ApiHub:
    h = make_api_hub()
    a = apply(h, "企业开办", "SCJ-LIC", clear_fields=["legal_rep"])
    r = decide(h, a["id"], decision="approve")
    assert r.status_code == 200, r.text
    return h


def _keys(hub: ApiHub) -> KeyStore:
    """The API process's own key store (its cache is what verification reads)."""
    return hub.client.app.state.hub.keys  # type: ignore[no-any-return]


def _ident(hub: ApiHub, uscc: str = USCC[0]) -> str:
    with hub.engine.connect() as conn:
        return str(
            conn.execute(
                sa.select(tables.certificates.c.identifier).where(tables.certificates.c.holder_id == uscc)
            ).scalar_one()
        )


def _signed(hub: ApiHub, ident: str) -> dict[str, Any]:
    r = hub.client.get(f"/api/v1/certificates/{ident}", headers=hub.as_app("企业开办"))
    assert r.status_code == 200, r.text
    return r.json()["signed"]  # type: ignore[no-any-return]


def _copy(hub: ApiHub, ident: str) -> dict[str, Any]:
    r = hub.client.post(
        f"/api/v1/certificates/{ident}/copies",
        json={"reason": "办理企业开办", "valid_days": 7},
        headers=hub.as_app("企业开办"),
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _verify(hub: ApiHub, **body: Any) -> dict[str, Any]:
    r = hub.client.post("/api/v1/verify", json=body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _stolen(hub: ApiHub, kid: str) -> SigningKey:
    """What the attacker has: the private key file, read from the hub's keys folder."""
    pem = (Path(hub.client.app.state.hub.keys.keys_dir) / f"{kid}.pem").read_bytes()
    private = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(private, Ed25519PrivateKey)
    return SigningKey(kid=kid, purpose="certificate", private_key=private, public_key=private.public_key())


def _withdraw(hub: ApiHub, kid: str, since: dt.datetime) -> dict[str, Any]:
    return _keys(hub).withdraw(kid, since=since, reason="私钥文件泄露", by="test")


def _refused_alone(answer: dict[str, Any], *secrets_: str) -> None:
    """A forged document gets the signature check and the key's state, nothing about records."""
    assert answer["valid"] is False and answer["problems"] == ["key_withdrawn"]
    assert answer["checks"] == {"signature": False} and answer["status"] is None
    assert answer["key"]["status"] == "withdrawn" and answer["key"]["withdrawn_since"]
    text = json.dumps(answer, ensure_ascii=False)
    for value in secrets_:
        assert value not in text


def test_what_the_hub_signed_before_still_verifies_and_forgeries_do_not(hub: ApiHub) -> None:
    ident = _ident(hub)
    signed = _signed(hub, ident)
    copy = _copy(hub, ident)
    kid = signed["signature"]["kid"]
    assert copy["document"]["signature"]["kid"] == kid
    since = dt.datetime.now(UTC) + dt.timedelta(seconds=1)
    # the clock moves on past `since` before anything else is signed
    done = _keys(hub).withdraw(kid, since=since - dt.timedelta(seconds=1), reason="私钥文件泄露", by="test")
    assert done["new_active_kid"] and done["new_active_kid"] != kid

    for answer in (
        hub.client.get(f"/api/v1/certificates/{ident}/verify").json(),
        _verify(hub, document=signed),
        _verify(hub, document=copy["document"]),
        _verify(hub, qr=copy["qr"]),
    ):
        assert answer["valid"] is True, answer
        state = {"kid": kid, "status": "withdrawn", "withdrawn_since": done["withdrawn_since"]}
        assert answer["key"] == state

    thief = _stolen(hub, kid)
    # (a) a certificate with a changed face, signed with the leaked key
    cert = {**signed["certificate"], "face": {**signed["certificate"]["face"], "capital": "99999.00"}}
    forged = {"certificate": cert, "signature": {"alg": "EdDSA", "kid": kid, "value": ""}}
    forged["signature"]["value"] = signing.b64url(thief.sign(signing.canonical_json(cert)))
    _refused_alone(_verify(hub, document=forged), "张三丰", "甲公司")
    # the same bytes the hub signed, re-signed by the thief, are the hub's signature (Ed25519 is
    # deterministic) — and that is the only thing that still passes
    assert _verify(hub, document=signed)["valid"] is True

    # (b) a copy backdated to long before the leak, under a copy id the hub never issued
    ann = {**copy["document"]["annotation"], "copy_id": "cp-" + secrets.token_hex(8)}
    ann["issued_at"], ann["expires_at"] = "2020-01-01T00:00:00Z", "2099-01-01T00:00:00Z"
    backdated = signing.make_copy(
        thief,
        copy["document"]["certificate"],
        **{k: ann[k] for k in ("copy_id", "app_id", "app_name", "reason", "end_user", "case_number")},
        issued_at=dt.datetime(2020, 1, 1, tzinfo=UTC),
        expires_at=dt.datetime(2099, 1, 1, tzinfo=UTC),
    )
    _refused_alone(_verify(hub, document=backdated), "张三丰")
    # ... and under the copy id of a real copy, stretched to a later expiry
    stretched = signing.make_copy(
        thief,
        copy["document"]["certificate"],
        **{
            k: copy["document"]["annotation"][k]
            for k in ("copy_id", "app_id", "app_name", "reason", "end_user", "case_number")
        },
        issued_at=dt.datetime.fromisoformat(copy["document"]["annotation"]["issued_at"]),
        expires_at=dt.datetime(2099, 1, 1, tzinfo=UTC),
    )
    _refused_alone(_verify(hub, document=stretched))

    # (c) QR payloads: a real copy id with a later expiry, a made-up copy id, no copy id
    row = {**signed["certificate"], "number": signed["certificate"]["number"]}
    for copy_id, expires in (
        (copy["copy_id"], dt.datetime(2099, 1, 1, tzinfo=UTC)),
        ("cp-" + secrets.token_hex(8), dt.datetime.now(UTC) + dt.timedelta(days=1)),
        (None, dt.datetime.now(UTC) + dt.timedelta(days=1)),
    ):
        qr = signing.qr_payload(thief, row, copy_id=copy_id, expires_at=expires)
        answer = _verify(hub, qr=qr)
        _refused_alone(answer)
        assert answer["identifier"] is None


def test_what_was_signed_after_since_fails_until_re_signed(hub: ApiHub, tmp_path: Path) -> None:
    ident = _ident(hub)
    copy = _copy(hub, ident)
    kid = copy["document"]["signature"]["kid"]
    # the leak is older than anything the key signed here
    _withdraw(hub, kid, dt.datetime.now(UTC) - dt.timedelta(days=1))
    stored = hub.client.get(f"/api/v1/certificates/{ident}/verify").json()
    assert stored["valid"] is False and "key_withdrawn" in stored["problems"]
    assert stored["checks"]["signature"] is False and stored["key"]["status"] == "withdrawn"
    _refused_alone(_verify(hub, document=copy["document"]))
    _refused_alone(_verify(hub, qr=copy["qr"]))

    # the operator re-signs: the stored record is the truth, only the signature changes
    runner = CliRunner()
    from sharehub.cli.main import app
    from sharehub.settings import get_settings

    env = {"SHAREHUB_VAR_DIR": str(tmp_path / "var")}
    get_settings.cache_clear()
    try:
        out = runner.invoke(app, ["keys", "sign-missing"], env=env)
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 0, out.output
    with hub.engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(tables.certificates)).scalar_one()
    assert f"signed {total} certificate(s)" in out.output
    again = hub.client.get(f"/api/v1/certificates/{ident}/verify").json()
    assert again["valid"] is True and again["key"]["status"] == "active" and again["key"]["kid"] != kid
    fresh = _signed(hub, ident)
    assert fresh["signature"]["kid"] == again["key"]["kid"]
    assert _verify(hub, document=fresh)["valid"] is True
    # copies handed out under the leaked key stay refused; a new copy verifies
    _refused_alone(_verify(hub, document=copy["document"]))
    assert _verify(hub, qr=_copy(hub, ident)["qr"])["valid"] is True


def test_re_signing_everything_retires_the_leaked_key_for_good(hub: ApiHub) -> None:
    from catalog.certificates import issuing

    ident = _ident(hub)
    signed = _signed(hub, ident)
    kid = signed["signature"]["kid"]
    _withdraw(hub, kid, dt.datetime.now(UTC))
    keys = _keys(hub)
    withdrawn = {kid: keys.withdrawn_since(kid)}
    assert issuing.sign_missing(hub.engine, keys.active("certificate"), withdrawn=withdrawn) == 0
    assert _verify(hub, document=signed)["valid"] is True  # signed before: still trusted
    active = keys.active("certificate")
    n = issuing.sign_missing(hub.engine, active, withdrawn=withdrawn, all_by_withdrawn=True)
    assert n == 3
    # now nothing the leaked key ever signed verifies, not even the hub's own old documents
    _refused_alone(_verify(hub, document=signed))
    assert hub.client.get(f"/api/v1/certificates/{ident}/verify").json()["valid"] is True


def test_jwks_says_which_key_is_withdrawn_and_since_when(hub: ApiHub) -> None:
    kid = _signed(hub, _ident(hub))["signature"]["kid"]
    since = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    done = _withdraw(hub, kid, since)
    assert done["withdrawn_since"] == "2026-12-01T00:00:00Z"
    for path in ("/api/v1/keys", "/.well-known/jwks.json"):
        keys = {k["kid"]: k for k in hub.client.get(path).json()["keys"]}
        assert keys[kid]["status"] == "withdrawn" and keys[kid]["withdrawn_since"] == "2026-12-01T00:00:00Z"
        active = [k for k in keys.values() if k["purpose"] == "certificate" and k["status"] == "active"]
        assert len(active) == 1 and active[0].get("withdrawn_since") is None


def test_another_process_learns_of_the_withdrawal_within_the_cache_time(hub: ApiHub) -> None:
    ident = _ident(hub)
    kid = _signed(hub, ident)["signature"]["kid"]
    assert hub.client.get(f"/api/v1/certificates/{ident}/verify").json()["key"]["status"] == "active"
    # the CLI on the hub's machine: its own key store, the same DB and keys folder
    other = KeyStore(hub.engine, _keys(hub).keys_dir)
    other.withdraw(kid, since=dt.datetime.now(UTC) - dt.timedelta(days=1), reason="泄露", by="cli:ops")
    _keys(hub).forget_cached_metadata()  # what METADATA_TTL_S seconds do anyway
    answer = hub.client.get(f"/api/v1/certificates/{ident}/verify").json()
    assert answer["valid"] is False and answer["key"]["status"] == "withdrawn"


def test_a_withdrawn_token_key_verifies_no_token(hub: ApiHub) -> None:
    headers = hub.as_app("企业开办")
    assert hub.client.get("/api/v1/grants", headers=headers).status_code == 200
    token = headers["Authorization"].split()[1]
    import jwt

    kid = jwt.get_unverified_header(token)["kid"]
    done = _keys(hub).withdraw(kid, since=dt.datetime.now(UTC), reason="token key leaked", by="test")
    assert done["purpose"] == "token" and done["new_active_kid"]
    r = hub.client.get("/api/v1/grants", headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
    hub.tokens.clear()  # a new token, signed with the new active key, works
    assert hub.client.get("/api/v1/grants", headers=hub.as_app("企业开办")).status_code == 200


@pytest.mark.parametrize(
    ("kid", "since", "reason", "message"),
    [
        ("cert-nope", dt.datetime(2026, 1, 1, tzinfo=UTC), "泄露", "no signing key"),
        (None, dt.datetime.now(UTC) + dt.timedelta(days=1), "泄露", "in the future"),
        (None, dt.datetime(2026, 1, 1, tzinfo=UTC), "  ", "needs a reason"),
    ],
)
def test_bad_withdrawals_are_refused_and_change_nothing(
    hub: ApiHub, kid: str | None, since: dt.datetime, reason: str, message: str
) -> None:
    keys = _keys(hub)
    real = keys.active("certificate").kid
    with pytest.raises(ValueError, match=message):
        keys.withdraw(kid or real, since=since, reason=reason, by="test")
    assert keys.active("certificate").kid == real
    assert all(k["status"] != "withdrawn" for k in keys.list_keys())


def test_a_withdrawal_may_only_move_earlier(hub: ApiHub) -> None:
    keys = _keys(hub)
    kid = keys.active("certificate").kid
    first = keys.withdraw(kid, since=dt.datetime(2026, 6, 1, tzinfo=UTC), reason="泄露", by="a")
    with pytest.raises(ValueError, match="already withdrawn"):
        keys.withdraw(kid, since=dt.datetime(2026, 7, 1, tzinfo=UTC), reason="later", by="b")
    again = keys.withdraw(kid, since=dt.datetime(2026, 5, 1, tzinfo=UTC), reason="更早", by="b")
    assert first["new_active_kid"] and again["new_active_kid"] is None
    (row,) = [k for k in keys.list_keys() if k["kid"] == kid]
    assert row["withdrawn_since"] == dt.datetime(2026, 5, 1, tzinfo=UTC)
    assert row["withdrawn_reason"] == "泄露; 更早"


def test_a_restore_check_reports_signatures_made_after_a_withdrawal(hub: ApiHub) -> None:
    """The backup's restore check does not count a withdrawn key's post-leak signatures as
    verified (found by a second, independent implementation of the withdrawal)."""
    from catalog.certificates import issuing
    from sharehub.backup.verify import _certificates

    kid = _signed(hub, _ident(hub))["signature"]["kid"]
    problems: list[str] = []
    assert _certificates(hub.engine, hub.settings, problems) == {
        "signatures_verified": 3,
        "signatures_failed": 0,
    }
    _withdraw(hub, kid, dt.datetime.now(UTC) - dt.timedelta(days=1))
    problems = []
    assert _certificates(hub.engine, hub.settings, problems) == {
        "signatures_verified": 0,
        "signatures_failed": 3,
    }
    assert all("key_withdrawn" in p and "sign-missing" in p for p in problems)
    keys = _keys(hub)
    issuing.sign_missing(hub.engine, keys.active("certificate"), withdrawn={kid: keys.withdrawn_since(kid)})
    assert _certificates(hub.engine, hub.settings, []) == {"signatures_verified": 3, "signatures_failed": 0}
