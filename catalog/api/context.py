"""Per-process services of the API and the per-request context every endpoint fills in.

``Hub`` holds what the endpoints share (engine, keys, rate limiter, audit writer, calendar);
``CallAudit`` is the audit record of the current request, filled in as the request goes and
written by the audit middleware before the response leaves.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Header, Request
from fastapi.dependencies.utils import get_flat_dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from catalog import access, applications, apps, staff, store, tokens
from catalog.access import Principal
from catalog.errors import ApiError
from catalog.ratelimit import RateLimiterUnavailable

if TYPE_CHECKING:
    from catalog.audit import AuditWriter
    from catalog.keys import KeyStore
    from catalog.ratelimit import RateLimiter
    from catalog.workdays import Calendar
    from sharehub.settings import Settings


@dataclass
class Hub:
    """Services shared by every request of one API process."""

    settings: Settings
    engine: sa.Engine
    keys: KeyStore
    limiter: RateLimiter
    calendar: Calendar
    audit_batch_max: int = 256
    _datasets: dict[str, tuple[float, store.PublishedDataset]] = field(default_factory=dict)
    _audit: AuditWriter | None = None
    _audit_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def audit(self) -> AuditWriter:
        """The process's audit writer, started on first use (and again after a shutdown)."""
        with self._audit_lock:
            if self._audit is None:
                from catalog.audit import AuditWriter

                self._audit = AuditWriter(self.engine, batch_max=self.audit_batch_max)
            return self._audit

    def close(self) -> None:
        """Flush and stop the audit writer (the app's shutdown)."""
        with self._audit_lock:
            writer, self._audit = self._audit, None
        if writer is not None:
            writer.close()

    def dataset(self, code: str) -> store.PublishedDataset:
        """A published dataset (cached for a few seconds: the directory changes rarely)."""
        hit = self._datasets.get(code)
        now = time.monotonic()
        if hit and now - hit[0] < 5.0:
            return hit[1]
        try:
            d = store.get_dataset(self.engine, code)
        except KeyError:
            raise ApiError("dataset_not_found", 404, code=code) from None
        self._datasets[code] = (now, d)
        return d


@dataclass
class CallAudit:
    """What the audit record of this request will say; endpoints fill it in."""

    action: str = "other"
    principal: Principal = access.ANONYMOUS
    dataset_code: str | None = None
    certificate_id: str | None = None
    subject: str | None = None
    fields: list[str] | None = None
    row_count: int = 0
    reason: str | None = None  # the refusal's code, set by the error handlers (or before a masked 404)


def hub_of(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def call_of(request: Request) -> CallAudit:
    call: CallAudit | None = getattr(request.state, "call", None)
    if call is None:  # outside the audit middleware (e.g. tests of a sub-router)
        call = CallAudit()
        request.state.call = call
    return call


HubDep = Annotated[Hub, Depends(hub_of)]
CallDep = Annotated[CallAudit, Depends(call_of)]

_bearer = HTTPBearer(
    auto_error=False,
    description="access token from POST /api/v1/token (OAuth2 client credentials for apps)",
)


def _unauthorized(code: str, **params: Any) -> ApiError:
    err = ApiError(code, 401, **params)
    err.headers = {
        "WWW-Authenticate": 'Bearer error="invalid_token"' if code != "not_authenticated" else "Bearer"
    }
    return err


def resolve_principal(hub: Hub, token: str) -> Principal:
    """Check a bearer token and the party behind it (still active, same secret generation)."""
    s = hub.settings
    try:
        claims = tokens.verify_token(hub.keys, token, audience=s.token_audience, issuer=s.token_issuer)
    except tokens.TokenError as exc:
        if exc.reason == "expired":
            raise _unauthorized("token_expired") from None
        raise _unauthorized("invalid_token", why=exc.reason) from None
    kind = claims.get("kind")
    if kind == "app":
        app = apps.get_app(hub.engine, str(claims["sub"]))
        if app is None or app.secret_generation != claims.get("gen"):
            raise _unauthorized("invalid_token", why="credentials were rotated")
        if app.status != "active":
            raise ApiError("app_disabled", 403, app_id=app.app_id)
        return Principal(
            kind="app", app_id=app.app_id, app_name=app.name, department_code=app.department_code
        )
    if kind == "staff":
        user = staff.get_staff(hub.engine, str(claims["sub"]))
        if user is None or user.status != "active" or user.password_generation != claims.get("gen"):
            raise _unauthorized("invalid_token", why="account changed or disabled")
        return Principal(
            kind="staff", username=user.username, department_code=user.department_code, roles=user.roles
        )
    raise _unauthorized("invalid_token", why="unknown token kind")


def optional_principal(
    request: Request,
    hub: HubDep,
    call: CallDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    x_end_user_id: Annotated[
        str | None, Header(max_length=100, description="the end user the call is made for (使用人)")
    ] = None,
    x_case_number: Annotated[
        str | None, Header(max_length=100, description="the case the call serves (办件编号)")
    ] = None,
) -> Principal:
    """The caller, or the anonymous public when no token is given."""
    if credentials is None:
        if request.headers.get("authorization"):
            raise _unauthorized("invalid_token", why="not a Bearer token")
        principal = access.ANONYMOUS
    else:
        principal = resolve_principal(hub, credentials.credentials)
    if x_end_user_id or x_case_number:
        principal = Principal(
            **{**principal.__dict__, "end_user": x_end_user_id or None, "case_number": x_case_number or None}
        )
    call.principal = principal
    return principal


OptionalPrincipal = Annotated[Principal, Depends(optional_principal)]


def authenticated(principal: OptionalPrincipal) -> Principal:
    """Any authenticated party."""
    if principal.kind == "anonymous":
        raise _unauthorized("not_authenticated")
    return principal


def app_principal(principal: OptionalPrincipal) -> Principal:
    """Calls only a registered app makes."""
    if principal.kind == "anonymous":
        raise _unauthorized("not_authenticated")
    if principal.kind != "app":
        raise ApiError("wrong_party", 403, party="apps")
    return principal


def staff_principal(principal: OptionalPrincipal) -> Principal:
    """Calls only department staff make."""
    if principal.kind == "anonymous":
        raise _unauthorized("not_authenticated")
    if principal.kind != "staff":
        raise ApiError("wrong_party", 403, party="department staff")
    return principal


AnyPrincipal = Annotated[Principal, Depends(authenticated)]
AppPrincipal = Annotated[Principal, Depends(app_principal)]
StaffPrincipal = Annotated[Principal, Depends(staff_principal)]


def dataset_access(
    hub: Hub, call: CallAudit, principal: Principal, code: str, *, now: dt.datetime | None = None
) -> tuple[store.PublishedDataset, access.Decision]:
    """The whole gate for one app call on one dataset: shared, purpose, grant, rate limit."""
    d = hub.dataset(code)
    call.dataset_code = d.spec.code
    access.check_shared(d.spec)
    access.check_purpose(principal, d.spec)
    assert principal.app_id is not None
    state = applications.access_state(hub.engine, principal.app_id, d.spec.code, now=now)
    if state.kind != "granted" or state.grant is None:
        code_, status = access.REFUSALS[state.kind]
        params: dict[str, Any] = {"code": d.spec.code}
        if code_ == "application_refused":
            params["reason"] = (state.application.reason if state.application else "") or ""
        raise ApiError(code_, status, **params)
    grant = state.grant
    limit(hub, f"grant:{grant.id}", grant.rate_limit)
    decision = access.grant_decision(
        d.spec, grant.fields, grant.clear_fields, grant_id=grant.id, rate_limit=grant.rate_limit
    )
    return d, decision


_QUERY_ATTR = "_sharehub_query_names"  # kept on the route itself: it lives and dies with the app


def _declared_query(route: APIRoute) -> frozenset[str] | None:
    """The query parameters a route declares, or None when it checks its own."""
    if not hasattr(route, _QUERY_ATTR):
        dynamic = bool((route.openapi_extra or {}).get("x-dynamic-query"))
        flat = get_flat_dependant(route.dependant)
        setattr(route, _QUERY_ATTR, None if dynamic else frozenset(p.alias for p in flat.query_params))
    names: frozenset[str] | None = getattr(route, _QUERY_ATTR)
    return names


def strict_query(request: Request) -> None:
    """Refuse query parameters an endpoint does not declare (a typo must not widen a query).

    Endpoints whose filters are the dataset's own key fields declare ``x-dynamic-query`` and
    check their parameters themselves."""
    route = request.scope.get("route")
    names = _declared_query(route) if isinstance(route, APIRoute) else None
    if names is None:
        return
    for key in request.query_params:
        if key not in names:
            raise ApiError("unknown_parameter", 400, name=key[:50])


def limit(hub: Hub, key: str, per_minute: int) -> None:
    """Count one call against a rate limit; 429 with Retry-After when it is used up."""
    try:
        result = hub.limiter.hit(key, per_minute)
    except RateLimiterUnavailable:
        raise ApiError("rate_limit_unavailable", 503) from None
    if not result.allowed:
        err = ApiError("rate_limited", 429, limit=per_minute, retry_after=result.retry_after)
        err.headers = {"Retry-After": str(max(1, result.retry_after))}
        raise err
