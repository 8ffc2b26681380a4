"""The portal as an OpenID Connect relying party: staff sign in at the province's or city's
identity provider (统一身份认证, 一号登录) with the authorization code flow and PKCE.

Built on maintained libraries: Authlib's OAuth 2.0 client (authorization URL, PKCE S256, the
token request with the client's authentication) and joserfc with Authlib's ``CodeIDToken``
claim rules (signature against the IdP's JWKS, ``iss``, ``aud``, ``azp``, ``exp``, ``iat``,
``nonce``, ``at_hash``). What this module adds is the state a sign-in carries between the two
redirects, kept in the hub DB (``hub_sso_logins``) rather than in the browser:

* ``state`` — random; the DB keeps only its SHA-256; used once (deleted on return) and
  valid for :data:`PENDING_TTL`;
* a browser binding — a second random value in an HttpOnly cookie whose SHA-256 is stored with
  the state, so a code and state sent to somebody else's browser (login CSRF, a leaked
  callback URL) does not sign that browser in;
* ``nonce`` and the PKCE ``code_verifier``, never sent to the browser.

The authorization response's ``iss`` (RFC 9207) is checked when present, and required when the
IdP says it sends it, against mix-up attacks. Claims come from the ID token and the UserInfo
endpoint (whose ``sub`` must be the ID token's). The mapping of claims to an account is
:mod:`catalog.access.sso`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import sqlalchemy as sa
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from catalog.clock import as_utc, utc_now
from catalog.db import tables

#: how long a sign-in may stay at the IdP
PENDING_TTL = dt.timedelta(minutes=10)
#: how long discovery metadata and the JWKS are trusted before they are read again
METADATA_TTL_S = 3600.0
#: clock skew allowed on the ID token's times
LEEWAY_S = 60


class OidcFailure(Exception):
    """The sign-in did not complete; ``code`` is stable (audited), ``detail`` for the log."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class OidcConfig:
    """The relying party's settings (``oidc_*``)."""

    issuer: str
    client_id: str
    client_secret: str | None
    scopes: str
    timeout_s: float

    @classmethod
    def of(cls, settings: Any) -> OidcConfig | None:
        """The configuration, or None when single sign-on is not set up."""
        if not settings.oidc_issuer or not settings.oidc_client_id:
            return None
        secret = settings.oidc_client_secret
        return cls(
            issuer=settings.oidc_issuer.rstrip("/"),
            client_id=settings.oidc_client_id,
            client_secret=secret.get_secret_value() if secret is not None else None,
            scopes=settings.oidc_scopes,
            timeout_s=settings.oidc_timeout_seconds,
        )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class RelyingParty:
    """One IdP, as the portal uses it (one per API process; thread-safe)."""

    def __init__(self, config: OidcConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._metadata: tuple[float, dict[str, Any]] | None = None
        self._jwks: tuple[float, dict[str, Any]] | None = None

    # ---- the IdP's published configuration -------------------------------------------
    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = httpx.get(url, timeout=self.config.timeout_s, follow_redirects=False)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcFailure("idp_unreachable", f"{url}: {exc}") from None
        if not isinstance(body, dict):
            raise OidcFailure("idp_unreachable", f"{url}: not a JSON object")
        return body

    def metadata(self) -> dict[str, Any]:
        """The IdP's discovery document (OpenID Connect Discovery 1.0), cached."""
        with self._lock:
            if self._metadata is not None and time.monotonic() - self._metadata[0] < METADATA_TTL_S:
                return self._metadata[1]
        found = self._get_json(f"{self.config.issuer}/.well-known/openid-configuration")
        # §4.3: the issuer in the document must be exactly the one configured
        if found.get("issuer", "").rstrip("/") != self.config.issuer:
            raise OidcFailure("idp_misconfigured", f"discovery names issuer {found.get('issuer')!r}")
        for member in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(found.get(member), str):
                raise OidcFailure("idp_misconfigured", f"discovery has no {member}")
        with self._lock:
            self._metadata = (time.monotonic(), found)
        return found

    def _key_set(self, *, force: bool = False) -> KeySet:
        with self._lock:
            cached = self._jwks
        if force or cached is None or time.monotonic() - cached[0] >= METADATA_TTL_S:
            cached = (time.monotonic(), self._get_json(self.metadata()["jwks_uri"]))
            with self._lock:
                self._jwks = cached
        return KeySet.import_key_set(cached[1])  # type: ignore[arg-type]

    def _client(self, redirect_uri: str) -> OAuth2Client:
        secret = self.config.client_secret
        return OAuth2Client(
            client_id=self.config.client_id,
            client_secret=secret,
            token_endpoint_auth_method="client_secret_basic" if secret else "none",
            scope=self.config.scopes,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=self.config.timeout_s,
        )

    # ---- the first redirect -----------------------------------------------------------
    def begin(
        self, engine: sa.Engine, *, redirect_uri: str, next_url: str, now: dt.datetime | None = None
    ) -> tuple[str, str]:
        """Start a sign-in: (the IdP's authorization URL, the browser-binding cookie value)."""
        metadata = self.metadata()
        at = utc_now(now)
        state, browser = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(64)
        with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                metadata["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce
            )
        t = tables.sso_logins
        with engine.begin() as conn:
            conn.execute(t.delete().where(t.c.expires_at < at))  # abandoned sign-ins
            conn.execute(
                t.insert().values(
                    state_hash=_sha256(state),
                    browser_hash=_sha256(browser),
                    nonce=nonce,
                    code_verifier=verifier,
                    next_url=next_url,
                    created_at=at,
                    expires_at=at + PENDING_TTL,
                )
            )
        return str(url), browser

    # ---- the return -------------------------------------------------------------------
    def finish(
        self,
        engine: sa.Engine,
        *,
        redirect_uri: str,
        params: Mapping[str, str],
        browser: str | None,
        now: dt.datetime | None = None,
    ) -> tuple[dict[str, Any], str]:
        """Complete a sign-in from the callback's query: (verified claims, the next URL).

        Raises :class:`OidcFailure` with codes ``idp_error`` (the IdP answered with an error,
        e.g. the user cancelled), ``state_unknown`` / ``state_expired`` / ``state_not_this_browser``,
        ``issuer_mismatch``, ``token_failed``, ``id_token_invalid``, ``userinfo_failed``,
        ``idp_unreachable``.
        """
        at = utc_now(now)
        state = params.get("state") or ""
        pending = self._take(engine, state) if state and len(state) <= 200 else None
        if params.get("error"):
            # an error answer still ends the sign-in it belongs to
            why = f"{params.get('error')}: {params.get('error_description', '')}"
            # anyone can call the callback: what it says goes to the log, never a forged line
            raise OidcFailure("idp_error", "".join(c if c.isprintable() else "?" for c in why[:300]))
        if pending is None:
            raise OidcFailure("state_unknown")
        if as_utc(pending.expires_at) <= at:
            raise OidcFailure("state_expired")
        if not browser or not secrets.compare_digest(_sha256(browser), pending.browser_hash):
            raise OidcFailure("state_not_this_browser")
        metadata = self.metadata()
        iss = params.get("iss")
        iss_expected = iss is not None or metadata.get("authorization_response_iss_parameter_supported")
        if iss_expected and (iss or "").rstrip("/") != self.config.issuer:
            raise OidcFailure("issuer_mismatch", f"iss={iss!r}")
        code = params.get("code")
        if not code:
            raise OidcFailure("token_failed", "no code in the callback")
        try:
            with self._client(redirect_uri) as client:
                token = client.fetch_token(
                    metadata["token_endpoint"],
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=pending.code_verifier,
                    redirect_uri=redirect_uri,
                )
        except (OAuth2Error, OAuthError, httpx.HTTPError, ValueError) as exc:
            raise OidcFailure("token_failed", str(exc)[:300]) from None
        if not isinstance(token.get("id_token"), str) or not isinstance(token.get("access_token"), str):
            raise OidcFailure("token_failed", "no id_token or access_token in the token response")
        claims = self._id_token_claims(token["id_token"], token["access_token"], pending.nonce, metadata)
        userinfo_endpoint = metadata.get("userinfo_endpoint")
        if isinstance(userinfo_endpoint, str):
            try:
                response = httpx.get(
                    userinfo_endpoint,
                    headers={"Authorization": f"Bearer {token['access_token']}"},
                    timeout=self.config.timeout_s,
                )
                response.raise_for_status()
                info = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise OidcFailure("userinfo_failed", str(exc)[:300]) from None
            if not isinstance(info, dict) or info.get("sub") != claims["sub"]:
                raise OidcFailure("userinfo_failed", "userinfo sub is not the ID token's")
            claims = {**info, **claims}
        return claims, pending.next_url

    def _take(self, engine: sa.Engine, state: str) -> sa.Row[Any] | None:
        """The pending sign-in of ``state``, removed so that it is used once."""
        t = tables.sso_logins
        key = _sha256(state)
        with engine.begin() as conn:
            row = conn.execute(sa.select(t).where(t.c.state_hash == key)).first()
            if row is None:
                return None
            gone = conn.execute(t.delete().where(t.c.state_hash == key))
            if gone.rowcount != 1:  # a concurrent callback with the same state took it
                return None
        return row

    def _id_token_claims(
        self, id_token: str, access_token: str, nonce: str, metadata: Mapping[str, Any]
    ) -> dict[str, Any]:
        algorithms = [
            a for a in metadata.get("id_token_signing_alg_values_supported") or ["RS256"] if a != "none"
        ]
        registry = JWSRegistry(algorithms=algorithms)
        try:
            try:
                decoded = jwt.decode(id_token, self._key_set(), registry=registry)
            except InvalidKeyIdError:  # the IdP rotated its keys: read them again, once
                decoded = jwt.decode(id_token, self._key_set(force=True), registry=registry)
            rules = CodeIDToken(
                decoded.claims,
                decoded.header,
                {
                    "iss": {"essential": True, "values": [self.config.issuer, self.config.issuer + "/"]},
                    # OIDC Core 3.1.3.7: aud must contain the client (azp is checked by CodeIDToken)
                    "aud": {"essential": True, "values": [self.config.client_id]},
                },
                {"nonce": nonce, "client_id": self.config.client_id, "access_token": access_token},
            )
            rules.validate(leeway=LEEWAY_S)
        except (JoseError, ValueError) as exc:
            raise OidcFailure("id_token_invalid", f"{type(exc).__name__}: {exc}"[:300]) from None
        claims = dict(decoded.claims)
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise OidcFailure("id_token_invalid", "no sub")
        return claims

    # ---- signing out ------------------------------------------------------------------
    def logout_url(self, post_logout_redirect_uri: str) -> str | None:
        """The IdP's RP-initiated logout URL, or None when it has none (or cannot be reached)."""
        try:
            endpoint = self.metadata().get("end_session_endpoint")
        except OidcFailure:
            return None
        if not isinstance(endpoint, str):
            return None
        query = urlencode(
            {"client_id": self.config.client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
        )
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


_PARTIES: dict[OidcConfig, RelyingParty] = {}
_PARTIES_LOCK = threading.Lock()


def relying_party(settings: Any) -> RelyingParty | None:
    """The process's relying party for the settings, or None when SSO is not configured."""
    config = OidcConfig.of(settings)
    if config is None:
        return None
    with _PARTIES_LOCK:
        party = _PARTIES.get(config)
        if party is None:
            party = _PARTIES[config] = RelyingParty(config)
        return party
