"""``POST /api/v1/token`` (OAuth2 client credentials for apps, password for staff) and the JWKS."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse

from catalog.access import app_registry, staff
from catalog.access.gate import Principal
from catalog.api.context import CallDep, HubDep, client_address, limit
from catalog.api.errors_doc import errors
from catalog.api.schemas.auth import Jwks, TokenError, TokenResponse
from catalog.api.status import ApiError
from catalog.auth import tokens

router = APIRouter(prefix="/api/v1", tags=["auth"])
well_known = APIRouter(tags=["auth"])

#: RFC 6749 §5.2 errors: code -> (status, English, Chinese)
_ERRORS: dict[str, tuple[int, str, str]] = {
    "invalid_client": (401, "client authentication failed", "应用身份认证失败"),
    "invalid_grant": (
        400,
        "username or password is wrong, or the account is disabled",
        "用户名或密码错误，或账号已停用",
    ),
    "unsupported_grant_type": (
        400,
        "grant_type must be client_credentials (apps) or password (staff)",
        "grant_type 须为 client_credentials（应用）或 password（工作人员）",
    ),
    "invalid_request": (400, "missing credentials", "缺少认证信息"),
}


def _token_error(call: Any, code: str) -> JSONResponse:
    status, en, zh = _ERRORS[code]
    call.reason = code
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="sharehub"'
    body = {"error": code, "error_description": en, "error_description_zh": zh}
    return JSONResponse(status_code=status, content=body, headers=headers)


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        user, _, secret = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, secret


@router.post(
    "/token",
    response_model=TokenResponse,
    responses={
        400: {"model": TokenError},
        401: {"model": TokenError},
        **{k: v for k, v in errors(429).items() if k != 400},
    },
    openapi_extra={"x-dynamic-query": True},  # RFC 6749: parameters are in the form body; a query is ignored
    summary="Get an access token",
)
def token(
    request: Request,
    hub: HubDep,
    call: CallDep,
    grant_type: Annotated[str, Form(min_length=1, max_length=40)],
    client_id: Annotated[str | None, Form(min_length=1, max_length=100)] = None,
    client_secret: Annotated[str | None, Form(min_length=1, max_length=200)] = None,
    username: Annotated[str | None, Form(min_length=1, max_length=64)] = None,
    password: Annotated[str | None, Form(min_length=1, max_length=200)] = None,
    scope: Annotated[str | None, Form(min_length=1, max_length=200)] = None,
) -> Any:
    """OAuth2 token endpoint (RFC 6749). Apps use ``client_credentials`` with their client id
    and secret (form fields or HTTP Basic); department staff use ``password``. The token is a
    short-lived EdDSA-signed JWT; its audience is this API."""
    call.action = "token"
    if grant_type == "client_credentials":
        basic = _basic(request)
        cid, secret = basic if basic else (client_id, client_secret)
        if not cid or not secret:
            return _token_error(call, "invalid_request")
        app = app_registry.authenticate_app(hub.engine, cid, secret)
        if app is None:
            return _token_error(call, "invalid_client")
        call.principal = Principal(
            kind="app", app_id=app.app_id, app_name=app.name, department_code=app.department_code
        )
        claims: dict[str, Any] = {"gen": app.secret_generation, "dept": app.department_code}
    elif grant_type == "password":
        if not username or not password:
            return _token_error(call, "invalid_request")
        user = password_login(hub, request, username, password)
        if user is None:
            return _token_error(call, "invalid_grant")
        call.principal = Principal(
            kind="staff", username=user.username, department_code=user.department_code, roles=user.roles
        )
        claims = {"gen": user.password_generation, "dept": user.department_code, "roles": sorted(user.roles)}
    else:
        return _token_error(call, "unsupported_grant_type")
    s = hub.settings
    tok, expires_in = tokens.issue_token(
        hub.keys,
        subject=call.principal.app_id or call.principal.username or "",
        kind=call.principal.kind,
        audience=s.token_audience,
        issuer=s.token_issuer,
        ttl_s=s.token_ttl_seconds,
        claims=claims,
    )
    return JSONResponse(
        {"access_token": tok, "token_type": "Bearer", "expires_in": expires_in},
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def password_login(hub: Any, request: Request, username: str, password: str) -> staff.StaffUser | None:
    """Check a staff password, throttled so that guessing is slow and nobody can lock others out.

    Limits per client address (all accounts: password spraying with fresh user names) and per
    account *and* address (guessing one password) — never per account alone, which would let
    anyone lock a staff member out with a few wrong passwords. At most ``login_concurrency``
    argon2 checks run at once per process, so a burst of logins cannot starve data calls of CPU;
    a login that finds no free slot within two seconds gets 429 ``login_busy``."""
    s = hub.settings
    address = client_address(request)
    limit(hub, f"login:addr:{address}", s.login_rate_limit_per_address)
    limit(hub, f"login:acct:{username.casefold()}:{address}", s.login_rate_limit_per_account)
    if not hub.login_slots.acquire(timeout=2.0):
        err = ApiError("login_busy", 429)
        err.headers = {"Retry-After": "1"}
        raise err
    try:
        return staff.authenticate_staff(hub.engine, username, password)
    finally:
        hub.login_slots.release()


@router.get("/keys", response_model=Jwks, responses=errors(), summary="The hub's public keys (JWKS)")
def keys(hub: HubDep, call: CallDep) -> dict[str, Any]:
    """Ed25519 public keys (RFC 8037 OKP JWKs) for tokens and certificate signatures, current and
    retired; anyone may fetch them to verify certificates offline."""
    call.action = "keys"
    return hub.keys.jwks()


@well_known.get("/.well-known/jwks.json", response_model=Jwks, include_in_schema=False)
def jwks(hub: HubDep) -> dict[str, Any]:
    return hub.keys.jwks()
