"""The hub's signing keys (Ed25519, PEM files + published public halves) and access tokens (EdDSA JWTs)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import stat
import threading
from pathlib import Path

import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from catalog.auth.keys import KeyStore, KeyStoreError, SigningKey, b64url, b64url_decode, raw_public_key
from catalog.auth.tokens import TokenRejected, TokenVerifier, issue_token, verify_token
from catalog.db import tables
from catalog.db.engine import engine_for

NOW = dt.datetime(2026, 11, 22, 9, 30, tzinfo=dt.UTC)
AUD, ISS = "sharehub-api", "sharehub"
TTL = 900  # the longest token life these tests issue


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    return engine_for(f"sqlite:///{tmp_path / 'hub.db'}")


@pytest.fixture
def keys(engine: sa.Engine, tmp_path: Path) -> KeyStore:
    return KeyStore(engine, tmp_path / "keys")


def _seg(obj: dict[str, object]) -> str:
    return b64url(json.dumps(obj).encode())


# ---- keys ---------------------------------------------------------------------------------


def test_first_key_is_created_with_private_file_0600(keys: KeyStore, engine: sa.Engine) -> None:
    key = keys.active("certificate")
    assert key.kid.startswith("cert-") and key.purpose == "certificate"
    assert keys.active("certificate").kid == key.kid  # the same key again, not a new one
    pem = keys.keys_dir / f"{key.kid}.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.keys_dir.stat().st_mode) == 0o700
    loaded = serialization.load_pem_private_key(pem.read_bytes(), password=None)
    assert isinstance(loaded, Ed25519PrivateKey)
    assert raw_public_key(loaded.public_key()) == raw_public_key(key.public_key)
    assert b"PRIVATE KEY" in pem.read_bytes()
    # the DB holds only the raw public key, nothing private
    with engine.connect() as conn:
        (row,) = conn.execute(sa.select(tables.signing_keys)).all()
    assert row.kid == key.kid and row.status == "active" and row.purpose == "certificate"
    assert b64url_decode(row.public_key) == raw_public_key(key.public_key)
    private_raw = loaded.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    assert b64url(private_raw) not in repr(tuple(row)) and "PRIVATE" not in repr(tuple(row))
    assert repr(key) == f"SigningKey(kid={key.kid!r}, purpose='certificate')"  # no key material
    token_key = keys.active("token")
    assert token_key.kid.startswith("tok-") and token_key.kid != key.kid


def test_unknown_purpose_is_refused(keys: KeyStore) -> None:
    with pytest.raises(ValueError, match="unknown key purpose"):
        keys.active("email")


def test_rotate_keeps_old_key_published_and_verifying(keys: KeyStore) -> None:
    old = keys.active("certificate")
    signed_before = old.sign(b"issued before rotation")
    new = keys.rotate("certificate", now=NOW)
    assert new.kid != old.kid and new.kid.startswith("cert-20261122-")
    assert keys.active("certificate").kid == new.kid  # the new key signs from now on
    listed = {k["kid"]: k for k in keys.list_keys()}
    assert listed[old.kid]["status"] == "retired" and listed[old.kid]["retired_at"] == NOW
    assert listed[new.kid]["status"] == "active" and listed[new.kid]["created_at"] == NOW
    assert all(k["private_key_file"] for k in listed.values())
    public = KeyStore(keys.engine, keys.keys_dir).public_key(old.kid)
    assert public is not None
    public.verify(signed_before, b"issued before rotation")  # raises if it does not verify
    # rotating one purpose leaves the other alone
    tok = keys.active("token")
    keys.rotate("certificate", now=NOW)
    assert keys.active("token").kid == tok.kid


def test_jwks_shape_and_pyjwt_can_use_it(keys: KeyStore) -> None:
    cert = keys.active("certificate")
    tok = keys.active("token")
    retired = tok.kid
    tok = keys.rotate("token", now=NOW)
    jwks = keys.jwks()
    assert set(jwks) == {"keys"}
    by_kid = {k["kid"]: k for k in jwks["keys"]}
    assert set(by_kid) == {cert.kid, retired, tok.kid}
    for k in jwks["keys"]:
        assert set(k) == {"kty", "crv", "x", "kid", "use", "alg", "purpose", "status"}
        assert (k["kty"], k["crv"], k["use"], k["alg"]) == ("OKP", "Ed25519", "sig", "EdDSA")
        assert len(b64url_decode(k["x"])) == 32 and "=" not in k["x"]
    assert by_kid[cert.kid]["purpose"] == "certificate" and by_kid[tok.kid]["purpose"] == "token"
    assert by_kid[retired]["status"] == "retired" and by_kid[tok.kid]["status"] == "active"
    # a third party verifies a hub token with nothing but the published JWK
    token, _ = issue_token(keys, subject="app-1", kind="app", audience=AUD, issuer=ISS, ttl_s=300)
    jwk = jwt.PyJWK(by_kid[tok.kid])
    claims = jwt.decode(token, jwk.key, algorithms=["EdDSA"], audience=AUD, issuer=ISS)
    assert claims["sub"] == "app-1"


def test_missing_private_key_file_is_a_clear_error(engine: sa.Engine, tmp_path: Path) -> None:
    key = KeyStore(engine, tmp_path / "keys").active("certificate")
    elsewhere = KeyStore(engine, tmp_path / "other-keys")
    with pytest.raises(KeyStoreError) as err:
        elsewhere.active("certificate")
    message = str(err.value)
    assert str(tmp_path / "other-keys" / f"{key.kid}.pem") in message
    assert "sharehub keys rotate" in message
    # a wrong file under the right name is refused too, never used to sign
    (tmp_path / "other-keys").mkdir()
    (tmp_path / "other-keys" / f"{key.kid}.pem").write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(KeyStoreError, match="does not match"):
        elsewhere.active("certificate")
    # rotating makes a usable key again
    assert elsewhere.rotate("certificate").kid != key.kid


def test_public_key_cache(keys: KeyStore, engine: sa.Engine) -> None:
    key = keys.active("certificate")
    assert keys.public_key("cert-19990101-abcdef") is None and keys.purpose_of("nope") is None
    assert keys.public_key(key.kid) is not None and keys.purpose_of(key.kid) == "certificate"
    with engine.begin() as conn:
        conn.execute(sa.delete(tables.signing_keys))
    # served from memory now (a kid's public key never changes), a fresh store reads the DB
    cached = keys.public_key(key.kid)
    assert cached is not None and raw_public_key(cached) == raw_public_key(key.public_key)
    assert KeyStore(engine, keys.keys_dir).public_key(key.kid) is None
    # unknown kids are not cached: a key published later is found
    later = keys.rotate("token")
    fresh = KeyStore(engine, keys.keys_dir)
    assert fresh.public_key(later.kid) is not None


def _race_first_key(url: str, keys_dir: Path) -> None:
    engine = engine_for(url)
    barrier = threading.Barrier(6)
    results: list[SigningKey] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            ks = KeyStore(engine, keys_dir)
            barrier.wait()
            results.append(ks.active("certificate"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 6
    published = {k["kid"] for k in KeyStore(engine, keys_dir).list_keys()}
    assert {r.kid for r in results} <= published
    # afterwards one key is active and everyone agrees on it
    assert [k["status"] for k in KeyStore(engine, keys_dir).list_keys()].count("active") == 1
    kids = {KeyStore(engine, keys_dir).active("certificate").kid for _ in range(3)}
    assert len(kids) == 1
    # whatever each racer signed with still verifies
    for r in results:
        pub = KeyStore(engine, keys_dir).public_key(r.kid)
        assert pub is not None
        pub.verify(r.sign(b"x"), b"x")


def test_first_key_race_sqlite(tmp_path: Path) -> None:
    _race_first_key(f"sqlite:///{tmp_path / 'race.db'}", tmp_path / "keys")


@pytest.mark.services
def test_first_key_race_postgres(hub_pg_url: str, tmp_path: Path) -> None:
    _race_first_key(hub_pg_url, tmp_path / "keys")


# ---- tokens -------------------------------------------------------------------------------


def test_token_round_trip(keys: KeyStore) -> None:
    token, expires_in = issue_token(
        keys, subject="app-1", kind="app", audience=AUD, issuer=ISS, ttl_s=900, claims={"gen": 3}, now=NOW
    )
    assert expires_in == 900
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA" and header["kid"] == keys.active("token").kid
    claims = verify_token(
        keys, token, audience=AUD, issuer=ISS, max_lifetime_s=TTL, now=NOW + dt.timedelta(seconds=60)
    )
    iat = int(NOW.timestamp())
    assert claims["sub"] == "app-1" and claims["kind"] == "app" and claims["gen"] == 3
    assert (claims["iat"], claims["nbf"], claims["exp"]) == (iat, iat, iat + 900)
    assert claims["aud"] == AUD and claims["iss"] == ISS and len(claims["jti"]) >= 16
    other, _ = issue_token(keys, subject="app-1", kind="app", audience=AUD, issuer=ISS, ttl_s=900, now=NOW)
    assert jwt.decode(other, options={"verify_signature": False})["jti"] != claims["jti"]
    with pytest.raises(ValueError, match="registered"):
        issue_token(keys, subject="a", kind="app", audience=AUD, issuer=ISS, ttl_s=9, claims={"sub": "x"})


def test_token_still_verifies_after_rotation(keys: KeyStore) -> None:
    token, _ = issue_token(keys, subject="s", kind="staff", audience=AUD, issuer=ISS, ttl_s=900, now=NOW)
    keys.rotate("token", now=NOW)
    assert verify_token(keys, token, audience=AUD, issuer=ISS, max_lifetime_s=TTL, now=NOW)["sub"] == "s"
    newer, _ = issue_token(keys, subject="s", kind="staff", audience=AUD, issuer=ISS, ttl_s=900, now=NOW)
    assert jwt.get_unverified_header(newer)["kid"] != jwt.get_unverified_header(token)["kid"]


def test_retired_token_key_verifies_only_while_its_tokens_can_live(keys: KeyStore) -> None:
    """A retired key's tokens are honoured for the longest token life (plus leeway) after its
    retirement; after that anything it signs is refused, also through the verifier's memo."""
    token, _ = issue_token(keys, subject="s", kind="staff", audience=AUD, issuer=ISS, ttl_s=TTL, now=NOW)
    keys.rotate("token", now=NOW)
    verifier = TokenVerifier(keys, audience=AUD, issuer=ISS, max_lifetime_s=TTL)
    assert verifier.verify(token, now=NOW + dt.timedelta(seconds=TTL))["sub"] == "s"
    late = NOW + dt.timedelta(seconds=TTL + 31)
    # what a thief holding the old key would mint after that: fresh times, good signature
    kid = jwt.get_unverified_header(token)["kid"]
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key((keys.keys_dir / f"{kid}.pem").read_bytes(), None)
    iat = int(late.timestamp())
    claims = {"iss": ISS, "aud": AUD, "sub": "s", "kind": "staff", "iat": iat, "exp": iat + 60}
    forged = jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": kid})  # type: ignore[arg-type]
    assert _reason(keys, forged, now=late) == "unknown_key"
    with pytest.raises(TokenRejected):
        verifier.verify(forged, now=late)


def test_token_claiming_a_longer_life_than_configured_is_refused(keys: KeyStore) -> None:
    token, _ = issue_token(keys, subject="s", kind="app", audience=AUD, issuer=ISS, ttl_s=TTL + 1, now=NOW)
    assert _reason(keys, token) == "malformed"
    ok, _ = issue_token(keys, subject="s", kind="app", audience=AUD, issuer=ISS, ttl_s=TTL, now=NOW)
    assert verify_token(keys, ok, audience=AUD, issuer=ISS, max_lifetime_s=TTL, now=NOW)["sub"] == "s"


def _reason(
    keys: KeyStore, token: str, *, now: dt.datetime = NOW, audience: str = AUD, issuer: str = ISS
) -> str:
    with pytest.raises(TokenRejected) as err:
        verify_token(keys, token, audience=audience, issuer=issuer, max_lifetime_s=TTL, now=now)
    return err.value.reason


def test_token_times(keys: KeyStore) -> None:
    token, _ = issue_token(keys, subject="a", kind="app", audience=AUD, issuer=ISS, ttl_s=600, now=NOW)
    after = NOW + dt.timedelta(seconds=600)
    assert verify_token(
        keys, token, audience=AUD, issuer=ISS, max_lifetime_s=TTL, now=after + dt.timedelta(seconds=29)
    )
    assert _reason(keys, token, now=after + dt.timedelta(seconds=30)) == "expired"
    assert _reason(keys, token, now=NOW + dt.timedelta(days=1)) == "expired"
    # issued in the future (clock skew beyond the leeway) is not valid yet
    assert verify_token(
        keys, token, audience=AUD, issuer=ISS, max_lifetime_s=TTL, now=NOW - dt.timedelta(seconds=30)
    )
    assert _reason(keys, token, now=NOW - dt.timedelta(seconds=31)) == "not_yet_valid"
    # without an injected now the real clock is used: a 2026-11-22 token is checked against today
    fresh, _ = issue_token(keys, subject="a", kind="app", audience=AUD, issuer=ISS, ttl_s=600)
    assert verify_token(keys, fresh, audience=AUD, issuer=ISS, max_lifetime_s=TTL)["sub"] == "a"


def test_verifier_remembers_signatures_not_times(keys: KeyStore, monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = TokenVerifier(keys, audience=AUD, issuer=ISS, max_lifetime_s=TTL, max_entries=2)
    token, _ = issue_token(keys, subject="a", kind="app", audience=AUD, issuer=ISS, ttl_s=600, now=NOW)
    checks: list[str] = []
    real_decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: checks.append("decode") or real_decode(*a, **k))
    first = verifier.verify(token, now=NOW)
    first["sub"] = "tampered"  # the caller's own copy
    assert verifier.verify(token, now=NOW + dt.timedelta(seconds=60))["sub"] == "a"
    assert checks == ["decode"] and len(verifier) == 1  # the signature was checked once
    # the times are checked on every call
    with pytest.raises(TokenRejected) as err:
        verifier.verify(token, now=NOW + dt.timedelta(seconds=700))
    assert err.value.reason == "expired"
    # refused tokens are not remembered, and each is checked again
    header, _payload, sig = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = ".".join([header, _seg({**claims, "sub": "b"}), sig])
    for _ in range(2):
        with pytest.raises(TokenRejected) as err:
            verifier.verify(forged, now=NOW)
        assert err.value.reason == "bad_signature"
    other = TokenVerifier(keys, audience="another-api", issuer=ISS, max_lifetime_s=TTL)
    with pytest.raises(TokenRejected) as err:
        other.verify(token, now=NOW)
    assert err.value.reason == "wrong_audience"
    assert len(verifier) == 1
    # bounded: the oldest goes first
    for sub in "xy":
        t, _ = issue_token(keys, subject=sub, kind="app", audience=AUD, issuer=ISS, ttl_s=60, now=NOW)
        verifier.verify(t, now=NOW)
    assert len(verifier) == 2 and token not in verifier._passed


def test_token_audience_and_issuer(keys: KeyStore) -> None:
    token, _ = issue_token(keys, subject="a", kind="app", audience=AUD, issuer=ISS, ttl_s=600, now=NOW)
    assert _reason(keys, token, audience="another-api") == "wrong_audience"
    assert _reason(keys, token, issuer="someone-else") == "wrong_issuer"


def test_forged_tokens_are_refused(keys: KeyStore) -> None:
    real = keys.active("token")
    iat = int(NOW.timestamp())
    payload = {
        "iss": ISS,
        "sub": "admin",
        "aud": AUD,
        "iat": iat,
        "nbf": iat,
        "exp": iat + 600,
        "kind": "staff",
    }
    stranger = Ed25519PrivateKey.generate()
    # a key the hub never published, under its own kid or under the hub's kid
    own_kid = jwt.encode(payload, stranger, algorithm="EdDSA", headers={"kid": "tok-20261122-000000"})
    assert _reason(keys, own_kid) == "unknown_key"
    no_kid = jwt.encode(payload, stranger, algorithm="EdDSA")
    assert _reason(keys, no_kid) == "unknown_key"
    hub_kid = jwt.encode(payload, stranger, algorithm="EdDSA", headers={"kid": real.kid})
    assert _reason(keys, hub_kid) == "bad_signature"
    # alg none
    none = f"{_seg({'alg': 'none', 'typ': 'JWT', 'kid': real.kid})}.{_seg(payload)}."
    assert _reason(keys, none) == "bad_signature"
    # HS256 with the published public key as the HMAC secret
    secret = raw_public_key(real.public_key)
    for key_bytes in (secret, b64url(secret).encode()):
        signing_input = f"{_seg({'alg': 'HS256', 'typ': 'JWT', 'kid': real.kid})}.{_seg(payload)}"
        mac = hmac.new(key_bytes, signing_input.encode(), hashlib.sha256).digest()
        assert _reason(keys, f"{signing_input}.{b64url(mac)}") == "bad_signature"
    # a real token with its payload changed
    good, _ = issue_token(keys, subject="app-1", kind="app", audience=AUD, issuer=ISS, ttl_s=600, now=NOW)
    head, body, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["sub"] = "admin"
    assert _reason(keys, f"{head}.{_seg(claims)}.{sig}") == "bad_signature"
    assert verify_token(keys, good, audience=AUD, issuer=ISS, max_lifetime_s=TTL, now=NOW)["sub"] == "app-1"


def test_certificate_key_cannot_sign_tokens(keys: KeyStore) -> None:
    cert = keys.active("certificate")
    keys.active("token")
    iat = int(NOW.timestamp())
    payload = {"iss": ISS, "sub": "app-1", "aud": AUD, "iat": iat, "exp": iat + 600, "kind": "app"}
    token = jwt.encode(payload, cert.private_key, algorithm="EdDSA", headers={"kid": cert.kid})
    assert _reason(keys, token) == "unknown_key"


def test_malformed_tokens(keys: KeyStore) -> None:
    key = keys.active("token")
    assert _reason(keys, "") == "malformed"
    assert _reason(keys, "not-a-jwt") == "malformed"
    assert _reason(keys, "a.b.c") == "malformed"
    iat = int(NOW.timestamp())
    full = {"iss": ISS, "sub": "app-1", "aud": AUD, "iat": iat, "exp": iat + 600, "kind": "app"}
    for missing in ("exp", "iat", "sub", "kind", "aud", "iss"):
        claims = {k: v for k, v in full.items() if k != missing}
        token = jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid})
        assert _reason(keys, token) == "malformed", missing
    bad_exp = jwt.encode(
        {**full, "exp": "soon"}, key.private_key, algorithm="EdDSA", headers={"kid": key.kid}
    )
    assert _reason(keys, bad_exp) == "malformed"
