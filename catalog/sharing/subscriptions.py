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
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from catalog.audit.chain import AuditRecord
from catalog.audit.writer import append as audit_append
from catalog.audit.writer import append_in, ensure_head
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
    projection_sha256: str | None = None
    ended_reason: str | None = None

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
        row.projection_sha256,
        row.ended_reason,
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
    (``share_not_found``), with a bad mode or table name, a ref that is a department's source,
    or a target table another active subscription writes (``bad_subscription``). Refs are
    stored in lower case, as the settings hold them."""
    if mode not in MODES:
        raise HubError("bad_subscription", why=f"mode must be one of {', '.join(MODES)}")
    if not _valid_name(target_table) or target_table.lower().startswith("_sharehub"):
        raise HubError("bad_subscription", why="the target table needs a plain name (letters, digits, _)")
    target_ref = target_ref.lower()
    if not _valid_name(target_ref):
        raise HubError("bad_subscription", why="the target is a connection ref (letters, digits, _)")
    if target_ref in _source_refs(engine):
        raise HubError(
            "bad_subscription", why=f"{target_ref} is a department's source connection, not a consumer's"
        )
    if not any(t.code == dataset_code for t in sharing.shared_tables(engine, app_id, policy)):
        raise HubError("share_not_found", name=dataset_code)
    for other in list_subscriptions(engine):
        same = (other.target_ref.lower(), other.target_table.lower()) == (target_ref, target_table.lower())
        if other.status == "active" and same:
            raise HubError(
                "bad_subscription", why=f"subscription {other.id} already writes {target_ref}.{target_table}"
            )
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
                key_secret=secrets.token_hex(32),
            )
        )
        assert result.inserted_primary_key is not None
        row = conn.execute(sa.select(t).where(t.c.id == result.inserted_primary_key[0])).one()
    sub = _of(row)
    detail = {"target_ref": target_ref, "target_table": target_table, "mode": mode}
    audit_append(engine, [_record(sub, "subscription.create", staff=by, detail=detail)])
    return sub


def end(
    engine: sa.Engine, subscription_id: int, *, by: str, reason: str, now: dt.datetime | None = None
) -> Subscription:
    """End a subscription: no more deliveries (its Airflow DAG goes with the next parse). The
    target keeps what was delivered; the history stays."""
    if not reason.strip():
        raise HubError("bad_subscription", why="say why the subscription ends")
    sub = get(engine, subscription_id)
    if sub.status != "active":
        raise HubError("bad_subscription", why=f"subscription {sub.id} has already ended")
    t = tables.subscriptions
    with engine.begin() as conn:
        conn.execute(
            t.update()
            .where(t.c.id == sub.id, t.c.status == "active")
            .values(status="ended", ended_at=utc_now(now), ended_by=by, ended_reason=reason.strip()[:500])
        )
    audit_append(
        engine, [_record(sub, "subscription.end", staff=by, detail={"reason": reason.strip()[:500]})]
    )
    return get(engine, subscription_id)


def _source_refs(engine: sa.Engine) -> set[str]:
    """The connection refs the directory's datasets read their sources from."""
    from catalog.directory import store

    return {str(getattr(d.spec.source, "connection", "")).lower() for d in store.list_datasets(engine)}


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


def ended_at(engine: sa.Engine, subscription_id: int) -> dt.datetime | None:
    """When the subscription ended (None while it is active)."""
    t = tables.subscriptions
    with engine.connect() as conn:
        return as_utc(conn.execute(sa.select(t.c.ended_at).where(t.c.id == subscription_id)).scalar())


def visible(engine: sa.Engine, sub: Subscription, *, app_id: str | None, department_code: str | None) -> bool:
    """Who sees a subscription and its deliveries: the subscribing app (``app_id``); staff of
    its department or of the department that owns the data; hub-wide staff (a staff caller with
    no ``department_code``)."""
    from catalog.access import app_registry
    from catalog.directory import store

    if app_id is not None:
        return sub.app_id == app_id
    if department_code is None:
        return True
    app = app_registry.get_app(engine, sub.app_id)
    if app is not None and app.department_code == department_code:
        return True
    try:
        return store.get_dataset(engine, sub.dataset_code).department.code == department_code
    except KeyError:
        return False


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

OWNERS = "_sharehub_tables"


def _sql_type(t: pa.DataType) -> Any:
    if pa.types.is_boolean(t):
        return sa.Boolean()
    if pa.types.is_integer(t):
        return sa.BigInteger()
    if pa.types.is_floating(t):
        return sa.Double()  # MariaDB's FLOAT is 4 bytes
    if pa.types.is_decimal(t):
        return sa.Numeric(t.precision, t.scale)
    if pa.types.is_date(t):
        return sa.Date()
    if pa.types.is_timestamp(t):
        return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")  # microseconds
    return sa.Text()


def _bookkeeping(md: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    """The target's own bookkeeping: the deliveries (subscription, number, snapshot) and the
    tables the hub made there, each for one subscription (a table it did not make is never
    touched)."""
    book = sa.Table(
        BOOKKEEPING,
        md,
        sa.Column("subscription_id", sa.Integer, primary_key=True),
        sa.Column("delivery_no", sa.Integer, primary_key=True),  # 1, 2, 3, … per subscription
        sa.Column("snapshot_id", sa.BigInteger, nullable=False),
        sa.Column("delivered_at", sa.DateTime, nullable=False),
    )
    owners = sa.Table(
        OWNERS,
        md,
        sa.Column("table_name", sa.String(64), primary_key=True),
        sa.Column("subscription_id", sa.Integer, nullable=False),
    )
    return book, owners


def _data_table(md: sa.MetaData, name: str, schema: pa.Schema, mode: str) -> sa.Table:
    columns = [sa.Column(f.name, _sql_type(f.type)) for f in schema]
    if mode == "mirror":
        return sa.Table(name, md, sa.Column(KEY, sa.String(64), primary_key=True), *columns)
    return sa.Table(
        name,
        md,
        sa.Column("_sh_id", _ROW_ID, primary_key=True, autoincrement=True),
        *columns,
        sa.Column("_change_type", sa.String(20), nullable=False),
        sa.Column("_commit_snapshot", sa.BigInteger, nullable=False),
        sa.Column("_delivered_at", sa.DateTime, nullable=False),
    )


def _kind(t: Any) -> str:
    """What a column holds, to compare a reflected type with a wanted one."""
    try:
        python = t.python_type
    except NotImplementedError:
        return "?"
    return "int" if python is bool else python.__name__


def _prepare(conn: sa.Connection, data: sa.Table, owners: sa.Table, sub_id: int, *, reload: bool) -> None:
    """Make the target table fit what the grant shows now — only a table the hub made for this
    subscription (``_sharehub_tables``): a mirror being reloaded is emptied, or made anew when
    its columns (names or kinds) differ; an append table gains the columns it lacks and a column
    that now holds masked text becomes text (old rows keep what they had)."""
    owner = conn.execute(
        sa.select(owners.c.subscription_id).where(owners.c.table_name == data.name.lower())
    ).scalar()
    found = sa.inspect(conn)
    if owner is not None and owner != sub_id:
        raise HubError("bad_subscription", why=f"{data.name} belongs to subscription {owner}")
    if found.has_table(data.name) and owner is None:
        raise HubError(
            "bad_subscription", why=f"the target already has a table {data.name} the hub did not make"
        )
    if owner is None:
        conn.execute(owners.insert().values(table_name=data.name.lower(), subscription_id=sub_id))
        data.create(conn)
        return
    have = {c["name"]: _kind(c["type"]) for c in found.get_columns(data.name)}
    want = {c.name: _kind(c.type) for c in data.columns}
    differ = [n for n in want if n in have and "?" not in (have[n], want[n]) and have[n] != want[n]]
    if reload:
        if set(have) == set(want) and not differ:
            conn.execute(data.delete())
        else:
            data.drop(conn)
            data.create(conn)
        return
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    ops = Operations(MigrationContext.configure(conn))
    for c in data.columns:
        if c.name not in have:
            ops.add_column(data.name, sa.Column(c.name, c.type, nullable=True))
        elif c.name in differ and want[c.name] == "str" and conn.dialect.name != "sqlite":
            ops.alter_column(data.name, c.name, type_=sa.Text(), existing_nullable=True)


# ---- one delivery ----------------------------------------------------------------------------


logger = logging.getLogger(__name__)


def _record(
    sub: Subscription,
    action: str,
    *,
    decision: str = "allow",
    staff: str | None = None,
    rows: int = 0,
    fields: list[str] | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditRecord:
    """The audit record of a subscription's event; a delivery's names the app, the fields it
    released and the rows it wrote."""
    return AuditRecord(
        at=utc_now(),
        request_id=secrets.token_hex(16),
        actor_kind="staff" if staff else "app",
        method="DELIVER" if action == "subscription.deliver" else "CLI",
        path=f"/subscriptions/{sub.id}",
        action=action,
        decision=decision,
        status=200 if decision == "allow" else 403,
        row_count=rows,
        app_id=sub.app_id,
        staff=staff,
        dataset_code=sub.dataset_code,
        fields=fields,
        reason=reason,
        query=json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str) if detail else None,
    )


INTERRUPTED = "the attempt ended without a result: its process was killed or lost the hub database"


def _start(engine: sa.Engine, sub: Subscription, run_id: str | None) -> int:
    """Record an attempt as running (an earlier one still shown running never finished: it is
    marked interrupted). Its id."""
    d = tables.subscription_deliveries
    with engine.begin() as conn:
        conn.execute(
            d.update()
            .where(d.c.subscription_id == sub.id, d.c.status == "running")
            .values(status="interrupted", finished_at=utc_now(), error=INTERRUPTED)
        )
        result = conn.execute(
            d.insert().values(
                subscription_id=sub.id,
                inserted=0,
                updated=0,
                deleted=0,
                status="running",
                started_at=utc_now(),
                run_id=(run_id or "")[:250] or None,
            )
        )
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def _finish(
    engine: sa.Engine,
    sub: Subscription,
    attempt: int,
    status: str,
    *,
    audit: AuditRecord | None = None,
    **values: Any,
) -> dict[str, Any]:
    """Record the attempt's result (and a refusal's audit record, in the same transaction)."""
    d = tables.subscription_deliveries
    row: dict[str, Any] = {"status": status, "finished_at": utc_now(), "error": values.get("error")}
    row |= {
        k: values[k]
        for k in ("from_snapshot", "to_snapshot", "inserted", "updated", "deleted")
        if k in values
    }
    if audit is not None:
        ensure_head(engine)
    with engine.begin() as conn:
        conn.execute(d.update().where(d.c.id == attempt).values(**row))
        changes: dict[str, Any] = {"last_error": values.get("error")}
        if status == "success":
            changes |= {
                "last_snapshot_id": values["to_snapshot"],
                "projection_sha256": values["projection_sha256"],
                "delivered_at": row["finished_at"],
            }
        s = tables.subscriptions
        conn.execute(s.update().where(s.c.id == sub.id).values(**changes))
        if audit is not None:
            append_in(conn, [audit])
        done = conn.execute(sa.select(d).where(d.c.id == attempt)).one()
    return {k: (as_utc(v).isoformat() if isinstance(v, dt.datetime) else v) for k, v in done._mapping.items()}


def _pledge(
    engine: sa.Engine,
    sub: Subscription,
    attempt: int,
    table: sharing.SharedTable,
    span: tuple[int | None, int],
    counts: dict[str, int],
    run_id: str | None,
) -> None:
    """Just before the target commits: the attempt's snapshots and counts, and its audit record
    (the app, the fields released, the rows), committed in the hub. So every row that reaches a
    target is audited, whatever happens next; an attempt that then fails keeps an audit record of
    rows it did not deliver, and its status (failed, interrupted) says so."""
    d = tables.subscription_deliveries
    start, end = span
    detail: dict[str, Any] = {
        "attempt": attempt,
        "from_snapshot": start,
        "to_snapshot": end,
        "run_id": run_id,
    }
    record = _record(
        sub,
        "subscription.deliver",
        rows=sum(counts.values()),
        fields=table.projection.audit_names(),
        detail=detail | counts,
    )
    ensure_head(engine)
    with engine.begin() as conn:
        conn.execute(
            d.update().where(d.c.id == attempt).values(from_snapshot=start, to_snapshot=end, **counts)
        )
        append_in(conn, [record])


def _recover(engine: sa.Engine, sub: Subscription, delivered: int) -> None:
    """The target holds a delivery of snapshot ``delivered`` that the hub never recorded (its
    attempt died after the target's commit): mark that attempt ``recovered`` (it was pledged and
    audited before the commit) and move the subscription on to it."""
    d, s = tables.subscription_deliveries, tables.subscriptions
    with engine.begin() as conn:
        found = conn.execute(
            sa.select(d.c.id)
            .where(
                d.c.subscription_id == sub.id,
                d.c.to_snapshot == delivered,
                d.c.status.in_(("running", "failed", "interrupted")),
            )
            .order_by(d.c.id.desc())
            .limit(1)
        ).scalar()
        if found is not None:
            conn.execute(d.update().where(d.c.id == found).values(status="recovered", error=None))
        conn.execute(s.update().where(s.c.id == sub.id).values(last_snapshot_id=delivered, last_error=None))


def _why(exc: Exception, target_url: str, ref: str) -> str:
    """A failure as both departments may read it: never the target's URL, nor its parts (host,
    user, database), which the drivers' messages carry."""
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.ArgumentError)):
        logger.warning("delivery to connection ref %s failed: %s", ref, exc)
        name = type(exc).__name__
        return f"{name}: cannot reach the target database of connection ref {ref!r} (the hub's log has more)"
    text = f"{type(exc).__name__}: {exc}"
    try:
        url = sa.engine.make_url(target_url)
        parts = [url.host, url.username, url.database, url.password]
    except Exception:
        parts = [target_url]
    for part in parts:
        if part and len(str(part)) >= 3:
            text = text.replace(str(part), "…")
    return text[:2000]


Hook = Callable[[str], None]


def deliver(
    engine: sa.Engine,
    lake: Any,
    subscription_id: int,
    *,
    target_url: str | None,
    policy: GradePolicy,
    missing: str = "",
    full: bool = False,
    run_id: str | None = None,
    fault: Hook | None = None,
) -> dict[str, Any]:
    """Deliver what changed since the last delivery (see the module docstring); the attempt's
    record. ``full`` reloads a mirror whole. ``run_id`` names the attempt (the Airflow run).
    Without a ``target_url`` (its connection ref is not configured: ``missing`` says how to) the
    attempt stops. ``fault`` is called at named points (``before_target_commit``,
    ``after_target_commit``) by the tests.

    An attempt's status: ``success`` (it wrote), ``current`` (nothing new), ``stopped``,
    ``failed``; ``interrupted`` (it never finished) or ``recovered`` (it died after the target's
    commit: a later attempt found its delivery there and recorded it)."""
    from catalog.access import app_registry

    sub = get(engine, subscription_id)
    if full and sub.mode != "mirror":
        raise HubError("bad_subscription", why="a full reload is for mirror subscriptions")
    attempt = _start(engine, sub, run_id)
    app = app_registry.get_app(engine, sub.app_id)
    shared = [t for t in sharing.shared_tables(engine, sub.app_id, policy) if t.code == sub.dataset_code]
    if sub.status != "active" or not shared or app is None or app.status != "active":
        if sub.status != "active":
            why = f"subscription ended: {sub.ended_reason}"
        else:
            why = "the app is disabled" if shared else NO_GRANT
        refused = _record(sub, "subscription.deliver", decision="deny", reason="subscription_stopped")
        return _finish(engine, sub, attempt, "stopped", audit=refused, error=why)
    if not target_url:
        why = f"the target's connection ref {sub.target_ref!r} is not configured on the hub"
        return _finish(engine, sub, attempt, "stopped", error=f"{why}; {missing}".rstrip("; "))
    table = shared[0]
    found = sharing.versions(lake, table.code)
    if not found:
        return _finish(engine, sub, attempt, "current")
    latest = found[-1].snapshot_id
    sha = sharing.projection_digest(table.projection)
    counts = {"inserted": 0, "updated": 0, "deleted": 0}
    target: sa.Engine | None = None
    try:
        target = sa.create_engine(target_url, pool_pre_ping=True)
        md = sa.MetaData()
        book, owners = _bookkeeping(md)
        md.create_all(target, tables=[book, owners], checkfirst=True)
        with target.begin() as conn:
            # where the target says it is wins: the hub may have died after the target committed
            number, delivered = _delivered(conn, book, sub.id)
            if delivered is not None and delivered != sub.last_snapshot_id:
                _recover(engine, sub, delivered)
            reload = sub.mode == "mirror" and (full or sha != (sub.projection_sha256 or sha))
            wrote = delivered != latest or reload
            start = None if reload else delivered
            if wrote:
                changes = sharing.diff(lake, table, start, latest)
                data = _data_table(md, sub.target_table, changes.inserted.schema, sub.mode)
                _prepare(conn, data, owners, sub.id, reload=reload)
                counts = _apply(conn, data, sub.mode, changes, latest, _secret_of(engine, sub.id))
                mark = {"subscription_id": sub.id, "delivery_no": number + 1, "snapshot_id": latest}
                conn.execute(book.insert().values(**mark, delivered_at=_naive(utc_now())))
                _pledge(engine, sub, attempt, table, (start, latest), counts, run_id)
                if fault is not None:
                    fault("before_target_commit")
        if fault is not None:
            fault("after_target_commit")
    except Exception as exc:
        _finish(engine, sub, attempt, "failed", error=_why(exc, target_url, sub.target_ref))
        raise
    finally:
        if target is not None:
            target.dispose()
    if not wrote:
        return _finish(engine, sub, attempt, "current", from_snapshot=latest, to_snapshot=latest)
    done: dict[str, Any] = {"from_snapshot": start, "to_snapshot": latest, "projection_sha256": sha, **counts}
    return _finish(engine, sub, attempt, "success", **done)


NO_GRANT = "no active grant allows bulk reading"


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


def _secret_of(engine: sa.Engine, sub_id: int) -> bytes:
    t = tables.subscriptions
    with engine.connect() as conn:
        return bytes.fromhex(conn.execute(sa.select(t.c.key_secret).where(t.c.id == sub_id)).scalar_one())


def _naive(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(tzinfo=None)


def row_keys(keys: pa.Table, secret: bytes) -> list[str]:
    """The target's row keys (``_sh_key``) of raw primary keys: HMAC-SHA256 under the
    subscription's own secret, so equal keys give equal row keys from delivery to delivery and
    nothing about the key can be learnt from them."""
    out = []
    for row in keys.to_pylist():
        text = json.dumps(list(row.values()), ensure_ascii=False, default=str, separators=(",", ":"))
        out.append(hmac.new(secret, text.encode(), hashlib.sha256).hexdigest())
    return out


BATCH = 2000


def _apply(
    conn: sa.Connection, data: sa.Table, mode: str, changes: sharing.Diff, snapshot: int, secret: bytes
) -> dict[str, int]:
    if mode == "mirror":
        gone = row_keys(changes.deleted_keys, secret) + row_keys(changes.updated_keys, secret)
        for off in range(0, len(gone), BATCH):
            conn.execute(data.delete().where(data.c[KEY].in_(gone[off : off + BATCH])))
        for images, keys in (
            (changes.inserted, changes.inserted_keys),
            (changes.postimages, changes.updated_keys),
        ):
            _insert(conn, data, images.append_column(KEY, pa.array(row_keys(keys, secret), pa.string())))
    else:
        rows = changes.change_table()
        rows = rows.append_column("_commit_snapshot", pa.array([snapshot] * rows.num_rows, pa.int64()))
        now = _naive(utc_now())
        _insert(
            conn,
            data,
            rows.append_column("_delivered_at", pa.array([now] * rows.num_rows, pa.timestamp("us"))),
        )
    return changes.counts


def _insert(conn: sa.Connection, data: sa.Table, rows: pa.Table) -> None:
    for batch in rows.to_batches(BATCH):
        if batch.num_rows:  # an empty parameter list would insert one row of defaults
            conn.execute(data.insert(), [_plain(r) for r in batch.to_pylist()])


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """Values a DB driver takes (aware datetimes become naive UTC)."""
    return {k: (_naive(v) if isinstance(v, dt.datetime) and v.tzinfo else v) for k, v in row.items()}
