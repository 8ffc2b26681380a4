"""Per-process services of the API and the per-request context every endpoint fills in.

``Hub`` holds what the endpoints share (engine, keys, rate limiter, audit writer, calendar);
``CallAudit`` is the audit record of the current request, filled in as the request goes and
written by the audit middleware before the response leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypeVar

import anyio
import anyio.to_thread
import sqlalchemy as sa
from fastapi import Depends, Header, Request
from fastapi.dependencies.utils import get_flat_dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from catalog.access import app_registry, applications, disclosure, gate, staff
from catalog.access.gate import Principal
from catalog.access.purpose import PurposeRules, header_text
from catalog.access.ratelimit import RateLimiterUnavailable
from catalog.anomalies import Throttles
from catalog.api.status import ApiError
from catalog.auth import tokens
from catalog.directory import store
from catalog.directory.grades import DEFAULT_POLICY, GradePolicy
from catalog.directory.model import DatasetSpec
from catalog.errors import HubError

if TYPE_CHECKING:
    from catalog.access.ratelimit import RateLimiter
    from catalog.access.workdays import Calendar
    from catalog.api.cursors import CursorSealer
    from catalog.audit import AuditWriter
    from catalog.auth.keys import KeyStore
    from catalog.serving.reads import PsycopgPool, Reads

T = TypeVar("T")


class Settings(Protocol):
    """What the API reads of the hub's settings (``sharehub.settings.Settings`` fits)."""

    hub_db_url: str
    db_pool_size: int
    db_max_overflow: int
    signing_keys_dir: Path
    redis_url: str | None
    holidays: list[dt.date]
    extra_workdays: list[dt.date]
    builtin_holidays: bool
    token_ttl_seconds: int
    token_audience: str
    token_issuer: str
    default_rate_limit: int
    audit_batch_max: int
    purpose_end_user_pattern: str
    purpose_case_number_pattern: str
    public_verify_rate_limit: int
    open_download_rate_limit: int
    login_rate_limit_per_address: int
    login_rate_limit_per_account: int
    login_concurrency: int
    api_max_body_bytes: int
    api_max_query_params: int
    api_body_timeout_seconds: float
    working_days_deadline: int
    objection_answer_working_days: int
    sharing_links: str
    sharing_link_seconds: int


@dataclass
class Hub:
    """Services shared by every request of one API process."""

    settings: Settings
    engine: sa.Engine
    keys: KeyStore
    limiter: RateLimiter
    calendar: Calendar
    audit_batch_max: int = 256
    grade_policy: GradePolicy = DEFAULT_POLICY  # the hub's (settings' overrides applied once)
    #: concurrent database sections of the async endpoints (``run_db``) per event loop; at most
    #: the pool size, so that they never open and close overflow connections under load
    db_concurrency: int = 5
    #: told the size of each audit batch committed (the metrics' histogram)
    on_audit_batch: Callable[[int], None] | None = None
    _datasets: dict[str, tuple[float, store.PublishedDataset]] = field(default_factory=dict)
    _audit: AuditWriter | None = None
    _audit_lock: threading.Lock = field(default_factory=threading.Lock)
    _db_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    def __post_init__(self) -> None:
        #: for reads only: no BEGIN/ROLLBACK round trips around a single SELECT
        self.read_engine: sa.Engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.verifier = tokens.TokenVerifier(
            self.keys,
            audience=self.settings.token_audience,
            issuer=self.settings.token_issuer,
            max_lifetime_s=self.settings.token_ttl_seconds,
        )
        self.purpose = PurposeRules.from_patterns(
            self.settings.purpose_end_user_pattern, self.settings.purpose_case_number_pattern
        )
        #: password hashes computed at once in this process (argon2 is expensive on purpose)
        self.login_slots = threading.BoundedSemaphore(self.settings.login_concurrency)
        #: which apps an open access anomaly throttles (catalog.anomalies), re-read every few seconds
        self.throttles = Throttles(self.engine)
        self._cursors: CursorSealer | None = None
        self._pg: PsycopgPool | None = None
        if self.engine.dialect.name == "postgresql":
            from catalog.serving.reads import PsycopgPool

            self._pg = PsycopgPool(self.engine, self.db_concurrency)

    @contextlib.contextmanager
    def reads(self) -> Iterator[Reads]:
        """The reads of one data call on one connection (psycopg directly on PostgreSQL)."""
        if self._pg is not None:
            with self._pg.reads() as pg:
                yield pg
            return
        from catalog.serving.reads import SqlAlchemyReads

        with self.read_engine.connect() as conn:
            yield SqlAlchemyReads(conn, self.read_engine)

    async def run_db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking database work of an async endpoint in a worker thread (one hop per call)."""
        loop = asyncio.get_running_loop()
        limiter = self._db_limiters.get(loop)
        if limiter is None:
            limiter = self._db_limiters[loop] = anyio.CapacityLimiter(self.db_concurrency)
        return await anyio.to_thread.run_sync(functools.partial(fn, *args), limiter=limiter)

    @property
    def cursors(self) -> CursorSealer:
        """Seals and opens the pagination cursors (key in the keys folder, made on first use)."""
        if self._cursors is None:
            from catalog.api.cursors import CursorSealer, load_or_create_key

            self._cursors = CursorSealer(load_or_create_key(self.settings.signing_keys_dir))
        return self._cursors

    @property
    def audit(self) -> AuditWriter:
        """The process's audit writer, started on first use (and again after a shutdown)."""
        with self._audit_lock:
            if self._audit is None:
                from catalog.audit import AuditWriter

                self._audit = AuditWriter(
                    self.engine, batch_max=self.audit_batch_max, on_batch=self.on_audit_batch
                )
            return self._audit

    def close(self) -> None:
        """Flush and stop the audit writer, close the read connections (the app's shutdown)."""
        with self._audit_lock:
            writer, self._audit = self._audit, None
        if writer is not None:
            writer.close()
        if self._pg is not None:
            self._pg.close()

    def dataset(self, code: str) -> store.PublishedDataset:
        """A published dataset (cached for a few seconds: the directory changes rarely)."""
        hit = self._datasets.get(code)
        now = time.monotonic()
        if hit and now - hit[0] < 5.0:
            return hit[1]
        try:
            d = store.get_dataset(self.engine, code)
        except KeyError:
            raise HubError("dataset_not_found", code=code) from None
        self._datasets[code] = (now, d)
        return d


@dataclass
class CallAudit:
    """What the audit record of this request will say; endpoints fill it in."""

    action: str = "other"
    principal: Principal = gate.ANONYMOUS
    dataset_code: str | None = None
    #: a multi-dataset call (subject view, certificate lists): dataset consulted -> rows from it
    datasets: dict[str, int] | None = None
    certificate_id: str | None = None
    subject: str | None = None
    #: what a lookup asked for besides the subject (the key fields as given), as JSON text
    query: str | None = None
    #: what the disclosure projection released (audit names, see catalog.access.disclosure)
    fields: list[str] | None = None
    row_count: int = 0
    reason: str | None = None  # the refusal's code, set by the error handlers (or before a masked 404)


# Dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` dependency in a
# worker thread, a hop that costs more than the dependency itself.


def request_hub(request: Request) -> Hub:
    """The API process's services (also as the dependency :data:`HubDep`)."""
    hub: Hub = request.app.state.hub
    return hub


def request_call(request: Request) -> CallAudit:
    """The audit record of this request (also as the dependency :data:`CallDep`)."""
    call: CallAudit | None = getattr(request.state, "call", None)
    if call is None:  # outside the audit middleware (e.g. tests of a sub-router)
        call = CallAudit()
        request.state.call = call
    return call


async def hub_of(request: Request) -> Hub:
    return request_hub(request)


async def call_of(request: Request) -> CallAudit:
    return request_call(request)


HubDep = Annotated[Hub, Depends(hub_of)]
CallDep = Annotated[CallAudit, Depends(call_of)]

_bearer = HTTPBearer(
    auto_error=False,
    description="access token from POST /api/v1/token (OAuth2 client credentials for apps)",
)

#: the purpose headers (X-Road style) every personal-data call carries
EndUserHeader = Annotated[
    str | None, Header(max_length=100, description="the end user the call is made for (使用人)")
]
CaseNumberHeader = Annotated[
    str | None, Header(max_length=100, description="the case the call serves (办件编号)")
]


def _unauthorized(code: str, **params: Any) -> ApiError:
    err = ApiError(code, 401, **params)
    err.headers = {
        "WWW-Authenticate": 'Bearer error="invalid_token"' if code != "not_authenticated" else "Bearer"
    }
    return err


def verified_claims(hub: Hub, token: str) -> dict[str, Any]:
    """The claims of a bearer token whose signature, audience, issuer and times check out."""
    try:
        return hub.verifier.verify(token)
    except tokens.TokenRejected as exc:
        if exc.reason == "expired":
            raise _unauthorized("token_expired") from None
        raise _unauthorized("invalid_token", why=exc.reason) from None


def app_principal_of(app: app_registry.App | None, generation: Any) -> Principal:
    """The principal of an app token once its app is re-read: still there, same secret
    generation (else 401, the credentials were rotated), active (else 403 ``app_disabled``)."""
    if app is None:
        raise _unauthorized("invalid_token", why="credentials were rotated")
    if app.status != "active":
        raise HubError("app_disabled", app_id=app.app_id)
    if app.secret_generation != generation:  # rotated, or disabled since the token was issued
        raise _unauthorized("invalid_token", why="credentials were rotated")
    return Principal(kind="app", app_id=app.app_id, app_name=app.name, department_code=app.department_code)


def resolve_principal(hub: Hub, token: str) -> Principal:
    """Check a bearer token and the party behind it (still active, same secret generation)."""
    claims = verified_claims(hub, token)
    kind = claims.get("kind")
    if kind == "app":
        return app_principal_of(app_registry.get_app(hub.engine, str(claims["sub"])), claims.get("gen"))
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
    x_end_user_id: EndUserHeader = None,
    x_case_number: CaseNumberHeader = None,
) -> Principal:
    """The caller, or the anonymous public when no token is given."""
    if credentials is None:
        if request.headers.get("authorization"):
            raise _unauthorized("invalid_token", why="not a Bearer token")
        principal = gate.ANONYMOUS
    else:
        principal = resolve_principal(hub, credentials.credentials)
    principal = with_purpose(principal, x_end_user_id, x_case_number)
    call.principal = principal
    return principal


def with_purpose(principal: Principal, end_user: str | None, case_number: str | None) -> Principal:
    """The principal with the purpose headers of the call (as the client wrote them, UTF-8)."""
    end_user, case_number = header_text(end_user), header_text(case_number)
    if end_user or case_number:
        return dataclasses.replace(principal, end_user=end_user, case_number=case_number)
    return principal


def identify_quietly(request: Request) -> None:
    """Name the caller of a request refused before its endpoint ran (422, 404, 405).

    The audit record should say which app or staff member sent a malformed call. Only the
    token's signature and claims are checked (no database): the record names who signed in,
    not whether they may do anything."""
    call: CallAudit | None = getattr(request.state, "call", None)
    if call is None or call.principal.kind != "anonymous":
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    principal = call.principal
    if scheme.lower() == "bearer" and token:
        try:
            claims = request_hub(request).verifier.verify(token.strip())
        except tokens.TokenRejected:
            claims = None
        if claims is not None and claims.get("kind") == "app":
            principal = Principal(kind="app", app_id=str(claims["sub"]))
        elif claims is not None and claims.get("kind") == "staff":
            principal = Principal(kind="staff", username=str(claims["sub"]))
    call.principal = with_purpose(
        principal, request.headers.get("x-end-user-id"), request.headers.get("x-case-number")
    )


OptionalPrincipal = Annotated[Principal, Depends(optional_principal)]


async def authenticated(principal: OptionalPrincipal) -> Principal:
    """Any authenticated party."""
    if principal.kind == "anonymous":
        raise _unauthorized("not_authenticated")
    return principal


async def app_principal(principal: OptionalPrincipal) -> Principal:
    """Calls only a registered app makes."""
    if principal.kind == "anonymous":
        raise _unauthorized("not_authenticated")
    if principal.kind != "app":
        raise HubError("wrong_party", party="apps")
    return principal


@dataclass(frozen=True)
class AppClaims:
    """A verified app token whose app has not been re-read yet, with the call's purpose.

    Not a :class:`Principal` on purpose: only :func:`app_dataset_gate` turns it into one, after
    reading the app (status, secret generation) together with its grant in one query. Routes on
    the hot path take this instead of :data:`AppPrincipal` to save a database round trip."""

    app_id: str
    generation: Any
    end_user: str | None
    case_number: str | None


async def app_claims(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    x_end_user_id: EndUserHeader = None,
    x_case_number: CaseNumberHeader = None,
) -> AppClaims:
    """An app's token, checked without the database; the same refusals as :data:`AppPrincipal`.

    (Few sub-dependencies on purpose: FastAPI's per-request work grows with each.)"""
    hub, call = request_hub(request), request_call(request)
    if credentials is None:
        call.principal = with_purpose(gate.ANONYMOUS, x_end_user_id, x_case_number)
        if request.headers.get("authorization"):
            raise _unauthorized("invalid_token", why="not a Bearer token")
        raise _unauthorized("not_authenticated")
    claims = verified_claims(hub, credentials.credentials)
    if claims.get("kind") != "app":
        # staff (or an unknown kind): the general path, for the same answer and audit record
        principal = await hub.run_db(resolve_principal, hub, credentials.credentials)
        call.principal = with_purpose(principal, x_end_user_id, x_case_number)
        raise HubError("wrong_party", party="apps")
    return AppClaims(
        app_id=str(claims["sub"]),
        generation=claims.get("gen"),
        end_user=header_text(x_end_user_id),
        case_number=header_text(x_case_number),
    )


async def staff_principal(principal: OptionalPrincipal) -> Principal:
    """Calls only department staff make."""
    if principal.kind == "anonymous":
        raise _unauthorized("not_authenticated")
    if principal.kind != "staff":
        raise HubError("wrong_party", party="department staff")
    return principal


AnyPrincipal = Annotated[Principal, Depends(authenticated)]
AppPrincipal = Annotated[Principal, Depends(app_principal)]
StaffPrincipal = Annotated[Principal, Depends(staff_principal)]
AppClaimsDep = Annotated[AppClaims, Depends(app_claims)]


def app_dataset_gate(
    hub: Hub, call: CallAudit, claims: AppClaims, code: str, reads: Reads
) -> tuple[Principal, store.PublishedDataset, disclosure.Projection]:
    """The whole gate for one app call on one dataset, from a token checked by :func:`app_claims`.

    In this order: the app, re-read in the same query as its newest grant
    (``applications.app_standing``: gone or rotated 401, disabled 403); the dataset (404);
    ``none`` data (403 ``not_shared``); the purpose headers for personal data (400); the grant
    state (403 with the app's standing); the grant's rate limit (429). Nothing is cached."""
    app, state = reads.app_standing(claims.app_id, code)
    principal = with_purpose(app_principal_of(app, claims.generation), claims.end_user, claims.case_number)
    call.principal = principal
    d = hub.dataset(code)
    call.dataset_code = d.spec.code
    gate.check_shared(d.spec)
    gate.check_purpose(principal, d.spec, hub.purpose, always=hub.grade_policy[d.spec.grade].purpose_always)
    return principal, d, _granted(hub, d, state, claims.app_id)


def _granted(
    hub: Hub, d: store.PublishedDataset, state: applications.AccessState, app_id: str
) -> disclosure.Projection:
    """The grant's projection, or the refusal for the app's standing; counts the call against
    the app's budget on the dataset."""
    if state.kind != "granted" or state.grant is None:
        code_ = gate.REFUSALS[state.kind]
        params: dict[str, Any] = {"code": d.spec.code}
        if code_ == "application_refused":
            params["reason"] = (state.application.reason if state.application else "") or ""
        raise HubError(code_, **params)
    grant = state.grant
    limit_grant(hub, app_id, d.spec, grant.rate_limit)
    return disclosure.for_grant(
        d.spec, grant.fields, grant.clear_fields, grant_id=grant.id, rate_limit=grant.rate_limit
    )


_QUERY_ATTR = "_sharehub_query_names"  # kept on the route itself: it lives and dies with the app


def _declared_query(route: APIRoute) -> frozenset[str] | None:
    """The query parameters a route declares, or None when it checks its own."""
    if not hasattr(route, _QUERY_ATTR):
        dynamic = bool((route.openapi_extra or {}).get("x-dynamic-query"))
        flat = get_flat_dependant(route.dependant)
        setattr(route, _QUERY_ATTR, None if dynamic else frozenset(p.alias for p in flat.query_params))
    names: frozenset[str] | None = getattr(route, _QUERY_ATTR)
    return names


async def strict_query(request: Request) -> None:
    """Refuse query parameters an endpoint does not declare (a typo must not widen a query).

    Endpoints whose filters are the dataset's own key fields declare ``x-dynamic-query`` and
    check their parameters themselves."""
    route = request.scope.get("route")
    names = _declared_query(route) if isinstance(route, APIRoute) else None
    if names is None:
        return
    for key in request.query_params:
        if key not in names:
            raise HubError("unknown_parameter", name=key[:50])


def client_address(request: Request) -> str:
    """The caller's network address, for limits on anonymous calls.

    Behind a load balancer this is the balancer's address unless uvicorn is told to trust its
    ``X-Forwarded-For`` (``--proxy-headers --forwarded-allow-ips``, see docs/deploy.md)."""
    client = request.client
    return client.host if client is not None else "unknown"


def limit_grant(hub: Hub, app_id: str, spec: DatasetSpec, per_minute: int) -> None:
    """Count one call against the app's grant on a dataset (429 ``rate_limited``), and, while an
    open access anomaly throttles the app there, against the grade policy's anomaly limit
    (429 ``anomaly_throttled``)."""
    limit(hub, gate.rate_key(app_id, spec.code), per_minute)
    slow = hub.grade_policy[spec.grade].anomaly_rate_limit
    if slow is not None and hub.throttles.throttled(app_id, spec.code):
        limit(hub, f"anomaly:{app_id}:{spec.code}", slow, error="anomaly_throttled", code=spec.code)


def limit(hub: Hub, key: str, per_minute: int, *, error: str = "rate_limited", **params: Any) -> None:
    """Count one call against a rate limit; 429 ``error`` (with ``params`` for its message) and
    Retry-After when it is used up."""
    try:
        result = hub.limiter.hit(key, per_minute)
    except RateLimiterUnavailable:
        raise HubError("rate_limit_unavailable") from None
    if not result.allowed:
        err = ApiError(error, 429, limit=per_minute, retry_after=result.retry_after, **params)
        err.headers = {"Retry-After": str(max(1, result.retry_after))}
        raise err
