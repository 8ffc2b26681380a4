"""Sign in, sign out, and the language switch."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from catalog.api.routers.auth import password_login
from catalog.errors import HubError
from catalog.portal import sessions
from catalog.portal.web import LANG_COOKIE, SESSION_COOKIE, PageDep, principal_of, safe_next, secure_cookies

router = APIRouter(prefix="/portal")


@router.get("/login")
def login_form(page: PageDep, next: Annotated[str, Query(max_length=500)] = "/portal/") -> Response:
    page.audit("portal.login_form")
    return page.render("login.html", next=safe_next(next), username="", error=None)


@router.post("/login")
def login(
    page: PageDep,
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=500)] = "/portal/",
) -> Response:
    page.audit("portal.login")
    hub = page.hub
    try:
        user = password_login(hub, request, username, password)
    except HubError as exc:
        if exc.code in {"rate_limited", "login_busy"}:
            _deny(request, exc.code)
            return page.render(
                "login.html", 429, next=safe_next(next), username=username, error="login.throttled"
            )
        raise
    if user is None:
        _deny(request, "invalid_grant")
        return page.render("login.html", 401, next=safe_next(next), username=username, error="login.failed")
    settings = page.settings
    session_id, _session = sessions.start(
        hub.engine, user, max_age=dt.timedelta(hours=settings.portal_session_max_hours)
    )
    call = getattr(request.state, "call", None)
    if call is not None:
        call.principal = principal_of(user)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(settings),
        path="/portal",
        max_age=settings.portal_session_max_hours * 3600,
    )
    return response


def _deny(request: Request, code: str) -> None:
    call = getattr(request.state, "call", None)
    if call is not None:
        call.reason = code


@router.post("/logout")
def logout(page: PageDep, request: Request) -> Response:
    page.audit("portal.logout")
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        sessions.end(page.hub.engine, session_id)
    response = RedirectResponse("/portal/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/portal")
    return response


@router.get("/lang")
def switch_language(
    page: PageDep,
    to: Annotated[str, Query(pattern="^(zh|en)$")],
    next: Annotated[str, Query(max_length=500)] = "/portal/",
) -> Response:
    """Remember the reader's language (a preference cookie: no state of the hub changes)."""
    page.audit("portal.language")
    page.extra_cookies[LANG_COOKIE] = to
    return page.redirect(safe_next(next))
