"""What every portal page shares: who is signed in, the language, CSRF, rendering, refusals.

* **Who:** the ``sharehub_session`` cookie (HttpOnly, SameSite=Lax, Secure when
  ``portal_secure_cookies``) names a server-side session (:mod:`catalog.portal.sessions`).
* **CSRF:** every state-changing request (any method but GET/HEAD) must carry the CSRF token,
  as the ``csrf_token`` form field or the ``X-CSRF-Token`` header (htmx sends it). Signed in,
  the token is the session's own; signed out (the sign-in form) it is the double-submit
  ``sharehub_csrf`` cookie. A request whose ``Origin`` is another site is refused too.
* **Scope:** :meth:`Page.require` checks a role and, for a department's data, that the account
  covers that department — on every page and every action, not only in the navigation.
* **Audit:** the portal's audit middleware records every request in the same chain as the API;
  a page fills in ``request.state.call`` (action, dataset) like an API endpoint does.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Protocol, cast
from urllib.parse import urlsplit

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from catalog.access.gate import Principal
from catalog.access.staff import ROLES, StaffUser
from catalog.api.context import CallAudit, Hub
from catalog.portal import i18n, sessions

SESSION_COOKIE = "sharehub_session"
CSRF_COOKIE = "sharehub_csrf"
LANG_COOKIE = "sharehub_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.globals["ROLES"] = ROLES
TEMPLATES.env.undefined = jinja2.StrictUndefined  # a missing variable fails the page's test


class PortalSettings(Protocol):
    """The settings the portal reads (``sharehub.settings.Settings`` fits)."""

    portal_secure_cookies: bool | None
    database_url: str | None
    portal_session_idle_minutes: int
    portal_session_max_hours: int
    portal_password_login: bool
    portal_public_url: str | None
    oidc_label: str


@dataclass(frozen=True)
class NavItem:
    """One entry of the main navigation, shown to accounts holding one of ``roles``."""

    key: str  # message key of the label
    href: str
    roles: tuple[str, ...] = ()  # empty: everyone, signed in or not
    order: int = 50


_NAV: list[NavItem] = []


def register_nav(*items: NavItem) -> None:
    """Add navigation entries (each page module registers its own)."""
    for item in items:
        if item not in _NAV:
            _NAV.append(item)
    _NAV.sort(key=lambda i: (i.order, i.href))


@dataclass(frozen=True)
class ShownNavItem:
    key: str
    href: str
    current: bool


class PortalRefusal(Exception):
    """A page or action refused; rendered as an HTML page with this status."""

    def __init__(self, status: int, message_key: str, *, code: str | None = None) -> None:
        super().__init__(message_key)
        self.status = status
        self.message_key = message_key
        self.code = code or message_key.removeprefix("error.")


class SignInRequired(Exception):
    """The page needs a signed-in account: redirect to the sign-in page."""


@dataclass
class Page:
    """One portal request: the hub, the account (or None), the language, the CSRF token."""

    request: Request
    hub: Hub
    user: StaffUser | None
    lang: str
    csrf_token: str
    new_csrf_cookie: bool = False
    extra_cookies: dict[str, str] = field(default_factory=dict)

    @property
    def settings(self) -> PortalSettings:
        return cast(PortalSettings, self.hub.settings)

    def t(self, key: str, **values: object) -> str:
        return i18n.message(key, self.lang, **values)

    def audit(self, action: str, *, dataset_code: str | None = None, row_count: int = 0) -> None:
        """What the audit record of this request says it did."""
        call: CallAudit | None = getattr(self.request.state, "call", None)
        if call is not None:
            call.action = action
            call.dataset_code = dataset_code
            call.row_count = row_count

    def nav(self) -> list[ShownNavItem]:
        """The navigation entries this account may use; the current one marked."""
        path = self.request.url.path
        shown = []
        for item in _NAV:
            if item.roles and (self.user is None or not any(self.user.has(r) for r in item.roles)):
                continue
            current = path == item.href or (item.href != "/portal/" and path.startswith(item.href))
            shown.append(ShownNavItem(item.key, item.href, current))
        return shown

    def require(self, *roles: str, department: str | None = None) -> StaffUser:
        """The signed-in account, holding one of ``roles`` (admin holds all), covering ``department``."""
        if self.user is None:
            raise SignInRequired
        if roles and not any(self.user.has(r) for r in roles):
            self._refuse()
        if department is not None and not self.user.covers(department):
            self._refuse()
        return self.user

    def refuse(self) -> None:
        """403 for this account (audited with reason ``forbidden``)."""
        self._refuse()

    def _refuse(self) -> None:
        call: CallAudit | None = getattr(self.request.state, "call", None)
        if call is not None:
            call.reason = "forbidden"
        raise PortalRefusal(403, "error.forbidden", code="forbidden")

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        """The template with the page's context; a partial (htmx) when the template says so."""
        response = TEMPLATES.TemplateResponse(
            self.request,
            template,
            {"page": self, "t": self.t, "lang": self.lang, **context},
            status_code=status,
        )
        self.set_cookies(response)
        return response

    def redirect(self, url: str, status: int = 303) -> RedirectResponse:
        response = RedirectResponse(url, status_code=status)
        self.set_cookies(response)
        return response

    def set_cookies(self, response: Response) -> None:
        secure = secure_cookies(self.settings)
        if self.new_csrf_cookie:
            response.set_cookie(
                CSRF_COOKIE, self.csrf_token, httponly=True, samesite="strict", secure=secure, path="/portal"
            )
        for name, value in self.extra_cookies.items():
            response.set_cookie(name, value, httponly=True, samesite="lax", secure=secure, path="/portal")


def request_lang(request: Request) -> str:
    lang = request.cookies.get(LANG_COOKIE, "")
    if lang in i18n.LANGS:
        return lang
    accept = request.headers.get("accept-language", "").lower()
    return "en" if accept.startswith("en") else i18n.DEFAULT_LANG


def principal_of(user: StaffUser | None) -> Principal:
    """The audit's principal for a portal account (the public when signed out)."""
    if user is None:
        return Principal()
    return Principal(
        kind="staff", username=user.username, department_code=user.department_code, roles=user.roles
    )


async def page(request: Request) -> Page:
    """The dependency every portal route takes: resolves the session and checks CSRF."""
    hub: Hub = request.app.state.hub
    settings = cast(PortalSettings, hub.settings)
    user: StaffUser | None = None
    csrf = ""
    new_cookie = False
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        session = await hub.run_db(
            lambda: sessions.load(
                hub.engine, session_id, idle=dt.timedelta(minutes=settings.portal_session_idle_minutes)
            )
        )
        if session is not None:
            user, csrf = session.user, session.csrf_token
    call: CallAudit | None = getattr(request.state, "call", None)
    if call is not None:
        call.principal = principal_of(user)
        call.action = "portal.view"
    if not csrf:
        csrf = request.cookies.get(CSRF_COOKIE, "")
        if not csrf or len(csrf) > 100:
            csrf, new_cookie = secrets.token_urlsafe(32), True
    p = Page(
        request=request,
        hub=hub,
        user=user,
        lang=request_lang(request),
        csrf_token=csrf,
        new_csrf_cookie=new_cookie,
    )
    if request.method not in _SAFE_METHODS:
        await _check_csrf(request, p)
    return p


async def _check_csrf(request: Request, p: Page) -> None:
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if urlsplit(origin).netloc != host:
            _csrf_refusal(request)
    elif origin == "null":
        _csrf_refusal(request)
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else ""
    if p.new_csrf_cookie or not sent or not hmac.compare_digest(sent.encode(), p.csrf_token.encode()):
        _csrf_refusal(request)


def _csrf_refusal(request: Request) -> None:
    call: CallAudit | None = getattr(request.state, "call", None)
    if call is not None:
        call.reason = "csrf"
    raise PortalRefusal(403, "error.csrf", code="csrf")


PageDep = Annotated[Page, Depends(page)]


def secure_cookies(settings: PortalSettings) -> bool:
    """Whether cookies are marked Secure: as configured, else whenever the hub runs on a server
    database (a deployment, behind HTTPS) rather than the embedded SQLite default (localhost)."""
    if settings.portal_secure_cookies is not None:
        return settings.portal_secure_cookies
    return bool(settings.database_url)


def safe_next(url: str | None, default: str = "/portal/") -> str:
    """A redirect target inside the portal only (no open redirect to another site)."""
    if not url or not url.startswith("/portal") or url.startswith("//") or "\\" in url:
        return default
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return default
    return url
