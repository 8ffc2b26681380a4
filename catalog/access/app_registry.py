"""The app registry: registered service systems (应用), the apps that consume shared data.

An app belongs to a department, authenticates with OAuth2 client credentials (``app_id`` is the
client_id) and holds grants. Its client secret is shown once, when it is made, and stored only
as a SHA-256 digest (see :mod:`catalog.access.passwords` for why that is enough). Rotating the secret
bumps ``secret_generation``: the old secret stops working at once, and the API refuses tokens
that carry an older generation.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from catalog.access.passwords import client_secret_matches, hash_client_secret, new_client_secret
from catalog.clock import as_utc as _aware
from catalog.clock import utc_now as _utc
from catalog.db import tables
from catalog.errors import HubError

APP_STATUSES = ("active", "disabled")

# Compared against when the client_id is unknown, so that path does the same work as a wrong secret.
_DUMMY_SECRET_HASH = hash_client_secret(new_client_secret())


@dataclass(frozen=True)
class App:
    """One registered app (never carries its secret or the secret's hash)."""

    app_id: str
    name: str
    department_code: str
    description: str
    status: str
    secret_generation: int
    created_at: dt.datetime
    secret_rotated_at: dt.datetime

    @property
    def active(self) -> bool:
        """Whether the app may obtain tokens."""
        return self.status == "active"

    def to_json(self) -> dict[str, Any]:
        """The app as the API shows it."""
        return {
            "app_id": self.app_id,
            "name": self.name,
            "department_code": self.department_code,
            "description": self.description,
            "status": self.status,
            "secret_generation": self.secret_generation,
            "created_at": self.created_at.isoformat(),
            "secret_rotated_at": self.secret_rotated_at.isoformat(),
        }


def _from_row(row: sa.Row[Any]) -> App:
    return from_mapping(row._mapping)


def from_mapping(m: Mapping[Any, Any], prefix: str = "") -> App:
    """An :class:`App` from a row of ``hub_apps`` whose column names carry ``prefix`` (for joins)."""
    return App(
        app_id=m[prefix + "app_id"],
        name=m[prefix + "name"],
        department_code=m[prefix + "department_code"],
        description=m[prefix + "description"],
        status=m[prefix + "status"],
        secret_generation=m[prefix + "secret_generation"],
        created_at=_aware(m[prefix + "created_at"]),
        secret_rotated_at=_aware(m[prefix + "secret_rotated_at"]),
    )


def _require(conn: sa.Connection, app_id: str) -> sa.Row[Any]:
    row = conn.execute(sa.select(tables.apps).where(tables.apps.c.app_id == app_id)).first()
    if row is None:
        raise HubError("app_not_found", app_id=app_id)
    return row


def register_app(
    engine: sa.Engine,
    name: str,
    department_code: str,
    description: str = "",
    *,
    now: dt.datetime | None = None,
) -> tuple[App, str]:
    """Register an app; returns it with its clear client secret, which is never shown again.

    ``app_id`` is ``app-`` and 12 lowercase hex digits. Errors: ``department_not_found`` (404),
    ``app_name_taken`` (409).
    """
    name = name.strip()
    if not name:
        raise ValueError("an app needs a name")
    at = _utc(now)
    secret = new_client_secret()
    app_id = "app-" + secrets.token_hex(6)
    try:
        with engine.begin() as conn:
            dept = conn.execute(
                sa.select(tables.departments.c.code).where(tables.departments.c.code == department_code)
            ).first()
            if dept is None:
                raise HubError("department_not_found", code=department_code)
            taken = conn.execute(sa.select(tables.apps.c.app_id).where(tables.apps.c.name == name)).first()
            if taken is not None:
                raise HubError("app_name_taken", name=name)
            conn.execute(
                tables.apps.insert().values(
                    app_id=app_id,
                    name=name,
                    department_code=department_code,
                    description=description,
                    status="active",
                    secret_hash=hash_client_secret(secret),
                    secret_generation=1,
                    secret_rotated_at=at,
                    created_at=at,
                )
            )
    except sa.exc.IntegrityError:
        # a concurrent registration took the name between the check and the insert
        raise HubError("app_name_taken", name=name) from None
    app = get_app(engine, app_id)
    assert app is not None
    return app, secret


def get_app(engine: sa.Engine, app_id: str) -> App | None:
    """The app with this id, or None."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(tables.apps).where(tables.apps.c.app_id == app_id)).first()
    return _from_row(row) if row is not None else None


def find_app(engine: sa.Engine, id_or_name: str) -> App | None:
    """The app with this id or, failing that, this exact name; None when neither matches."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(tables.apps).where(tables.apps.c.app_id == id_or_name)).first()
        if row is None:
            row = conn.execute(sa.select(tables.apps).where(tables.apps.c.name == id_or_name)).first()
    return _from_row(row) if row is not None else None


def list_apps(engine: sa.Engine, department_code: str | None = None) -> list[App]:
    """Apps ordered by name, all of them or one department's."""
    query = sa.select(tables.apps).order_by(tables.apps.c.name)
    if department_code is not None:
        query = query.where(tables.apps.c.department_code == department_code)
    with engine.connect() as conn:
        return [_from_row(r) for r in conn.execute(query)]


def rotate_secret(engine: sa.Engine, app_id: str, *, now: dt.datetime | None = None) -> tuple[App, str]:
    """Give the app a new secret (returned in clear, once) and bump its secret generation.

    The old secret stops working at once; tokens issued under the old generation are refused
    by the API. Error: ``app_not_found`` (404).
    """
    at = _utc(now)
    secret = new_client_secret()
    with engine.begin() as conn:
        _require(conn, app_id)
        conn.execute(
            tables.apps.update()
            .where(tables.apps.c.app_id == app_id)
            .values(
                secret_hash=hash_client_secret(secret),
                secret_generation=tables.apps.c.secret_generation + 1,
                secret_rotated_at=at,
            )
        )
        app = _from_row(_require(conn, app_id))
    return app, secret


def set_status(engine: sa.Engine, app_id: str, status: Literal["active", "disabled"]) -> App:
    """Enable or disable an app (a disabled app cannot authenticate). Error: ``app_not_found`` (404).

    Disabling also moves the credential generation on, so that tokens issued before stay dead
    when the app is enabled again (the secret itself is unchanged)."""
    if status not in APP_STATUSES:
        raise ValueError(f"app status must be one of {', '.join(APP_STATUSES)}, not {status!r}")
    t = tables.apps
    with engine.begin() as conn:
        row = _require(conn, app_id)
        values: dict[str, Any] = {"status": status}
        if status == "disabled" and row.status != "disabled":
            values["secret_generation"] = t.c.secret_generation + 1
        conn.execute(t.update().where(t.c.app_id == app_id).values(**values))
        return _from_row(_require(conn, app_id))


def authenticate_app(engine: sa.Engine, client_id: str, secret: str) -> App | None:
    """The app when ``client_id``/``secret`` are right and the app is active, else None.

    Unknown ids, disabled apps and wrong secrets all hash and compare the given secret, so the
    answer time does not tell which client ids exist.
    """
    with engine.connect() as conn:
        row = conn.execute(sa.select(tables.apps).where(tables.apps.c.app_id == client_id)).first()
    stored = row.secret_hash if row is not None else _DUMMY_SECRET_HASH
    matches = client_secret_matches(stored, secret)
    if row is None or not matches or row.status != "active":
        return None
    return _from_row(row)
