"""The relying party's ID token checks, with tokens a hostile or broken IdP could send: each
one is refused with ``id_token_invalid``. (The happy path runs against a real provider in
test_sso.py; a real provider never signs these, so they are made here with the IdP's key
set taken over.)"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from catalog.portal.oidc import OidcConfig, OidcFailure, RelyingParty

ISSUER = "https://idp.example.gov.cn"
CLIENT = "sharehub-portal"
NONCE = "n-0S6_WzA2Mj"
ACCESS = "access-token-value"


def _at_hash(token: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()[:16]).rstrip(b"=").decode()


@pytest.fixture
def party_and_key() -> tuple[RelyingParty, RSAKey]:
    key = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})
    party = RelyingParty(OidcConfig(ISSUER, CLIENT, "secret", "openid", 5.0))
    metadata = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/auth",
        "token_endpoint": f"{ISSUER}/token",
        "jwks_uri": f"{ISSUER}/jwks",
        "id_token_signing_alg_values_supported": ["RS256"],
    }
    now = time.monotonic()
    party._metadata = (now, metadata)
    party._jwks = (now, {"keys": [key.as_dict(private=False)]})
    return party, key


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": CLIENT,
        "exp": now + 300,
        "iat": now,
        "nonce": NONCE,
        "at_hash": _at_hash(ACCESS),
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _check(party: RelyingParty, token: str) -> dict[str, Any]:
    return party._id_token_claims(token, ACCESS, NONCE, party.metadata())


def test_a_good_token_passes(party_and_key: tuple[RelyingParty, RSAKey]) -> None:
    party, key = party_and_key
    token = jwt.encode({"alg": "RS256", "kid": "k1"}, _claims(), key)
    assert _check(party, token)["sub"] == "user-1"


@pytest.mark.parametrize(
    "changes",
    [
        {"nonce": "another-sign-in"},  # replayed from another sign-in
        {"nonce": None},
        {"aud": "another-system"},  # issued to someone else
        {"aud": ["another-system"], "azp": CLIENT},  # azp alone does not make it ours
        {"azp": "another-system"},
        {"iss": "https://evil.example"},
        {"exp": int(time.time()) - 3600},  # expired
        {"iat": None},
        {"at_hash": _at_hash("another-access-token")},  # not issued with this access token
        {"sub": ""},
    ],
    ids=[
        "nonce-other",
        "nonce-missing",
        "aud-other",
        "aud-other-azp-ours",
        "azp-other",
        "iss-other",
        "expired",
        "iat-missing",
        "at_hash-other",
        "sub-empty",
    ],
)
def test_bad_claims_are_refused(party_and_key: tuple[RelyingParty, RSAKey], changes: dict[str, Any]) -> None:
    party, key = party_and_key
    token = jwt.encode({"alg": "RS256", "kid": "k1"}, _claims(**changes), key)
    with pytest.raises(OidcFailure) as err:
        _check(party, token)
    assert err.value.code == "id_token_invalid"


def test_a_signature_by_another_key_is_refused(party_and_key: tuple[RelyingParty, RSAKey]) -> None:
    party, _key = party_and_key
    stranger = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    token = jwt.encode({"alg": "RS256", "kid": "k1"}, _claims(), stranger)
    with pytest.raises(OidcFailure, match="id_token_invalid"):
        _check(party, token)


def test_an_unsigned_or_hmac_token_is_refused(party_and_key: tuple[RelyingParty, RSAKey]) -> None:
    party, key = party_and_key
    header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps(_claims()).encode()).rstrip(b"=").decode()
    with pytest.raises(OidcFailure, match="id_token_invalid"):
        _check(party, f"{header}.{body}.")
    # the RSA public key used as an HMAC secret (the classic algorithm confusion)
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header_json = json.dumps({"alg": "HS256", "kid": "k1"}).encode()
    signing_input = f"{b64(header_json)}.{b64(json.dumps(_claims()).encode())}"
    mac = hmac.new(key.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(OidcFailure, match="id_token_invalid"):
        _check(party, f"{signing_input}.{b64(mac)}")
