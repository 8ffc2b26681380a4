"""Short-lived access tokens (OAuth2 client credentials): EdDSA-signed JWTs.

A token is signed with the hub's active ``token`` key and names it in the header (``kid``),
so any replica — or anyone holding the JWKS — can verify it without a database round trip
for the signature. Verification accepts only ``EdDSA`` with a published *token* key: never
``none``, never an HMAC algorithm (where the public key could be abused as the secret), and
never a certificate key.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import jwt

from catalog.clock import utc_now as _now
from catalog.keys import KeyStore

ALGORITHM = "EdDSA"
_REGISTERED = ("iss", "sub", "aud", "iat", "nbf", "exp", "jti", "kind")


class TokenError(Exception):
    """A token that is not accepted, with a stable ``reason``.

    ``reason`` is one of ``expired``, ``not_yet_valid``, ``bad_signature``, ``wrong_audience``,
    ``wrong_issuer``, ``malformed``, ``unknown_key``.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


def issue_token(
    keys: KeyStore,
    *,
    subject: str,
    kind: str,
    audience: str,
    issuer: str,
    ttl_s: int,
    claims: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> tuple[str, int]:
    """A signed token for ``subject`` and the seconds it lives (the OAuth2 ``expires_in``).

    ``kind`` says what the subject is (e.g. ``app`` or ``staff``); ``claims`` adds
    non-registered claims (e.g. a secret generation) and may not override the registered ones.
    """
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    extra = dict(claims or {})
    clash = sorted(set(extra) & set(_REGISTERED))
    if clash:
        raise ValueError(f"claims may not set the registered claims {', '.join(clash)}")
    iat = int(_now(now).timestamp())
    payload = {
        **extra,
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "iat": iat,
        "nbf": iat,
        "exp": iat + ttl_s,
        "jti": secrets.token_urlsafe(16),
        "kind": kind,
    }
    key = keys.active("token")
    token = jwt.encode(payload, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
    return token, ttl_s


def _int_claim(payload: dict[str, Any], name: str) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError("malformed", f"claim {name} must be a number")
    return int(value)


def verify_token(
    keys: KeyStore,
    token: str,
    *,
    audience: str,
    issuer: str,
    now: dt.datetime | None = None,
    leeway_s: int = 30,
) -> dict[str, Any]:
    """The verified claims of ``token``; raises :class:`TokenError` when it is not accepted.

    Checks in order: the header (alg ``EdDSA``, a ``kid`` of a published token key), the
    signature, the required claims (exp, iat, aud, iss, sub, kind), audience, issuer, then the
    times against ``now`` with ``leeway_s`` of clock skew.
    """
    if not isinstance(token, str) or not token:
        raise TokenError("malformed", "empty token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenError("malformed", str(exc)) from None
    alg = header.get("alg")
    if alg != ALGORITHM:
        raise TokenError("bad_signature", f"algorithm {alg!r} is not accepted")
    kid = header.get("kid")
    if not isinstance(kid, str) or keys.purpose_of(kid) != "token":
        raise TokenError("unknown_key", "the token is not signed with a published token key")
    public = keys.public_key(kid)
    assert public is not None
    try:
        # PyJWT checks exp/nbf/iat against the wall clock, which would ignore an injected
        # ``now``: those three are switched off here and checked below against ``now``.
        payload: dict[str, Any] = jwt.decode(
            token,
            public,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": True,
                "verify_iss": True,
                "require": ["exp", "iat", "aud", "iss", "sub"],
            },
        )
    except jwt.InvalidSignatureError:
        raise TokenError("bad_signature", "the signature does not verify") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError("malformed", str(exc)) from None
    except jwt.InvalidAudienceError:
        raise TokenError("wrong_audience", "the token is for another audience") from None
    except jwt.InvalidIssuerError:
        raise TokenError("wrong_issuer", "the token was issued by someone else") from None
    except jwt.PyJWTError as exc:
        raise TokenError("malformed", str(exc)) from None
    if not isinstance(payload.get("sub"), str) or not payload["sub"]:
        raise TokenError("malformed", "claim sub must be a string")
    if not isinstance(payload.get("kind"), str) or not payload["kind"]:
        raise TokenError("malformed", 'Token is missing the "kind" claim')
    exp = _int_claim(payload, "exp")
    iat = _int_claim(payload, "iat")
    nbf = _int_claim(payload, "nbf") if "nbf" in payload else iat
    t = _now(now).timestamp()
    if exp <= t - leeway_s:
        raise TokenError("expired", "the token has expired")
    if nbf > t + leeway_s or iat > t + leeway_s:
        raise TokenError("not_yet_valid", "the token is not valid yet")
    return payload
