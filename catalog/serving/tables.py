"""The serving store (共享库): one indexed SQL table per published dataset in the hub DB.

The lake is the system of record; these tables are derived from the curated snapshot so
that lookups by primary key or subject are fast. Each run refreshes its table in one
transaction: a full run replaces the contents, an incremental run upserts its rows. The
table can always be rebuilt from the curated snapshot (a full sync reloads it).

**Which snapshot a serving table reflects** is recorded in ``hub_serving_state``, in the same
transaction as the rows (:func:`refresh` with ``snapshot_id``). The pipeline compares it with
the curated table's current snapshot before anything else and reloads the table when it is
behind (a run that died between the curated commit and the serving refresh), so serving always
converges to the snapshot it claims to reflect.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.schema import SchemaItem

from catalog.db import tables
from catalog.directory.model import DatasetSpec, FieldSpec

SERVING_PREFIX = "srv_"
META_COLUMNS = ("_run_id", "_updated_at")
_CHUNK = 5_000
_COPY_BATCH = 65_536


def serving_table_name(code: str) -> str:
    """SQL table name of a dataset's serving table."""
    return SERVING_PREFIX + re.sub(r"[^a-z0-9]+", "_", code.lower()).strip("_")


def _sql_type(f: FieldSpec) -> sa.types.TypeEngine[Any]:
    ps = f.decimal_precision_scale()
    if ps:
        return sa.Numeric(ps[0], ps[1])
    types: dict[str, sa.types.TypeEngine[Any]] = {
        "string": sa.Text(),
        "integer": sa.BigInteger(),
        "float": sa.Float(),
        "boolean": sa.Boolean(),
        "date": sa.Date(),
        "timestamp": sa.DateTime(),
    }
    return types[f.type]


_TABLES: dict[tuple[Any, ...], sa.Table] = {}


def serving_table(spec: DatasetSpec, metadata: sa.MetaData | None = None) -> sa.Table:
    """The SQLAlchemy table for a dataset (key columns as bounded strings so every DB can index them).

    Without ``metadata`` the table is cached per shape: building a Table costs far more than a
    lookup, and the same Table object lets SQLAlchemy reuse its compiled statements."""
    if metadata is None:
        shape = (
            spec.code,
            tuple((f.name, f.type) for f in spec.fields),
            tuple(spec.primary_key),
            spec.subject.field if spec.subject else None,
        )
        table = _TABLES.get(shape)
        if table is None:
            table = _TABLES[shape] = _build_table(spec, sa.MetaData())
        return table
    return _build_table(spec, metadata)


def _build_table(spec: DatasetSpec, md: sa.MetaData) -> sa.Table:
    name = serving_table_name(spec.code)
    keyish = set(spec.primary_key) | ({spec.subject.field} if spec.subject else set())
    cols: list[SchemaItem] = []
    for f in spec.fields:
        typ = sa.String(200) if (f.name in keyish and f.type == "string") else _sql_type(f)
        # autoincrement=False: a one-column integer key is the department's key, not a serial
        cols.append(sa.Column(f.name, typ, nullable=f.name not in spec.primary_key, autoincrement=False))
    cols.append(sa.Column("_run_id", sa.String(250), nullable=False))
    cols.append(sa.Column("_updated_at", sa.DateTime(timezone=True), nullable=False))
    cols.append(sa.PrimaryKeyConstraint(*spec.primary_key, name=f"pk_{name}"))
    if spec.subject and spec.subject.field not in spec.primary_key[:1]:
        cols.append(sa.Index(f"ix_{name}_subject", spec.subject.field))
    return sa.Table(name, md, *cols)


def ensure_serving_table(engine: sa.Engine, spec: DatasetSpec) -> bool:
    """Create the table, or recreate it when the declared fields changed. True when it is new/empty."""
    table = serving_table(spec)
    insp = sa.inspect(engine)
    if insp.has_table(table.name):
        existing = {c["name"] for c in insp.get_columns(table.name)}
        if existing == {c.name for c in table.columns}:
            return False
        table.drop(engine)  # derived data: rebuilt from the curated snapshot by the caller
    table.create(engine)
    forget_state(engine, spec.code)
    return True


def create_if_missing(engine: sa.Engine, spec: DatasetSpec) -> None:
    """An empty serving table for a newly published dataset (lookups answer "nothing" before
    the first sync instead of failing); an existing table is left for the next sync to refresh."""
    serving_table(spec).create(engine, checkfirst=True)


def is_empty(engine: sa.Engine, spec: DatasetSpec) -> bool:
    """True when the serving table holds no row (cheap: one row at most is read)."""
    table = serving_table(spec)
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first() is None


def _py_rows(
    batch: pa.RecordBatch | pa.Table, names: Sequence[str], run_id: str, now: dt.datetime
) -> list[dict[str, Any]]:
    cols = {n: batch.column(n).to_pylist() for n in names}
    return [
        {**{n: cols[n][i] for n in names}, "_run_id": run_id, "_updated_at": now}
        for i in range(batch.num_rows)
    ]


def _chunks(data: pa.Table | Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    batches = data.to_batches(max_chunksize=_CHUNK) if isinstance(data, pa.Table) else data
    for b in batches:
        for off in range(0, b.num_rows, _CHUNK):
            yield b.slice(off, _CHUNK)


def _upsert_stmt(engine: sa.Engine, table: sa.Table, key: Sequence[str]) -> Any:
    dialect = engine.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(table)
        return stmt.on_conflict_do_update(
            index_elements=list(key),
            set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in key},
        )
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        s_stmt = sqlite_insert(table)
        return s_stmt.on_conflict_do_update(
            index_elements=list(key),
            set_={c.name: s_stmt.excluded[c.name] for c in table.columns if c.name not in key},
        )
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as my_insert

        m_stmt = my_insert(table)
        return m_stmt.on_duplicate_key_update(
            {c.name: m_stmt.inserted[c.name] for c in table.columns if c.name not in key}
        )
    raise NotImplementedError(f"serving upsert is not implemented for {dialect}")


#: ``refresh``'s ``snapshot_id``: the curated snapshot the table reflects afterwards, or a
#: function that tells it once ``before_commit`` has run (the lake commits in parallel)
SnapshotRef = int | None | Callable[[], int | None]
_NO_STATE = object()


def state(bind: sa.Engine | sa.Connection, code: str) -> tuple[bool, int | None]:
    """(known, snapshot id): the curated snapshot the serving table reflects, when recorded."""
    t = tables.serving_state
    with _reading(bind) as conn:
        row = conn.execute(sa.select(t.c.snapshot_id).where(t.c.dataset_code == code)).first()
    return (True, row.snapshot_id) if row is not None else (False, None)


def record_state(conn: sa.Connection, code: str, snapshot_id: int | None, run_id: str) -> None:
    """Record (in the caller's transaction) that the table reflects curated ``snapshot_id``."""
    t = tables.serving_state
    conn.execute(t.delete().where(t.c.dataset_code == code))
    conn.execute(
        t.insert().values(
            dataset_code=code, snapshot_id=snapshot_id, run_id=run_id, updated_at=dt.datetime.now(dt.UTC)
        )
    )


def forget_state(engine: sa.Engine, code: str) -> None:
    """The table no longer reflects any known snapshot (it was recreated): the next run reloads it."""
    with engine.begin() as conn:
        conn.execute(tables.serving_state.delete().where(tables.serving_state.c.dataset_code == code))


def refresh(
    engine: sa.Engine,
    spec: DatasetSpec,
    data: pa.Table | Iterable[pa.RecordBatch],
    *,
    run_id: str,
    replace: bool,
    before_commit: Callable[[], None] | None = None,
    snapshot_id: SnapshotRef | object = _NO_STATE,
) -> int:
    """Write a run's published rows: replace the whole table (full run) or upsert them. One transaction.

    ``data`` may be a one-shot stream of record batches: it is read once, in bounded memory.
    PostgreSQL gets the rows through ``COPY`` (:mod:`catalog.serving.pg_load`); other databases
    through batched inserts. ``before_commit`` runs once every row is written, before the rows
    become visible; if it raises, nothing changes (the pipeline waits there for the lake's
    commit, so serving never shows rows the lake did not publish). ``snapshot_id`` (a value, or
    a function called after ``before_commit``) is recorded as the curated snapshot the table now
    reflects, in the same transaction.
    """
    table = serving_table(spec)
    names = [f.name for f in spec.fields]
    now = dt.datetime.now(dt.UTC)
    batches = data.to_batches(max_chunksize=_COPY_BATCH) if isinstance(data, pa.Table) else data
    if engine.dialect.name == "postgresql":
        from catalog.serving import pg_load as serving_load

        subject = spec.subject.field if spec.subject else None
        with engine.begin() as conn:
            if replace:
                written = serving_load.replace(
                    conn,
                    table,
                    spec.primary_key,
                    subject,
                    batches,
                    names,
                    run_id=run_id,
                    now=now,
                    before_swap=before_commit,
                )
            else:
                written = serving_load.upsert(
                    conn, table, spec.primary_key, batches, names, run_id=run_id, now=now
                )
                if before_commit is not None:
                    before_commit()
            _write_state(conn, spec.code, snapshot_id, run_id)
            return written
    written = 0
    stmt = table.insert() if replace else _upsert_stmt(engine, table, spec.primary_key)
    with engine.begin() as conn:
        if replace:
            conn.execute(table.delete())
        for chunk in _chunks(batches):
            rows = _py_rows(chunk, names, run_id, now)
            if rows:
                conn.execute(stmt, rows)
                written += len(rows)
        if before_commit is not None:
            before_commit()
        _write_state(conn, spec.code, snapshot_id, run_id)
    return written


def _write_state(conn: sa.Connection, code: str, snapshot_id: Any, run_id: str) -> None:
    if snapshot_id is _NO_STATE:
        return
    value = snapshot_id() if callable(snapshot_id) else snapshot_id
    record_state(conn, code, value, run_id)


def _public(row: sa.Row[Any]) -> dict[str, Any]:
    return {k: v for k, v in row._mapping.items() if k not in META_COLUMNS}


def _reading(bind: sa.Engine | sa.Connection) -> contextlib.AbstractContextManager[sa.Connection]:
    """A connection for one read: the caller's own, or a new one from the engine."""
    return contextlib.nullcontext(bind) if isinstance(bind, sa.Connection) else bind.connect()


def lookup_key(
    bind: sa.Engine | sa.Connection, spec: DatasetSpec, key: dict[str, Any]
) -> dict[str, Any] | None:
    """The record with this primary key, or None (``bind``: an engine, or a connection to reuse)."""
    table = serving_table(spec)
    missing = [k for k in spec.primary_key if k not in key]
    if missing:
        raise ValueError(f"primary key field(s) missing: {', '.join(missing)}")
    cond = sa.and_(*[table.c[k] == key[k] for k in spec.primary_key])
    with _reading(bind) as conn:
        row = conn.execute(sa.select(table).where(cond)).first()
    return _public(row) if row else None


def lookup_subject(
    bind: sa.Engine | sa.Connection,
    spec: DatasetSpec,
    subject: str,
    *,
    limit: int = 100,
    after: Sequence[Any] | None = None,
) -> list[dict[str, Any]]:
    """Records about one subject, ordered by primary key; ``after`` is the last key seen (cursor).

    ``bind``: an engine, or a connection to reuse (the API reads the grant and the records on one)."""
    if spec.subject is None:
        raise ValueError(f"dataset {spec.code} has no subject field")
    table = serving_table(spec)
    key_cols = [table.c[k] for k in spec.primary_key]
    q = sa.select(table).where(table.c[spec.subject.field] == subject)
    if after is not None:
        q = q.where(sa.tuple_(*key_cols) > sa.tuple_(*[sa.literal(v) for v in after]))
    q = q.order_by(*key_cols).limit(limit)
    with _reading(bind) as conn:
        return [_public(r) for r in conn.execute(q)]


def count(engine: sa.Engine, spec: DatasetSpec) -> int:
    """Rows in the serving table (0 when it does not exist yet)."""
    table = serving_table(spec)
    if not sa.inspect(engine).has_table(table.name):
        return 0
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
