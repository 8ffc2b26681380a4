"""Sign in (with a password, or at the identity provider through OpenID Connect), sign out,
and the language switch."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from catalog.access import sso
from catalog.access.staff import StaffUser
from catalog.api.routers.auth import password_login
from catalog.errors import HubError
from catalog.portal import i18n, sessions
from catalog.portal.oidc import OidcFailure, relying_party
from catalog.portal.web import (
    LANG_COOKIE,
    SESSION_COOKIE,
    Page,
    PageDep,
    principal_of,
    safe_next,
    secure_cookies,
)

router = APIRouter(prefix="/portal")
log = logging.getLogger(__name__)

#: the cookie binding a sign-in at the IdP to the browser that started it
SSO_COOKIE = "sh_sso"
_SSO_PATH = "/portal/sso"

i18n.register(
    {
        "login.or": ("或使用账号密码登录", "or sign in with a password"),
        "login.password_off": (
            "本平台仅支持统一身份认证登录。",
            "This hub signs staff in through single sign-on only.",
        ),
        "sso.failed": (
            "统一身份认证登录未完成，请重试。",
            "The single sign-on did not complete; please try again.",
        ),
        "sso.idp_error": (
            "身份认证平台未完成登录（可能已取消）。",
            "The identity provider did not sign you in.",
        ),
        "sso.idp_unreachable": (
            "暂时无法连接统一身份认证平台，请稍后再试。",
            "The identity provider cannot be reached; try again later.",
        ),
        "sso.unknown_user": (
            "您的统一身份认证账号未开通本平台权限，请联系本单位管理员。",
            "Your identity-provider account has no access to this hub; ask your department's admin.",
        ),
        "sso.no_username": (
            "身份认证平台未提供用户名，无法登录。",
            "The identity provider sent no user name.",
        ),
        "sso.no_roles": (
            "您的统一身份认证账号未分配本平台角色。",
            "Your identity-provider account holds no role in this hub.",
        ),
        "sso.unknown_department": (
            "您所在单位未接入本平台。",
            "Your department is not on this hub.",
        ),
        "sso.bad_roles": (
            "您的账号角色与所在单位不符（全市账号仅限管理员或审计员）。",
            "Your roles do not fit your scope (hub-wide accounts are admins or auditors only).",
        ),
        "sso.account_disabled": ("您的账号已停用。", "Your account is disabled."),
        "sso.username_clash": (
            "该用户名与已有账号仅大小写不同，请联系管理员。",
            "This user name differs from an existing account's only in case; ask an admin.",
        ),
        "sso.subject_mismatch": (
            "该用户名已与另一个统一身份认证账号绑定。",
            "This user name is linked to another identity-provider account.",
        ),
    }
)


def _sso_button(page: Page) -> str | None:
    """The label of the single sign-on button, when single sign-on is set up."""
    return page.settings.oidc_label if relying_party(page.hub.settings) is not None else None


def _login_page(
    page: Page, status: int = 200, *, next: str, username: str = "", error: str | None
) -> Response:
    return page.render(
        "login.html",
        status,
        next=safe_next(next),
        username=username,
        error=error,
        sso_label=_sso_button(page),
        password_login=page.settings.portal_password_login,
    )


@router.get("/login")
def login_form(page: PageDep, next: Annotated[str, Query(max_length=500)] = "/portal/") -> Response:
    page.audit("portal.login_form")
    return _login_page(page, next=next, error=None)


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
    if not page.settings.portal_password_login:
        _deny(request, "password_login_off")
        return _login_page(page, 403, next=next, error="login.password_off")
    try:
        user = password_login(hub, request, username, password)
    except HubError as exc:
        if exc.code in {"rate_limited", "login_busy"}:
            _deny(request, exc.code)
            return _login_page(page, 429, next=next, username=username, error="login.throttled")
        raise
    if user is None:
        _deny(request, "invalid_grant")
        return _login_page(page, 401, next=next, username=username, error="login.failed")
    return _signed_in(page, request, user, next)


def _signed_in(page: Page, request: Request, user: StaffUser, next: str) -> Response:
    """A new session for ``user``, and the way on to ``next``."""
    hub, settings = page.hub, page.settings
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


def _public_url(page: Page, path: str) -> str:
    base = page.settings.portal_public_url or str(page.request.base_url)
    return base.rstrip("/") + path


@router.get("/sso/start")
def sso_start(page: PageDep, next: Annotated[str, Query(max_length=500)] = "/portal/") -> Response:
    """Send the browser to the identity provider (authorization code with PKCE)."""
    page.audit("portal.sso_start")
    party = relying_party(page.hub.settings)
    if party is None:
        raise HTTPException(404)
    try:
        url, browser = party.begin(
            page.hub.engine, redirect_uri=_public_url(page, f"{_SSO_PATH}/callback"), next_url=safe_next(next)
        )
    except OidcFailure as exc:
        _deny(page.request, f"sso_{exc.code}")
        log.warning("single sign-on could not start: %s", exc)
        return _login_page(page, 503, next=next, error="sso.idp_unreachable")
    response = page.redirect(url)
    response.set_cookie(
        SSO_COOKIE,
        browser,
        httponly=True,
        samesite="lax",  # sent on the IdP's top-level redirect back
        secure=secure_cookies(page.settings),
        path=_SSO_PATH,
        max_age=600,
    )
    return response


_Param = Annotated[str | None, Query(max_length=4096)]


@router.get("/sso/callback")
def sso_callback(
    page: PageDep,
    request: Request,
    code: _Param = None,
    state: _Param = None,
    iss: _Param = None,
    error: _Param = None,
    error_description: _Param = None,
    session_state: _Param = None,
) -> Response:
    """The identity provider's answer (RFC 6749 §4.1.2, RFC 9207 ``iss``, OIDC Session
    Management's ``session_state``): verify it, map the claims to an account, sign in."""
    page.audit("portal.sso_login")
    hub = page.hub
    party = relying_party(hub.settings)
    if party is None:
        raise HTTPException(404)
    given = {"code": code, "state": state, "iss": iss, "error": error, "error_description": error_description}
    params = {k: v for k, v in given.items() if v is not None}
    try:
        claims, next_url = party.finish(
            hub.engine,
            redirect_uri=_public_url(page, f"{_SSO_PATH}/callback"),
            params=params,
            browser=request.cookies.get(SSO_COOKIE),
        )
        signed = sso.sign_in(hub.engine, party.config.issuer, claims, sso.ClaimMapping.of(hub.settings))
    except OidcFailure as exc:
        _deny(request, f"sso_{exc.code}")
        log.warning("single sign-on refused: %s", exc)
        key = f"sso.{exc.code}" if exc.code in {"idp_error", "idp_unreachable"} else "sso.failed"
        return _forget_sso(_login_page(page, 400, next="/portal/", error=key))
    except sso.SsoRefused as exc:
        _deny(request, f"sso_{exc.code}")
        log.info("single sign-on refused: %s", exc.code)
        return _forget_sso(_login_page(page, 403, next="/portal/", error=f"sso.{exc.code}"))
    if signed.event != "signed_in":
        page.audit(f"portal.sso_{signed.event}")  # the account was linked or made by this sign-in
    return _forget_sso(_signed_in(page, request, signed.user, next_url))


def _forget_sso(response: Response) -> Response:
    response.delete_cookie(SSO_COOKIE, path=_SSO_PATH)
    return response


@router.post("/logout")
def logout(page: PageDep, request: Request) -> Response:
    """End the session; an account signed in through the IdP is signed out there too
    (RP-initiated logout), which brings the browser back to the portal."""
    page.audit("portal.logout")
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        sessions.end(page.hub.engine, session_id)
    target = "/portal/"
    party = relying_party(page.hub.settings)
    user = page.user
    if (
        party is not None
        and user is not None
        and sso.linked_issuer(page.hub.engine, user.username) == (party.config.issuer)
    ):
        target = party.logout_url(_public_url(page, "/portal/")) or target
    response = RedirectResponse(target, status_code=303)
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
