"""The FastAPI application factory and the audit middleware."""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import logging
import random as _random
import threading
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalog import anomalies
from catalog.anomalies import Thresholds
from catalog.api.context import CallAudit, Hub, identify_quietly, strict_query
from catalog.api.errors_doc import errors
from catalog.api.limits import LimitsMiddleware
from catalog.api.logs import install_access_log_redaction
from catalog.api.metrics import (
    CONTENT_TYPE,
    METRICS_PATH,
    MetricsMiddleware,
    exposition,
    observe_audit_batch,
)
from catalog.api.routers import (
    applications,
    audit,
    auth,
    catalogue,
    certificates,
    directory,
    objections,
    records,
    sharing,
    subscriptions,
)
from catalog.api.schemas.common import Health
from catalog.api.status import ApiError, decision_of, headers_of, status_of
from catalog.auth.keys import KeyStoreError
from catalog.db.engine import engine_for
from catalog.errors import HubError, error_body

#: not audited: liveness probes that return no data. ``/ping`` touches nothing (no DB, no auth):
#: the bare endpoint the access-API benchmark compares the gated routes with.
_UNAUDITED = {"/api/v1/health", "/api/v1/ping"}


def _build_hub(settings: Any) -> Hub:
    from catalog.access.ratelimit import open_rate_limiter
    from catalog.access.workdays import Calendar
    from catalog.auth.keys import KeyStore
    from catalog.directory.grades import policy_of

    engine = engine_for(
        settings.hub_db_url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
    )
    return Hub(
        settings=settings,
        engine=engine,
        keys=KeyStore(engine, settings.signing_keys_dir),
        limiter=open_rate_limiter(settings.redis_url),
        calendar=Calendar.from_settings(settings),
        grade_policy=policy_of(settings),
        audit_batch_max=settings.audit_batch_max,
        on_audit_batch=observe_audit_batch,
        db_concurrency=settings.db_pool_size,
    )


class AnomalyScanner:
    """Scans the audit log for access anomalies every ``every_s`` seconds while the API serves
    (each worker does; a PostgreSQL advisory lock makes the scans take turns, and a scan that
    finds an anomaly already open updates it). ``every_s`` 0: never (``sharehub anomalies scan``
    from cron or an Airflow task instead)."""

    def __init__(self, hub: Hub, every_s: int) -> None:
        self.hub = hub
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.every_s > 0:
            self._thread = threading.Thread(target=self._run, name="anomaly-scan", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        thresholds = Thresholds.of(self.hub.settings)
        while not self._stop.wait(self.every_s):
            try:
                found = anomalies.scan(self.hub.engine, thresholds, self.hub.grade_policy)
            except Exception:  # a failed scan must not stop the next one
                logging.getLogger("sharehub.anomalies").exception("access anomaly scan failed")
                continue
            if found:
                self.hub.throttles.forget()
                logging.getLogger("sharehub.anomalies").warning(
                    "access anomalies: %s", ", ".join(f"{a.app_id} {a.dataset_code} {a.kind}" for a in found)
                )

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


def create_app(settings: Any) -> FastAPI:
    """The FastAPI application for the hub's settings (uvicorn factory: ``sharehub.serve:create_app``)."""
    hub = _build_hub(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        scanner = AnomalyScanner(hub, settings.anomaly_scan_seconds)
        scanner.start()
        try:
            yield
        finally:
            scanner.stop()
            hub.close()

    app = FastAPI(
        title="sharehub access API",
        version="1",
        description=(
            "Government data sharing hub: directory, shared records, subject view (一人一档/一企一档), "
            "electronic certificates (电子证照), applications and grants, audit. Apps authenticate with "
            "OAuth2 client credentials at `POST /api/v1/token`; calls on personal data carry "
            "`X-End-User-Id` and `X-Case-Number`. Errors have a stable `code` and English and "
            "Chinese messages."
        ),
        lifespan=lifespan,
        dependencies=[Depends(strict_query)],
    )
    app.state.hub = hub

    @app.exception_handler(HubError)
    async def _hub_error(request: Request, exc: HubError) -> JSONResponse:
        call: CallAudit | None = getattr(request.state, "call", None)
        if call is not None and call.reason is None:
            call.reason = exc.code
        return JSONResponse(
            status_code=status_of(exc), content=error_body(exc), headers=headers_of(exc) or None
        )

    @app.exception_handler(KeyStoreError)
    async def _keys(request: Request, exc: KeyStoreError) -> JSONResponse:
        """A missing private key file (lost volume): say so, without the file path or key id."""
        import logging

        logging.getLogger("sharehub.api").error("signing keys unavailable: %s", exc)
        call: CallAudit | None = getattr(request.state, "call", None)
        if call is not None:
            call.reason = "keys_unavailable"
        err = HubError("keys_unavailable")
        return JSONResponse(status_code=status_of(err), content=error_body(err))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        call: CallAudit | None = getattr(request.state, "call", None)
        if call is not None:
            call.reason = "invalid_request"
        identify_quietly(request)
        # FastAPI's own answer echoes each bad input; an input it cannot write as JSON (NaN, a
        # lone surrogate) would turn the 422 into a 500, and echoing input helps no client
        detail = [
            {"type": str(e.get("type", "")), "loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        return JSONResponse(status_code=422, content={"detail": _json_safe(detail)})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        """Starlette's own refusals (unknown path, wrong method, unreadable body) in our error shape."""
        headers = dict(exc.headers or {})
        err: HubError
        if exc.status_code == 404:
            err = HubError("route_not_found", path=request.url.path[:200])
        elif exc.status_code == 405:
            err = HubError("method_not_allowed", method=request.method)
            headers["Allow"] = ", ".join(_allowed_methods(request))
        elif exc.status_code == 400:
            err = HubError("bad_body", why=str(exc.detail))
        elif exc.status_code == 413:
            err = HubError("body_too_large", limit=getattr(exc, "limit", hub.settings.api_max_body_bytes))
            headers["Connection"] = "close"
        elif exc.status_code == 408:
            err = HubError("body_timeout", seconds=hub.settings.api_body_timeout_seconds)
            headers["Connection"] = "close"
        else:
            err = ApiError("http_error", exc.status_code, why=str(exc.detail))
        call: CallAudit | None = getattr(request.state, "call", None)
        if call is not None:
            call.reason = err.code
        identify_quietly(request)
        return JSONResponse(status_code=status_of(err), content=error_body(err), headers=headers or None)

    s = hub.settings
    app.add_middleware(
        LimitsMiddleware,
        max_body_bytes=s.api_max_body_bytes,
        body_timeout_s=s.api_body_timeout_seconds,
        max_query_params=s.api_max_query_params,
    )
    app.add_middleware(AuditMiddleware, hub=hub)  # added after the limits: it audits them too
    app.add_middleware(MetricsMiddleware)  # outermost: counts the audit log's refusals as well
    install_access_log_redaction()

    @app.get("/api/v1/health", tags=["meta"], response_model=Health, responses=errors())
    def health() -> dict[str, Any]:
        import sqlalchemy as sa

        with hub.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return {"status": "ok"}

    @app.get("/api/v1/ping", tags=["meta"], response_model=Health, responses=errors())
    async def ping() -> dict[str, Any]:
        """Liveness of the process alone: a fixed answer, no database, no authentication, not
        audited. (``/health`` also checks the hub DB.)"""
        return {"status": "ok"}

    @app.get(
        METRICS_PATH,
        tags=["meta"],
        response_class=Response,
        responses={
            200: {
                "content": {CONTENT_TYPE: {"schema": {"type": "string"}}},
                "description": "the Prometheus text exposition format 0.0.4",
            },
            **errors(401, 403),
        },
        openapi_extra={"security": [{}]},
        summary="Metrics for Prometheus",
    )
    def metrics(request: Request) -> Response:
        """Calls by route template, decision and status, latencies, rate-limit refusals, audit
        batch sizes and the sync runs. Not audited and not counted. With the setting
        ``metrics_token``, only a scrape with ``Authorization: Bearer <token>`` gets them (401
        without a token, 403 with another); without it the per-dataset sync series (labelled
        with dataset codes) are left out."""
        guarded = _check_metrics_token(request, getattr(settings, "metrics_token", None))
        return Response(exposition(hub.engine, per_dataset=guarded), media_type=CONTENT_TYPE)

    for module in (
        auth,
        directory,
        catalogue,
        records,
        certificates,
        applications,
        objections,
        audit,
        sharing,
        subscriptions,
    ):
        app.include_router(module.router)
    app.include_router(auth.well_known)
    return app


def _check_metrics_token(request: Request, expected: Any) -> bool:
    """401 without a bearer token, 403 with another than ``expected`` (a str or SecretStr);
    nothing is checked when no token is configured. True when the scrape proved the token (the
    per-dataset series are only for such a scraper)."""
    if expected is None:
        return False
    want = expected.get_secret_value() if hasattr(expected, "get_secret_value") else str(expected)
    if not want:
        return False
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        err = ApiError("not_authenticated", 401)
        err.headers = {"WWW-Authenticate": "Bearer"}
        raise err
    if not hmac.compare_digest(token.strip().encode(), want.encode()):
        raise HubError("metrics_forbidden")
    return True


def _json_safe(value: Any) -> Any:
    """``value`` with every string made encodable as UTF-8 (lone surrogates escaped)."""
    if isinstance(value, str):
        return value if value.isascii() else value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(_json_safe(k)): _json_safe(v) for k, v in value.items()}
    return value if isinstance(value, int | bool) or value is None else str(value)


def _allowed_methods(request: Request) -> list[str]:
    """Every method any route of this path answers (Starlette names only the first route's)."""
    from starlette.routing import Match, Route

    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches({**request.scope, "method": next(iter(route.methods))})
            if match is Match.FULL:
                methods |= route.methods
    return sorted(methods)


def _new_request_id() -> str:
    """A random 128-bit id (UUID4 hex) from the process's PRNG: ``uuid4`` reads the OS's random
    source, a system call that gives up the GIL on the event loop's thread and, under load, waits
    to get it back from the worker threads. A request id correlates; it guards nothing."""
    return uuid.UUID(int=_random.getrandbits(128), version=4).hex


class AuditMiddleware:
    """Writes the audit record of every ``/api/v1`` call before its response leaves.

    A plain ASGI middleware (Starlette's ``BaseHTTPMiddleware`` costs a task group and memory
    streams per request): it holds the response's start message, appends the record (the
    endpoints and error handlers have filled in ``request.state.call`` by then) and only then
    lets the response go, with ``X-Request-Id`` — always the hub's own, never one a client sent
    (two clients could otherwise make their calls share an id). When the record cannot be written the caller
    gets 503 ``audit_unavailable`` instead, and nothing of the endpoint's answer. An exception
    that escapes the app is recorded as 500 ``internal_error`` and re-raised. ``/health`` and
    ``/ping`` pass through unaudited, as does everything outside ``prefix`` (``/api/v1``; the
    portal adds a second instance for ``/portal``, its static files unaudited).
    """

    def __init__(
        self,
        app: ASGIApp,
        hub: Hub,
        prefix: str = "/api/v1",
        unaudited: frozenset[str] = frozenset(_UNAUDITED),
        unaudited_prefix: str | None = None,
    ) -> None:
        self.app = app
        self.hub = hub
        self.prefix = prefix
        self.unaudited = unaudited
        self.unaudited_prefix = unaudited_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if (
            not path.startswith(self.prefix)
            or path in self.unaudited
            or (self.unaudited_prefix is not None and path.startswith(self.unaudited_prefix))
        ):
            await self.app(scope, receive, send)
            return
        request_id = _new_request_id()
        call = CallAudit()
        scope.setdefault("state", {})["call"] = call
        at = dt.datetime.now(dt.UTC)
        # as Starlette's request.url.path shows it
        shown_path = path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
        sent = {"start": False, "refused": False}

        async def send_after_audit(message: Message) -> None:
            if message["type"] == "http.response.start":
                try:
                    await _write_audit(
                        self.hub, call, scope["method"], shown_path, request_id, at, message["status"], None
                    )
                except Exception:
                    sent["refused"] = True
                    refusal = JSONResponse(
                        status_code=503,
                        content=error_body(HubError("audit_unavailable")),
                        headers={"X-Request-Id": request_id},
                    )
                    await refusal(scope, receive, send)
                    return
                sent["start"] = True
                headers = MutableHeaders(scope=message)
                headers["X-Request-Id"] = request_id
                await send(message)
            elif not sent["refused"]:
                await send(message)

        try:
            await self.app(scope, receive, send_after_audit)
        except Exception:
            if not sent["start"] and not sent["refused"]:
                await _write_audit(
                    self.hub, call, scope["method"], shown_path, request_id, at, 500, "internal_error"
                )
            raise


async def _write_audit(
    hub: Hub,
    call: CallAudit,
    method: str,
    path: str,
    request_id: str,
    at: dt.datetime,
    status: int,
    reason: str | None,
) -> None:
    from catalog.audit import AuditRecord

    p = call.principal
    rec = AuditRecord(
        at=at,
        request_id=request_id,
        actor_kind=p.kind,
        method=method,
        path=path[:500],
        action=call.action,
        decision=decision_of(status),
        status=status,
        row_count=call.row_count if status < 400 else 0,
        app_id=p.app_id,
        staff=p.username,
        end_user=p.end_user,
        case_number=p.case_number,
        dataset_code=call.dataset_code,
        datasets=dict(call.datasets) if call.datasets else None,
        certificate_id=call.certificate_id,
        subject=call.subject,
        query=call.query,
        fields=call.fields if status < 400 else None,
        reason=reason or call.reason,
    )
    await hub.audit.write_async(rec)
