"""Bulk writes of serving tables on PostgreSQL: ``COPY … FROM STDIN`` instead of row inserts.

A full refresh loads a staging table with no index, builds the primary key and the subject
index on it, then swaps it in for the live table, all in one transaction: readers keep the old
rows until the commit and wait only for the swap itself (PostgreSQL re-resolves a table name a
query was waiting on, so a lookup blocked by the swap reads the new table). An incremental
refresh copies its rows into a temporary table and merges them with ``INSERT … ON CONFLICT``.

Rows are formatted as CSV by Arrow's writer (C++, one block per record batch) and sent as
they are formatted, so memory holds about one block whatever the table's size. Strings are
always quoted, so an empty string stays an empty string and only an unquoted empty field is
NULL.

Swapping drops the old table: privileges granted on it and views over it do not survive
(the hub's own role owns the serving tables; see docs/deploy.md).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlalchemy as sa

if TYPE_CHECKING:
    import psycopg

_WRITE_OPTIONS = pa_csv.WriteOptions(include_header=False, batch_size=8192)


def _csv_blocks(
    data: Iterable[pa.RecordBatch], names: Sequence[str], run_id: str, now: dt.datetime
) -> Iterator[bytes | memoryview]:
    run = pa.scalar(run_id, pa.string())
    stamp = pa.scalar(now, pa.timestamp("us", tz="UTC"))
    for batch in data:
        if not batch.num_rows:
            continue
        n = batch.num_rows
        arrays = [batch.column(name) for name in names]
        arrays.append(pa.repeat(run, n))
        arrays.append(pa.repeat(stamp, n))
        block = pa.RecordBatch.from_arrays(arrays, names=[*names, "_run_id", "_updated_at"])
        buf = io.BytesIO()
        pa_csv.write_csv(block, buf, _WRITE_OPTIONS)
        yield buf.getbuffer()


def _copy(
    cur: psycopg.Cursor[Any],
    table: str,
    columns: Sequence[str],
    data: Iterable[pa.RecordBatch],
    names: Sequence[str],
    run_id: str,
    now: dt.datetime,
) -> int:
    from psycopg import sql as psql

    statement = psql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        psql.Identifier(table), psql.SQL(", ").join(psql.Identifier(c) for c in columns)
    )
    counted = _Counting(data)
    # psycopg's default writer sends in this thread: the next block is formatted while the
    # server still parses the last one from the socket buffers. (Its QueuedLibpqWriter queues
    # up to 1,024 pieces of 512 KB: as PostgreSQL takes rows in slower than Arrow formats them,
    # that queue held hundreds of MB of CSV at five million rows.)
    with cur.copy(statement) as copy:
        for block in _csv_blocks(counted, names, run_id, now):
            copy.write(block)
    return counted.rows


class _Counting:
    """Iterate record batches and count their rows."""

    def __init__(self, data: Iterable[pa.RecordBatch]) -> None:
        self._data = data
        self.rows = 0

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self._data:
            self.rows += batch.num_rows
            yield batch


def replace(
    conn: sa.Connection,
    table: sa.Table,
    key: Sequence[str],
    subject: str | None,
    data: Iterable[pa.RecordBatch],
    names: Sequence[str],
    *,
    run_id: str,
    now: dt.datetime,
    before_swap: Callable[[], None] | None = None,
) -> int:
    """Replace the whole table with ``data`` (inside the caller's transaction); rows written.

    ``before_swap`` runs once the staging table is loaded and indexed (raising there leaves the
    live table as it was)."""
    from psycopg import sql as psql

    ident = psql.Identifier
    name = table.name
    staging = f"{name}__load"
    pk_name = f"pk_{name}"
    ix_name = f"ix_{name}_subject"
    driver: psycopg.Connection[Any] = conn.connection.driver_connection  # type: ignore[assignment]
    columns = [c.name for c in table.columns]
    with driver.cursor() as cur:
        cur.execute(psql.SQL("DROP TABLE IF EXISTS {}").format(ident(staging)))
        cur.execute(
            # no defaults: COPY fills every column, and a default taken over (a serial's nextval,
            # on tables made before serving keys stopped being serial) would tie the staging
            # table to the live table's sequence, so that the live table could not be dropped
            psql.SQL("CREATE TABLE {} (LIKE {})").format(ident(staging), ident(name))
        )
        rows = _copy(cur, staging, columns, data, names, run_id, now)
        cur.execute(
            psql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({})").format(
                ident(staging), ident(f"pk_{staging}"), psql.SQL(", ").join(ident(k) for k in key)
            )
        )
        has_subject_index = subject is not None and subject not in key[:1]
        if has_subject_index:
            cur.execute(
                psql.SQL("CREATE INDEX {} ON {} ({})").format(
                    ident(f"ix_{staging}_subject"), ident(staging), ident(str(subject))
                )
            )
        cur.execute(psql.SQL("ANALYZE {}").format(ident(staging)))
        if before_swap is not None:
            before_swap()
        # the swap: readers wait from here to the commit only
        cur.execute(psql.SQL("DROP TABLE {}").format(ident(name)))
        cur.execute(psql.SQL("ALTER TABLE {} RENAME TO {}").format(ident(staging), ident(name)))
        cur.execute(
            psql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
                ident(name), ident(f"pk_{staging}"), ident(pk_name)
            )
        )
        if has_subject_index:
            cur.execute(
                psql.SQL("ALTER INDEX {} RENAME TO {}").format(ident(f"ix_{staging}_subject"), ident(ix_name))
            )
    return rows


def upsert(
    conn: sa.Connection,
    table: sa.Table,
    key: Sequence[str],
    data: Iterable[pa.RecordBatch],
    names: Sequence[str],
    *,
    run_id: str,
    now: dt.datetime,
) -> int:
    """Insert new keys and overwrite existing ones (inside the caller's transaction); rows written."""
    from psycopg import sql as psql

    ident = psql.Identifier
    temp = f"{table.name}__merge"
    driver: psycopg.Connection[Any] = conn.connection.driver_connection  # type: ignore[assignment]
    columns = [c.name for c in table.columns]
    cols = psql.SQL(", ").join(ident(c) for c in columns)
    with driver.cursor() as cur:
        cur.execute(
            psql.SQL("CREATE TEMPORARY TABLE {} (LIKE {}) ON COMMIT DROP").format(
                ident(temp), ident(table.name)
            )
        )
        rows = _copy(cur, temp, columns, data, names, run_id, now)
        updates = psql.SQL(", ").join(
            psql.SQL("{} = EXCLUDED.{}").format(ident(c), ident(c)) for c in columns if c not in key
        )
        cur.execute(
            psql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) DO UPDATE SET {}").format(
                ident(table.name),
                cols,
                cols,
                ident(temp),
                psql.SQL(", ").join(ident(k) for k in key),
                updates,
            )
        )
        cur.execute(psql.SQL("DROP TABLE {}").format(ident(temp)))
    return rows
