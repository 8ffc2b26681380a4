"""Portal sessions: server-side, in the hub DB, so that signing out or a password change ends
them everywhere at once.

The cookie holds a random 256-bit id; the DB keeps only its SHA-256, so a copy of the DB
cannot be replayed as cookies. A session ends when it has been idle too long, when it is older
than the maximum age, when the account is disabled, or when the password changed since sign-in
(``password_generation``). Each session carries its own CSRF token (:mod:`catalog.portal.web`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from catalog.access import staff
from catalog.access.staff import StaffUser
from catalog.clock import as_utc, utc_now
from catalog.db import tables

#: last_seen_at is written at most this often (a page view is not a DB write each time)
_TOUCH_EVERY = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class Session:
    """A live session and the account it belongs to."""

    user: StaffUser
    csrf_token: str
    created_at: dt.datetime


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


def start(
    engine: sa.Engine, user: StaffUser, *, max_age: dt.timedelta, at: dt.datetime | None = None
) -> tuple[str, Session]:
    """A new session for ``user``: the cookie value and the session."""
    now = at or utc_now()
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(
            tables.portal_sessions.insert().values(
                id_hash=_hash(session_id),
                username=user.username,
                password_generation=user.password_generation,
                csrf_token=csrf,
                created_at=now,
                last_seen_at=now,
                expires_at=now + max_age,
            )
        )
        # housekeeping: a sign-in clears ended sessions, so the table does not grow without end
        conn.execute(tables.portal_sessions.delete().where(tables.portal_sessions.c.expires_at < now))
    return session_id, Session(user=user, csrf_token=csrf, created_at=now)


def load(
    engine: sa.Engine, session_id: str, *, idle: dt.timedelta, at: dt.datetime | None = None
) -> Session | None:
    """The live session of a cookie value, or None (unknown, ended, or the account changed)."""
    if not session_id or len(session_id) > 100:
        return None
    now = at or utc_now()
    key = _hash(session_id)
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(tables.portal_sessions).where(tables.portal_sessions.c.id_hash == key)
        ).first()
    if row is None:
        return None
    last_seen = as_utc(row.last_seen_at)
    if as_utc(row.expires_at) <= now or now - last_seen > idle:
        end(engine, session_id)
        return None
    user = staff.get_staff(engine, row.username)
    if user is None or not user.active or user.password_generation != row.password_generation:
        end(engine, session_id)
        return None
    if now - last_seen >= _TOUCH_EVERY:
        with engine.begin() as conn:
            conn.execute(
                tables.portal_sessions.update()
                .where(tables.portal_sessions.c.id_hash == key)
                .values(last_seen_at=now)
            )
    return Session(user=user, csrf_token=row.csrf_token, created_at=as_utc(row.created_at))


def end(engine: sa.Engine, session_id: str) -> None:
    """End one session (signing out)."""
    with engine.begin() as conn:
        conn.execute(
            tables.portal_sessions.delete().where(tables.portal_sessions.c.id_hash == _hash(session_id))
        )


def end_all(engine: sa.Engine, username: str) -> int:
    """End every session of an account; how many there were."""
    with engine.begin() as conn:
        result = conn.execute(
            tables.portal_sessions.delete().where(tables.portal_sessions.c.username == username)
        )
    return result.rowcount or 0
