"""Staff accounts from an identity provider's claims (统一身份认证): which account an IdP user
signs in as, with which department and roles.

The protocol (OpenID Connect, authorization code with PKCE) is the portal's
(:mod:`catalog.portal.oidc`); this module only decides, from claims the portal has already
verified, who the user is in the hub:

* An account linked to the IdP subject (``sso_issuer`` + ``sso_subject``) is that account.
* Otherwise, with ``link_existing`` (off by default), the unlinked account of the same user
  name (``username_claim``) is linked on this first sign-in — safe only when the IdP guarantees
  that claim unique and not editable by its users (OIDC Core §5.7 warns that
  ``preferred_username`` is neither). An account already linked to another subject is never
  taken over (``subject_mismatch``). Without it an operator links accounts one by one
  (:func:`link`, ``sharehub staff link-sso``).
* Otherwise, with ``create_users``, a new account is made; else the user is refused
  (``unknown_user``). Accounts made here have no usable password, and a plain name (letters,
  digits, ``. _ @ -``, unchanged by NFKC) that no account has already, whatever its case
  (``username_clash``): no account can be made to look like another.
* With ``sync_roles`` the department and roles come from the claims at every sign-in, so a
  role removed at the IdP is gone at the next sign-in; an account the claims leave with no hub
  role (or no hub department) is disabled, so that neither its password nor a live session
  keeps what the IdP took away. Roles map through ``role_map``
  (IdP value -> hub roles); departments through ``department_map`` (IdP value -> hub code,
  ``""`` for hub-wide). Without a department map the claim is the hub code itself and a
  hub-wide account is never made from claims. No role, an unknown department, or a role set
  the hub does not allow for the scope (:func:`catalog.access.staff.create_staff`'s rules)
  refuse the sign-in: a user is never signed in with less checking than a password account.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa

from catalog.access.staff import ROLES, StaffUser, checked_roles, get_staff, set_status
from catalog.clock import utc_now
from catalog.db import tables
from catalog.errors import HubError

#: the stored password hash of an account made by single sign-on: matches no password
NO_PASSWORD = "!sso"  # noqa: S105 (not a password: a hash no password matches)

#: why a sign-in was refused -> what the portal tells the user (message keys: ``sso.<code>``)
REFUSALS = (
    "unknown_user",
    "no_username",
    "username_clash",
    "no_roles",
    "unknown_department",
    "bad_roles",
    "account_disabled",
    "subject_mismatch",
)


class SsoRefused(Exception):
    """The IdP's user may not sign in to the hub; ``code`` is one of :data:`REFUSALS`."""

    def __init__(self, code: str, detail: str = "") -> None:
        assert code in REFUSALS
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


#: a user name the hub makes from a claim: plain letters, digits and . _ @ - (after NFKC), so that
#: no account can look like another (case, zero-width or bidi characters, Cyrillic а for a, …)
PLAIN_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")


@dataclass(frozen=True)
class ClaimMapping:
    """How claims become an account (the ``oidc_*`` settings)."""

    username_claim: str = "preferred_username"
    department_claim: str = "department"
    roles_claim: str = "roles"
    role_map: Mapping[str, list[str]] = field(default_factory=dict)
    department_map: Mapping[str, str] = field(default_factory=dict)
    create_users: bool = False
    link_existing: bool = False
    sync_roles: bool = True

    @classmethod
    def of(cls, settings: Any) -> ClaimMapping:
        """The mapping of the hub's settings."""
        return cls(
            username_claim=settings.oidc_username_claim,
            department_claim=settings.oidc_department_claim,
            roles_claim=settings.oidc_roles_claim,
            role_map=dict(settings.oidc_role_map),
            department_map=dict(settings.oidc_department_map),
            create_users=settings.oidc_create_users,
            link_existing=settings.oidc_link_existing,
            sync_roles=settings.oidc_sync_roles,
        )


@dataclass(frozen=True)
class SignIn:
    """Who signed in, and what the sign-in did to the account (for the audit)."""

    user: StaffUser
    event: Literal["signed_in", "linked", "created"]


def _values(claim: Any) -> list[str]:
    if isinstance(claim, str):
        return claim.split()
    if isinstance(claim, list | tuple):
        return [v for v in claim if isinstance(v, str)]
    return []


def mapped_roles(claims: Mapping[str, Any], mapping: ClaimMapping) -> list[str]:
    """The hub roles the claims give (in the hub's order); may be empty."""
    found = _values(claims.get(mapping.roles_claim))
    wanted: set[str] = set()
    if mapping.role_map:
        for value in found:
            wanted.update(mapping.role_map.get(value, []))
    else:
        wanted.update(found)
    return [r for r in ROLES if r in wanted]


def mapped_department(conn: sa.Connection, claims: Mapping[str, Any], mapping: ClaimMapping) -> str | None:
    """The hub department code of the claims (None: hub-wide, only through the map)."""
    value = claims.get(mapping.department_claim)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str) or not value.strip():
        raise SsoRefused("unknown_department", f"no {mapping.department_claim} claim")
    value = value.strip()
    if mapping.department_map:
        if value not in mapping.department_map:
            raise SsoRefused("unknown_department", value)
        code = mapping.department_map[value]
        if code == "":
            return None
    else:
        code = value
    known = conn.execute(
        sa.select(tables.departments.c.code).where(tables.departments.c.code == code)
    ).first()
    if known is None:
        raise SsoRefused("unknown_department", code)
    return code


def _scope_and_roles(
    conn: sa.Connection, claims: Mapping[str, Any], mapping: ClaimMapping
) -> tuple[str | None, list[str]]:
    roles = mapped_roles(claims, mapping)
    if not roles:
        raise SsoRefused("no_roles", f"no hub role in the {mapping.roles_claim} claim")
    department = mapped_department(conn, claims, mapping)
    try:
        return department, checked_roles(roles, department)
    except HubError as exc:
        raise SsoRefused("bad_roles", exc.code) from None


def sign_in(
    engine: sa.Engine,
    issuer: str,
    claims: Mapping[str, Any],
    mapping: ClaimMapping,
    *,
    now: dt.datetime | None = None,
) -> SignIn:
    """The account the verified ``claims`` of ``issuer`` sign in as (linked or made when
    configured), or :class:`SsoRefused`."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise SsoRefused("unknown_user", "no usable sub claim")
    t = tables.staff
    at = utc_now(now)
    event: Literal["signed_in", "linked", "created"] = "signed_in"
    lost: tuple[str, SsoRefused] | None = None
    with engine.begin() as conn:
        row = conn.execute(sa.select(t).where(t.c.sso_issuer == issuer, t.c.sso_subject == subject)).first()
        if row is None:
            username = claims.get(mapping.username_claim)
            if not isinstance(username, str) or not username.strip() or len(username.strip()) > 64:
                raise SsoRefused("no_username", f"no usable {mapping.username_claim} claim")
            username = username.strip()
            row = conn.execute(sa.select(t).where(t.c.username == username)).first()
            if row is not None:
                if row.sso_subject is not None:
                    raise SsoRefused("subject_mismatch", username)
                if not mapping.link_existing:
                    raise SsoRefused("unknown_user", username)
                linked = conn.execute(
                    t.update()
                    .where(t.c.username == username, t.c.sso_subject.is_(None))
                    .values(sso_issuer=issuer, sso_subject=subject)
                )
                if linked.rowcount != 1:  # another sign-in linked it meanwhile
                    raise SsoRefused("subject_mismatch", username)
                event = "linked"
            elif mapping.create_users:
                plain = unicodedata.normalize("NFKC", username)
                if plain != username or not PLAIN_NAME.fullmatch(plain):
                    raise SsoRefused("no_username", "not a plain user name (letters, digits, . _ @ -)")
                clash = conn.execute(
                    sa.select(t.c.username).where(sa.func.lower(t.c.username) == username.lower())
                ).first()
                if clash is not None:  # the same name but for case: it would look like that account
                    raise SsoRefused("username_clash", username)
                department, roles = _scope_and_roles(conn, claims, mapping)
                conn.execute(
                    t.insert().values(
                        username=username,
                        department_code=department,
                        roles=roles,
                        password_hash=NO_PASSWORD,
                        status="active",
                        password_generation=1,
                        created_at=at,
                        password_changed_at=at,
                        sso_issuer=issuer,
                        sso_subject=subject,
                    )
                )
                event = "created"
            else:
                raise SsoRefused("unknown_user", username)
            row = conn.execute(sa.select(t).where(t.c.username == username)).first()
            assert row is not None
        if row.status != "active":
            raise SsoRefused("account_disabled", row.username)
        if mapping.sync_roles and event != "created":
            try:
                department, roles = _scope_and_roles(conn, claims, mapping)
            except SsoRefused as refused:
                lost = (row.username, refused)  # handled after this transaction, below
            else:
                if department != row.department_code or roles != list(row.roles):
                    conn.execute(
                        t.update()
                        .where(t.c.username == row.username)
                        .values(department_code=department, roles=roles)
                    )
        username = row.username
    if lost is not None:
        # The IdP no longer gives this person a hub role or a hub department: the account must
        # not keep what it had (a password, a live session or token would still use it), so it
        # is disabled, which also ends its sessions and tokens; an admin re-enables it.
        set_status(engine, lost[0], "disabled")
        raise lost[1]
    user = get_staff(engine, username)
    assert user is not None
    return SignIn(user, event)


def link(engine: sa.Engine, username: str, issuer: str, subject: str | None) -> None:
    """Link a staff account to an IdP subject (``subject`` None: unlink). Errors:
    ``staff_not_found`` (404), ``sso_subject_taken`` (409: another account has that subject)."""
    t = tables.staff
    with engine.begin() as conn:
        if conn.execute(sa.select(t.c.username).where(t.c.username == username)).first() is None:
            raise HubError("staff_not_found", username=username)
        if subject is not None:
            other = conn.execute(
                sa.select(t.c.username).where(
                    t.c.sso_issuer == issuer, t.c.sso_subject == subject, t.c.username != username
                )
            ).scalar()
            if other is not None:
                raise HubError("sso_subject_taken", subject=subject, username=other)
        conn.execute(
            t.update()
            .where(t.c.username == username)
            .values(sso_issuer=issuer if subject is not None else None, sso_subject=subject)
        )


def linked_issuer(engine: sa.Engine, username: str) -> str | None:
    """The IdP an account is linked to, or None."""
    t = tables.staff
    with engine.connect() as conn:
        return conn.execute(sa.select(t.c.sso_issuer).where(t.c.username == username)).scalar()
