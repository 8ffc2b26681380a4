"""The portal on the access API's FastAPI app: ``/portal`` pages, ``/portal/static`` assets.

:func:`create_app` is the hub's whole web application (API + portal); :func:`install_portal`
adds the portal to an API app built by :func:`catalog.api.app.create_app`. Refusals under
``/portal`` are HTML pages in the reader's language, never the API's JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from catalog.api.app import AuditMiddleware
from catalog.api.app import create_app as create_api_app
from catalog.api.context import CallAudit, Hub
from catalog.errors import MESSAGES, HubError
from catalog.portal import filters, i18n
from catalog.portal.pages import ALL_PAGES
from catalog.portal.web import TEMPLATES, PortalRefusal, SignInRequired, request_lang

PREFIX = "/portal"
STATIC = Path(__file__).parent / "static"

#: assets are immutable per file name (the vendored library carries its version)
_STATIC_CACHE = "public, max-age=3600"


class _Static(StaticFiles):
    async def get_response(self, path: str, scope: Any) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = _STATIC_CACHE
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def create_app(settings: Any) -> FastAPI:
    """The access API and the portal, for the hub's settings."""
    app = create_api_app(settings)
    install_portal(app)
    return app


def install_portal(app: FastAPI) -> None:
    """Add the portal's routes, assets, error pages and audit to an API app."""
    hub: Hub = app.state.hub
    filters.install(TEMPLATES.env)
    for module in ALL_PAGES:
        app.include_router(module.router, include_in_schema=False)
    app.mount(f"{PREFIX}/static", _Static(directory=STATIC), name="portal-static")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    api_http = app.exception_handlers[StarletteHTTPException]
    api_hub_error = app.exception_handlers[HubError]
    api_invalid = app.exception_handlers[RequestValidationError]

    async def refusal(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PortalRefusal)
        return _error_page(request, exc.status, exc.message_key)

    async def sign_in(request: Request, exc: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{PREFIX}/login?next={quote(target, safe='')}", status_code=303)

    async def http(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(PREFIX) and isinstance(exc, StarletteHTTPException):
            _reason(request, "route_not_found" if exc.status_code == 404 else f"http_{exc.status_code}")
            key = "error.not_found" if exc.status_code == 404 else "error.title"
            return _error_page(request, exc.status_code, key)
        return await _call(api_http, request, exc)

    async def hub_error(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(PREFIX) and isinstance(exc, HubError):
            from catalog.api.status import status_of

            _reason(request, exc.code)
            return _error_page(request, status_of(exc), None, hub_error=exc)
        return await _call(api_hub_error, request, exc)

    async def invalid(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(PREFIX):
            _reason(request, "invalid_request")
            return _error_page(request, 422, "error.title")
        return await _call(api_invalid, request, exc)

    app.add_exception_handler(PortalRefusal, refusal)
    app.add_exception_handler(SignInRequired, sign_in)
    app.add_exception_handler(StarletteHTTPException, http)
    app.add_exception_handler(HubError, hub_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_middleware(
        AuditMiddleware,
        hub=hub,
        prefix=PREFIX,
        unaudited=frozenset(),
        unaudited_prefix=f"{PREFIX}/static",
    )


async def _call(handler: Any, request: Request, exc: Exception) -> Response:
    result = handler(request, exc)
    if hasattr(result, "__await__"):
        result = await result
    assert isinstance(result, Response)
    return result


def _reason(request: Request, code: str) -> None:
    call: CallAudit | None = getattr(request.state, "call", None)
    if call is not None and call.reason is None:
        call.reason = code


def _error_page(
    request: Request, status: int, message_key: str | None, *, hub_error: HubError | None = None
) -> HTMLResponse:
    lang = request_lang(request)
    if hub_error is not None:
        en, zh = MESSAGES.get(hub_error.code, (hub_error.code, hub_error.code))
        text = (en if lang == "en" else zh).format(**hub_error.params)
    else:
        text = i18n.message(message_key or "error.title", lang)
    return TEMPLATES.TemplateResponse(
        request,
        "error.html",
        {
            "page": None,
            "lang": lang,
            "t": lambda key, **values: i18n.message(key, lang, **values),
            "message": text,
            "status": status,
        },
        status_code=status,
    )
