"""Department staff accounts (工作人员): who may publish, decide applications, audit, administer.

Roles: ``publisher`` (publishes the department's directory file), ``approver`` (decides
applications for the department's datasets), ``applicant`` (applies for other departments' data
on behalf of the department's own apps), ``auditor`` (reads the audit log), ``admin``
(everything, within its scope). An account belongs to one department, or to none: a hub-wide
account, which covers every department and is allowed only for an admin, or for an auditor
with no other role (电子监察 reads everything but decides nothing).

Passwords are argon2id hashes (:mod:`catalog.access.passwords`). Changing a password bumps
``password_generation``; the API refuses tokens of an older generation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from catalog.access.passwords import (
    check_password_strength,
    dummy_password_hash,
    hash_password,
    needs_rehash,
    verify_password,
)
from catalog.clock import utc_now as _utc
from catalog.db import tables
from catalog.errors import HubError

ROLES = ("publisher", "approver", "applicant", "auditor", "admin")
STAFF_STATUSES = ("active", "disabled")


@dataclass(frozen=True)
class StaffUser:
    """One staff account (never carries the password hash)."""

    username: str
    department_code: str | None
    roles: frozenset[str]
    status: str
    password_generation: int

    def has(self, role: str) -> bool:
        """Whether the account holds ``role``; admin implies every role within its scope."""
        return role in self.roles or "admin" in self.roles

    def covers(self, department_code: str) -> bool:
        """Whether the account may act for ``department_code``: its own, or any when hub-wide."""
        return self.department_code is None or self.department_code == department_code

    @property
    def active(self) -> bool:
        """Whether the account may log in."""
        return self.status == "active"

    def to_json(self) -> dict[str, Any]:
        """The account as the API shows it."""
        return {
            "username": self.username,
            "department_code": self.department_code,
            "roles": sorted(self.roles, key=ROLES.index),
            "status": self.status,
            "password_generation": self.password_generation,
        }


def _from_row(row: sa.Row[Any]) -> StaffUser:
    return StaffUser(
        username=row.username,
        department_code=row.department_code,
        roles=frozenset(row.roles),
        status=row.status,
        password_generation=row.password_generation,
    )


def checked_roles(roles: Iterable[str], department_code: str | None) -> list[str]:
    """``roles`` in the hub's order, when an account of that scope may hold them; else HubError
    (``unknown_role``, ``roles_required``, ``hub_wide_role``)."""
    wanted = set(roles)
    for role in sorted(wanted):
        if role not in ROLES:
            raise HubError("unknown_role", role=role)
    if not wanted:
        raise HubError("roles_required", roles=", ".join(ROLES))
    if department_code is None and "admin" not in wanted and wanted != {"auditor"}:
        raise HubError("hub_wide_role")
    return [r for r in ROLES if r in wanted]


def _require(conn: sa.Connection, username: str) -> sa.Row[Any]:
    row = conn.execute(sa.select(tables.staff).where(tables.staff.c.username == username)).first()
    if row is None:
        raise HubError("staff_not_found", username=username)
    return row


def create_staff(
    engine: sa.Engine,
    username: str,
    department_code: str | None,
    roles: Iterable[str],
    password: str,
    *,
    now: dt.datetime | None = None,
) -> StaffUser:
    """Create an active staff account.

    ``department_code`` None makes a hub-wide account (admin, or auditor only). Errors:
    ``unknown_role``, ``roles_required``, ``hub_wide_role``, ``weak_password`` (400),
    ``department_not_found`` (404), ``staff_exists`` (409).
    """
    username = username.strip()
    if not username:
        raise ValueError("a staff account needs a username")
    checked = checked_roles(roles, department_code)
    check_password_strength(password)
    at = _utc(now)
    password_hash = hash_password(password)
    try:
        with engine.begin() as conn:
            if department_code is not None:
                dept = conn.execute(
                    sa.select(tables.departments.c.code).where(tables.departments.c.code == department_code)
                ).first()
                if dept is None:
                    raise HubError("department_not_found", code=department_code)
            exists = conn.execute(
                sa.select(tables.staff.c.username).where(tables.staff.c.username == username)
            ).first()
            if exists is not None:
                raise HubError("staff_exists", username=username)
            conn.execute(
                tables.staff.insert().values(
                    username=username,
                    department_code=department_code,
                    roles=checked,
                    password_hash=password_hash,
                    status="active",
                    password_generation=1,
                    created_at=at,
                    password_changed_at=at,
                )
            )
    except sa.exc.IntegrityError:
        # a concurrent create took the username between the check and the insert
        raise HubError("staff_exists", username=username) from None
    return StaffUser(username, department_code, frozenset(checked), "active", 1)


def authenticate_staff(engine: sa.Engine, username: str, password: str) -> StaffUser | None:
    """The account when the password is right and the account active, else None.

    Unknown usernames are verified against a dummy hash, and disabled accounts are verified
    too, so every path costs one argon2 verification. A successful login whose hash was made
    with older parameters re-hashes the password (same password, same generation).
    """
    with engine.connect() as conn:
        row = conn.execute(sa.select(tables.staff).where(tables.staff.c.username == username)).first()
    stored = row.password_hash if row is not None else dummy_password_hash()
    ok = verify_password(stored, password)
    if row is None or not ok or row.status != "active":
        return None
    if needs_rehash(stored):
        with engine.begin() as conn:
            # only replace the hash we verified: a concurrent password change wins
            conn.execute(
                tables.staff.update()
                .where(tables.staff.c.username == username, tables.staff.c.password_hash == stored)
                .values(password_hash=hash_password(password))
            )
    return _from_row(row)


def get_staff(engine: sa.Engine, username: str) -> StaffUser | None:
    """The account called ``username``, or None."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(tables.staff).where(tables.staff.c.username == username)).first()
    return _from_row(row) if row is not None else None


def set_password(
    engine: sa.Engine, username: str, password: str, *, now: dt.datetime | None = None
) -> StaffUser:
    """Set a new password and bump ``password_generation`` (older tokens stop working).

    Errors: ``weak_password`` (400), ``staff_not_found`` (404).
    """
    check_password_strength(password)
    at = _utc(now)
    password_hash = hash_password(password)
    with engine.begin() as conn:
        _require(conn, username)
        conn.execute(
            tables.staff.update()
            .where(tables.staff.c.username == username)
            .values(
                password_hash=password_hash,
                password_generation=tables.staff.c.password_generation + 1,
                password_changed_at=at,
            )
        )
        return _from_row(_require(conn, username))


def set_roles(engine: sa.Engine, username: str, roles: Iterable[str]) -> StaffUser:
    """Replace the account's roles (same rules as :func:`create_staff`).

    Errors: ``unknown_role``, ``roles_required``, ``hub_wide_role`` (400), ``staff_not_found`` (404).
    """
    wanted = list(roles)
    with engine.begin() as conn:
        row = _require(conn, username)
        checked = checked_roles(wanted, row.department_code)
        conn.execute(tables.staff.update().where(tables.staff.c.username == username).values(roles=checked))
        return _from_row(_require(conn, username))


def set_status(engine: sa.Engine, username: str, status: Literal["active", "disabled"]) -> StaffUser:
    """Enable or disable an account (a disabled account cannot log in). Error: ``staff_not_found`` (404).

    Disabling also moves the password generation on, so that tokens issued before stay dead
    when the account is enabled again (the password itself is unchanged)."""
    if status not in STAFF_STATUSES:
        raise ValueError(f"staff status must be one of {', '.join(STAFF_STATUSES)}, not {status!r}")
    t = tables.staff
    with engine.begin() as conn:
        row = _require(conn, username)
        values: dict[str, Any] = {"status": status}
        if status == "disabled" and row.status != "disabled":
            values["password_generation"] = t.c.password_generation + 1
        conn.execute(t.update().where(t.c.username == username).values(**values))
        return _from_row(_require(conn, username))


def list_staff(engine: sa.Engine, department_code: str | None = None) -> list[StaffUser]:
    """Accounts ordered by username: all of them, or one department's."""
    query = sa.select(tables.staff).order_by(tables.staff.c.username)
    if department_code is not None:
        query = query.where(tables.staff.c.department_code == department_code)
    with engine.connect() as conn:
        return [_from_row(r) for r in conn.execute(query)]
