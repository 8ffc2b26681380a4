"""Recipient profiles (Delta Sharing's "profile file"): a long-lived bearer token of one app.

An app's own access token lives minutes; a Delta Sharing client keeps its token in a profile
file for as long as the consumer reads. So the hub issues recipient tokens: ``shr_`` and 256
random bits, shown once, stored as SHA-256, with an expiry, revocable one by one. A recipient
token reads only through the sharing endpoints, and only what the app's grants allow at the time
of each call — revoking the grant is enough to stop it, revoking the token ends it entirely.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from catalog.access.passwords import hash_client_secret
from catalog.clock import as_utc, utc_now
from catalog.db import tables
from catalog.errors import HubError

PREFIX = "shr_"
MAX_DAYS = 365


@dataclass(frozen=True)
class Recipient:
    id: int
    app_id: str
    label: str
    created_at: dt.datetime
    created_by: str
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    revoked_by: str | None

    def to_json(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in self.__dict__.items()}


def _of(row: Any) -> Recipient:
    return Recipient(
        row.id,
        row.app_id,
        row.label,
        as_utc(row.created_at),
        row.created_by,
        as_utc(row.expires_at),
        as_utc(row.revoked_at),
        row.revoked_by,
    )


def issue(
    engine: sa.Engine, app_id: str, *, days: int, label: str, by: str, now: dt.datetime | None = None
) -> tuple[str, Recipient]:
    """A new recipient token for ``app_id`` (the token is returned only here)."""
    if not 1 <= days <= MAX_DAYS:
        raise HubError("profile_days", max=MAX_DAYS)
    at = utc_now(now)
    token = PREFIX + secrets.token_urlsafe(32)
    t = tables.sharing_recipients
    with engine.begin() as conn:
        app = conn.execute(sa.select(tables.apps.c.status).where(tables.apps.c.app_id == app_id)).first()
        if app is None:
            raise HubError("app_not_found", app_id=app_id)
        result = conn.execute(
            t.insert().values(
                app_id=app_id,
                token_sha256=hash_client_secret(token),
                label=label.strip()[:200] or "profile",
                created_at=at,
                created_by=by,
                expires_at=at + dt.timedelta(days=days),
            )
        )
        assert result.inserted_primary_key is not None
        row = conn.execute(sa.select(t).where(t.c.id == result.inserted_primary_key[0])).one()
    return token, _of(row)


def authenticate(engine: sa.Engine, token: str, *, now: dt.datetime | None = None) -> str | None:
    """The app a live recipient token belongs to, or None (unknown, expired or revoked)."""
    if not token.startswith(PREFIX) or len(token) > 100:
        return None
    t = tables.sharing_recipients
    with engine.connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.token_sha256 == hash_client_secret(token))).first()
    if row is None or row.revoked_at is not None or as_utc(row.expires_at) <= utc_now(now):
        return None
    return str(row.app_id)


def revoke(engine: sa.Engine, recipient_id: int, *, by: str, now: dt.datetime | None = None) -> Recipient:
    """End a recipient token at once."""
    t = tables.sharing_recipients
    with engine.begin() as conn:
        conn.execute(
            t.update()
            .where(t.c.id == recipient_id, t.c.revoked_at.is_(None))
            .values(revoked_at=utc_now(now), revoked_by=by)
        )
        row = conn.execute(sa.select(t).where(t.c.id == recipient_id)).first()
    if row is None:
        raise HubError("recipient_not_found", id=recipient_id)
    return _of(row)


def list_recipients(engine: sa.Engine, app_id: str | None = None) -> list[Recipient]:
    t = tables.sharing_recipients
    q = sa.select(t).order_by(t.c.id)
    if app_id is not None:
        q = q.where(t.c.app_id == app_id)
    with engine.connect() as conn:
        return [_of(r) for r in conn.execute(q)]


def profile(endpoint: str, token: str, expires_at: dt.datetime) -> dict[str, Any]:
    """The profile file a Delta Sharing client reads (PROTOCOL.md "Profile File Format")."""
    return {
        "shareCredentialsVersion": 1,
        "endpoint": endpoint,
        "bearerToken": token,
        "expirationTime": expires_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }


def write_profile(path: Path, endpoint: str, token: str, expires_at: dt.datetime) -> None:
    """Write a profile file readable by its owner only (it holds the bearer token)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file of that name keeps its mode through O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(profile(endpoint, token, expires_at), indent=2) + "\n")
