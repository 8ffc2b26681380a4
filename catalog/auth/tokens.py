"""Short-lived access tokens (OAuth2 client credentials): EdDSA-signed JWTs.

A token is signed with the hub's active ``token`` key and names it in the header (``kid``),
so any replica — or anyone holding the JWKS — can verify it without a database round trip
for the signature. Verification accepts only ``EdDSA`` with a published *token* key: never
``none``, never an HMAC algorithm (where the public key could be abused as the secret), and
never a certificate key. Two bounds keep a leaked key or a hand-made token from living on:

* a token whose ``exp - iat`` exceeds the configured lifetime (``max_lifetime_s``, the
  hub's ``token_ttl_seconds``) is refused, whatever its signature;
* a retired token key verifies tokens only until ``retired_at + max_lifetime_s + leeway``:
  every token it signed before retirement has expired by then, so later ones are forgeries;
* a withdrawn (leaked) token key verifies no token at all: its holder could write any ``iat``,
  and tokens are short-lived, so the cost of a withdrawal is one new token per client.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections import OrderedDict
from typing import Any

import jwt

from catalog.auth.keys import KeyStore
from catalog.clock import utc_now as _now

ALGORITHM = "EdDSA"
_REGISTERED = ("iss", "sub", "aud", "iat", "nbf", "exp", "jti", "kind")


class TokenRejected(Exception):
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
        raise TokenRejected("malformed", f"claim {name} must be a number")
    return int(value)


def verify_token(
    keys: KeyStore,
    token: str,
    *,
    audience: str,
    issuer: str,
    max_lifetime_s: int,
    now: dt.datetime | None = None,
    leeway_s: int = 30,
) -> dict[str, Any]:
    """The verified claims of ``token``; raises :class:`TokenRejected` when it is not accepted.

    Checks in order: the header (alg ``EdDSA``, a ``kid`` of a published token key), the
    signature, the required claims (exp, iat, aud, iss, sub, kind), audience, issuer, the
    lifetime (``exp - iat`` at most ``max_lifetime_s``), then the times against ``now`` with
    ``leeway_s`` of clock skew and the key's retirement (see the module docstring).
    """
    payload = _verify_signed(keys, token, audience=audience, issuer=issuer)
    _check_lifetime(payload, max_lifetime_s)
    _check_times(payload, now, leeway_s)
    _check_key_retirement(keys, _kid_of(token), now, max_lifetime_s, leeway_s)
    return payload


def _kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token).get("kid"))


def _check_lifetime(payload: dict[str, Any], max_lifetime_s: int) -> None:
    if _int_claim(payload, "exp") - _int_claim(payload, "iat") > max_lifetime_s:
        raise TokenRejected("malformed", f"the token claims to live longer than {max_lifetime_s} s")


def _check_key_retirement(
    keys: KeyStore, kid: str, now: dt.datetime | None, max_lifetime_s: int, leeway_s: int
) -> None:
    state = keys.state(kid)
    if state is not None and state.status == "withdrawn":
        # a leaked token key: whoever holds it can put any iat in a token, so none is trusted
        raise TokenRejected("unknown_key", "the token key was withdrawn")
    retired = state.retired_at if state is not None else None
    if retired is not None and _now(now) > retired + dt.timedelta(seconds=max_lifetime_s + leeway_s):
        raise TokenRejected("unknown_key", "the token key was retired")


def _verify_signed(keys: KeyStore, token: str, *, audience: str, issuer: str) -> dict[str, Any]:
    """Everything but the times: header, key, signature, required claims, audience, issuer."""
    if not isinstance(token, str) or not token:
        raise TokenRejected("malformed", "empty token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenRejected("malformed", str(exc)) from None
    alg = header.get("alg")
    if alg != ALGORITHM:
        raise TokenRejected("bad_signature", f"algorithm {alg!r} is not accepted")
    kid = header.get("kid")
    if not isinstance(kid, str) or keys.purpose_of(kid) != "token":
        raise TokenRejected("unknown_key", "the token is not signed with a published token key")
    public = keys.public_key(kid)
    assert public is not None
    try:
        # PyJWT checks exp/nbf/iat against the wall clock, which would ignore an injected
        # ``now``: those three are switched off here and checked by _check_times.
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
        raise TokenRejected("bad_signature", "the signature does not verify") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenRejected("malformed", str(exc)) from None
    except jwt.InvalidAudienceError:
        raise TokenRejected("wrong_audience", "the token is for another audience") from None
    except jwt.InvalidIssuerError:
        raise TokenRejected("wrong_issuer", "the token was issued by someone else") from None
    except jwt.PyJWTError as exc:
        raise TokenRejected("malformed", str(exc)) from None
    if not isinstance(payload.get("sub"), str) or not payload["sub"]:
        raise TokenRejected("malformed", "claim sub must be a string")
    if not isinstance(payload.get("kind"), str) or not payload["kind"]:
        raise TokenRejected("malformed", 'Token is missing the "kind" claim')
    _int_claim(payload, "exp")
    _int_claim(payload, "iat")
    if "nbf" in payload:
        _int_claim(payload, "nbf")
    return payload


def _check_times(payload: dict[str, Any], now: dt.datetime | None, leeway_s: int) -> None:
    exp = _int_claim(payload, "exp")
    iat = _int_claim(payload, "iat")
    nbf = _int_claim(payload, "nbf") if "nbf" in payload else iat
    t = _now(now).timestamp()
    if exp <= t - leeway_s:
        raise TokenRejected("expired", "the token has expired")
    if nbf > t + leeway_s or iat > t + leeway_s:
        raise TokenRejected("not_yet_valid", "the token is not valid yet")


class TokenVerifier:
    """:func:`verify_token` for one key store, audience and issuer, remembering signature checks.

    An API process sees the same token on every call of an app for up to 15 minutes; checking
    its Ed25519 signature and parsing it each time is most of what the token costs. What is
    remembered is only that *this exact token string* passed the checks that cannot change:
    header, published token key (a kid never changes purpose or key), signature, audience,
    issuer and lifetime. The times and the key's retirement are checked on every call, and nothing
    about the party behind the token is remembered: the API re-reads the app or account on
    every call, so a rotated secret or a disabled app still takes effect at once. Refused
    tokens are never remembered. At most ``max_entries`` tokens are kept (the oldest go first).
    """

    def __init__(
        self,
        keys: KeyStore,
        *,
        audience: str,
        issuer: str,
        max_lifetime_s: int,
        max_entries: int = 10_000,
    ) -> None:
        """Verify against ``keys`` for ``audience`` and ``issuer``; tokens live at most
        ``max_lifetime_s`` (the hub's ``token_ttl_seconds``)."""
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.keys = keys
        self.audience = audience
        self.issuer = issuer
        self.max_lifetime_s = max_lifetime_s
        self._max = max_entries
        self._lock = threading.Lock()
        self._passed: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()

    def verify(self, token: str, *, now: dt.datetime | None = None, leeway_s: int = 30) -> dict[str, Any]:
        """Like :func:`verify_token`; the returned claims are the caller's own copy."""
        with self._lock:
            hit = self._passed.get(token) if isinstance(token, str) else None
        if hit is not None:
            kid, payload = hit
            _check_times(payload, now, leeway_s)
            _check_key_retirement(self.keys, kid, now, self.max_lifetime_s, leeway_s)
            return dict(payload)
        payload = _verify_signed(self.keys, token, audience=self.audience, issuer=self.issuer)
        _check_lifetime(payload, self.max_lifetime_s)
        _check_times(payload, now, leeway_s)
        kid = _kid_of(token)
        _check_key_retirement(self.keys, kid, now, self.max_lifetime_s, leeway_s)
        with self._lock:
            self._passed[token] = (kid, payload)
            while len(self._passed) > self._max:
                self._passed.popitem(last=False)
        return dict(payload)

    def __len__(self) -> int:
        """Tokens remembered."""
        with self._lock:
            return len(self._passed)
