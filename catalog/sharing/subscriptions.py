"""Subscriptions (订阅): a granted dataset delivered into the consumer's own database (前置库).

An app subscribes to a dataset it may read in bulk (the same rule as Delta Sharing:
:func:`catalog.sharing.files.shared_tables`) with a target: a connection ref of its database
(PostgreSQL or MariaDB; the URL lives in the hub's settings, never in the directory), a table
name and a mode:

* ``mirror`` — the target table is the granted, masked view of the curated table: one row per
  primary key (``_sh_key``, the key's JSON), updated and deleted as the source is;
* ``append`` — every change is appended with ``_change_type`` (insert, update_preimage,
  update_postimage, delete), ``_commit_snapshot`` and ``_delivered_at``.

**One delivery** takes the changes from the last delivered snapshot to the newest one (the same
derivation as the change data feed, :func:`catalog.sharing.files.change_file`'s rules) and
writes them into the target **in one transaction** together with a bookkeeping row in the
target's own ``_sharehub_deliveries`` table. The hub records the delivery after that commit. A
crash between the two is healed by the next attempt: it reads where the target says it is, so a
change is never applied twice, in either mode. A grant that changed what it shows (fields,
masks) makes the next mirror delivery a full reload. A grant revoked or expired stops delivery,
recorded with the reason; nothing is written.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from catalog.clock import as_utc, utc_now
from catalog.db import tables
from catalog.directory.grades import GradePolicy
from catalog.errors import HubError
from catalog.sharing import files as sharing

MODES = ("mirror", "append")
BOOKKEEPING = "_sharehub_deliveries"
KEY = "_sh_key"
_ROW_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


@dataclass(frozen=True)
class Subscription:
    id: int
    app_id: str
    dataset_code: str
    target_ref: str
    target_table: str
    mode: str
    status: str
    last_snapshot_id: int | None
    delivered_at: dt.datetime | None
    last_error: str | None

    def to_json(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in self.__dict__.items()}


def _of(row: Any) -> Subscription:
    return Subscription(
        row.id,
        row.app_id,
        row.dataset_code,
        row.target_ref,
        row.target_table,
        row.mode,
        row.status,
        row.last_snapshot_id,
        as_utc(row.delivered_at),
        row.last_error,
    )


def _valid_name(name: str) -> bool:
    plain = name.replace("_", "")
    return bool(name) and len(name) <= 64 and plain.isalnum() and name.isascii() and not name[0].isdigit()


def subscribe(
    engine: sa.Engine,
    app_id: str,
    dataset_code: str,
    *,
    target_ref: str,
    target_table: str,
    mode: str,
    by: str,
    policy: GradePolicy,
    now: dt.datetime | None = None,
) -> Subscription:
    """A new subscription. Refused unless the app may read the dataset in bulk now
    (``share_not_found``), with a bad mode or table name (``bad_subscription``)."""
    if mode not in MODES:
        raise HubError("bad_subscription", why=f"mode must be one of {', '.join(MODES)}")
    if not _valid_name(target_table) or target_table.startswith("_sharehub"):
        raise HubError("bad_subscription", why="the target table needs a plain name (letters, digits, _)")
    if not _valid_name(target_ref.lower()):
        raise HubError("bad_subscription", why="the target is a connection ref (letters, digits, _)")
    if not any(t.code == dataset_code for t in sharing.shared_tables(engine, app_id, policy)):
        raise HubError("share_not_found", name=dataset_code)
    t = tables.subscriptions
    with engine.begin() as conn:
        result = conn.execute(
            t.insert().values(
                app_id=app_id,
                dataset_code=dataset_code,
                target_ref=target_ref,
                target_table=target_table,
                mode=mode,
                status="active",
                created_at=utc_now(now),
                created_by=by,
            )
        )
        assert result.inserted_primary_key is not None
        row = conn.execute(sa.select(t).where(t.c.id == result.inserted_primary_key[0])).one()
    return _of(row)


def get(engine: sa.Engine, subscription_id: int) -> Subscription:
    t = tables.subscriptions
    with engine.connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.id == subscription_id)).first()
    if row is None:
        raise HubError("subscription_not_found", id=subscription_id)
    return _of(row)


def list_subscriptions(engine: sa.Engine, *, app_id: str | None = None) -> list[Subscription]:
    t = tables.subscriptions
    q = sa.select(t).order_by(t.c.id)
    if app_id is not None:
        q = q.where(t.c.app_id == app_id)
    with engine.connect() as conn:
        return [_of(r) for r in conn.execute(q)]


def history(engine: sa.Engine, subscription_id: int) -> list[dict[str, Any]]:
    t = tables.subscription_deliveries
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t).where(t.c.subscription_id == subscription_id).order_by(t.c.id.desc())
        ).all()
    return [
        {k: (as_utc(v).isoformat() if isinstance(v, dt.datetime) else v) for k, v in r._mapping.items()}
        for r in rows
    ]


# ---- the target's tables -----------------------------------------------------------------


def _sql_type(t: pa.DataType) -> Any:
    if pa.types.is_boolean(t):
        return sa.Boolean()
    if pa.types.is_integer(t):
        return sa.BigInteger()
    if pa.types.is_floating(t):
        return sa.Float()
    if pa.types.is_decimal(t):
        return sa.Numeric(t.precision, t.scale)
    if pa.types.is_date(t):
        return sa.Date()
    if pa.types.is_timestamp(t):
        return sa.DateTime()
    return sa.Text()


def _target_tables(name: str, schema: pa.Schema, mode: str) -> tuple[sa.Table, sa.Table]:
    md = sa.MetaData()
    columns = [sa.Column(f.name, _sql_type(f.type)) for f in schema]
    if mode == "mirror":
        table = sa.Table(name, md, sa.Column(KEY, sa.String(500), primary_key=True), *columns)
    else:
        table = sa.Table(
            name,
            md,
            sa.Column("_sh_id", _ROW_ID, primary_key=True, autoincrement=True),
            *columns,
            sa.Column("_change_type", sa.String(20), nullable=False),
            sa.Column("_commit_snapshot", sa.BigInteger, nullable=False),
            sa.Column("_delivered_at", sa.DateTime, nullable=False),
        )
    book = sa.Table(
        BOOKKEEPING,
        md,
        sa.Column("subscription_id", sa.Integer, primary_key=True),
        sa.Column("delivery_no", sa.Integer, primary_key=True),  # 1, 2, 3, … per subscription
        sa.Column("snapshot_id", sa.BigInteger, nullable=False),
        sa.Column("delivered_at", sa.DateTime, nullable=False),
    )
    return table, book


def _record(
    engine: sa.Engine, sub: Subscription, status: str, started: dt.datetime, **values: Any
) -> dict[str, Any]:
    d = tables.subscription_deliveries
    row = {
        "subscription_id": sub.id,
        "from_snapshot": values.get("from_snapshot"),
        "to_snapshot": values.get("to_snapshot"),
        "inserted": values.get("inserted", 0),
        "updated": values.get("updated", 0),
        "deleted": values.get("deleted", 0),
        "status": status,
        "started_at": started,
        "finished_at": utc_now(),
        "error": values.get("error"),
    }
    with engine.begin() as conn:
        conn.execute(d.insert().values(**row))
        changes: dict[str, Any] = {"last_error": values.get("error")}
        if status == "success":
            changes |= {
                "last_snapshot_id": values["to_snapshot"],
                "projection_sha256": values["projection_sha256"],
                "delivered_at": row["finished_at"],
            }
        s = tables.subscriptions
        conn.execute(s.update().where(s.c.id == sub.id).values(**changes))
    return row


Hook = Callable[[str], None]


def deliver(
    engine: sa.Engine,
    lake: Any,
    subscription_id: int,
    *,
    target_url: str,
    policy: GradePolicy,
    cache: Path,
    fault: Hook | None = None,
) -> dict[str, Any]:
    """Deliver what changed since the last delivery (see the module docstring); the delivery
    record. ``fault`` is called at named points (``after_target_commit``) by the tests."""
    sub = get(engine, subscription_id)
    started = utc_now()
    shared = [t for t in sharing.shared_tables(engine, sub.app_id, policy) if t.code == sub.dataset_code]
    if sub.status != "active" or not shared:
        why = "subscription ended" if sub.status != "active" else "no active grant allows bulk reading"
        return _record(engine, sub, "stopped", started, error=why)
    table = shared[0]
    found = sharing.versions(lake, table.code)
    if not found:
        return _record(engine, sub, "current", started, error=None)
    latest = found[-1].snapshot_id
    sha = sharing.projection_digest(table.projection)
    target = sa.create_engine(target_url, pool_pre_ping=True)
    try:
        schema = sharing.granted_file(lake, cache, table, latest).schema
        data, book = _target_tables(sub.target_table, schema, sub.mode)
        book.create(target, checkfirst=True)
        with target.begin() as conn:
            # where the target says it is wins: the hub may have died after the target committed
            number, delivered = _delivered(conn, book, sub.id)
            reload = sub.mode == "mirror" and sha != (_sha_of(engine, sub.id) or sha)
            if delivered == latest and not reload:
                counts = {"inserted": 0, "updated": 0, "deleted": 0}
                status = "current"
            else:
                data.create(conn, checkfirst=True)
                before = None if reload else delivered
                if reload:
                    conn.execute(data.delete())
                counts = _apply(conn, lake, table, data, sub.mode, before, latest)
                mark = {
                    "subscription_id": sub.id,
                    "delivery_no": number + 1,
                    "snapshot_id": latest,
                    "delivered_at": _naive(utc_now()),
                }
                conn.execute(book.insert().values(**mark))
                status = "success"
        if fault is not None:
            fault("after_target_commit")
    except Exception as exc:
        _record(engine, sub, "failed", started, error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    finally:
        target.dispose()
    if status == "current":
        _record(engine, sub, "current", started, from_snapshot=latest, to_snapshot=latest)
        return {"status": "current", "to_snapshot": latest, **counts}
    return _record(
        engine,
        sub,
        "success",
        started,
        from_snapshot=delivered,
        to_snapshot=latest,
        projection_sha256=sha,
        **counts,
    )


def _delivered(conn: sa.Connection, book: sa.Table, sub_id: int) -> tuple[int, int | None]:
    """The target's last delivery of the subscription: (its number, the snapshot), (0, None) when
    none. Numbered, not timed: MariaDB keeps whole seconds, and two deliveries can share one."""
    row = conn.execute(
        sa.select(book.c.delivery_no, book.c.snapshot_id)
        .where(book.c.subscription_id == sub_id)
        .order_by(book.c.delivery_no.desc())
        .limit(1)
    ).first()
    return (int(row[0]), int(row[1])) if row is not None else (0, None)


def _sha_of(engine: sa.Engine, sub_id: int) -> str | None:
    t = tables.subscriptions
    with engine.connect() as conn:
        return conn.execute(sa.select(t.c.projection_sha256).where(t.c.id == sub_id)).scalar()


def _naive(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(tzinfo=None)


def _apply(
    conn: sa.Connection,
    lake: Any,
    table: sharing.SharedTable,
    data: sa.Table,
    mode: str,
    before: int | None,
    after: int,
) -> dict[str, int]:
    old = sharing.keyed_rows(lake, table, before)
    new = sharing.keyed_rows(lake, table, after)
    changes = list(sharing.row_changes(old, new))
    counts = {"inserted": 0, "updated": 0, "deleted": 0}
    for kind, _key, _before, _after in changes:
        counts[{"insert": "inserted", "delete": "deleted", "update": "updated"}[kind]] += 1
    rows: list[dict[str, Any]] = []
    deletes: list[str] = []
    if mode == "mirror":
        for kind, key, _before, image in changes:
            k = json.dumps(list(key), ensure_ascii=False, default=str)
            if kind != "insert":
                deletes.append(k)
            if kind != "delete":
                rows.append({KEY: k, **image})
    else:
        now = _naive(utc_now())
        rows = [{**r, "_commit_snapshot": after, "_delivered_at": now} for r in sharing.change_rows(old, new)]
    for off in range(0, len(deletes), 1000):
        conn.execute(data.delete().where(data.c[KEY].in_(deletes[off : off + 1000])))
    for off in range(0, len(rows), 1000):
        conn.execute(data.insert(), [_plain(r) for r in rows[off : off + 1000]])
    return counts


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """Values a DB driver takes (aware datetimes become naive UTC)."""
    return {k: (_naive(v) if isinstance(v, dt.datetime) and v.tzinfo else v) for k, v in row.items()}
