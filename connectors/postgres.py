"""PostgreSQL fast path: ``COPY (SELECT ...) TO STDOUT WITH (FORMAT csv)`` into pyarrow's CSV reader.

A reader thread joins COPY's rows into blocks of ~16 MB while the caller's thread parses the
previous block with Arrow's multi-threaded CSV parser, so the socket, the parse and whatever
the caller does with a batch overlap (see docs/benchmarks.md for what this buys).

Column types come from a ``LIMIT 0`` run of the same query (psycopg's cursor.description type
OIDs), so the Arrow data equals the generic path's. COPY takes no bind parameters: the
watermark is quoted client-side by ``psycopg.sql.Literal``. Queries with a column type the
fast path does not parse fall back to the generic path.
"""

from __future__ import annotations

import gc
import select
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import sqlalchemy as sa

from connectors.arrow_types import PG_TIMESTAMPTZ, from_pg_oid
from connectors.base import ConnectorError
from connectors.common import WATERMARK_PARAM, ordinal_rows, read_ahead, slice_batches, with_origin

if TYPE_CHECKING:
    import psycopg
    from psycopg import pq
    from psycopg import sql as psql

    from connectors.sql import Plan, SqlConnector

#: bytes of COPY output parsed at once (one record batch), and Arrow's parse block inside it
_BLOCK = 16 << 20
_PARSE_BLOCK = 1 << 20


@dataclass
class CopyLayout:
    """What the COPY needs: the inner SELECT, the result columns and their Arrow types."""

    inner: psql.Composable
    names: list[str]
    types: list[pa.DataType]
    utc_columns: list[bool]


def _connect(engine: sa.Engine) -> psycopg.Connection[Any]:
    import psycopg

    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = psycopg.connect(conninfo, client_encoding="UTF8")
    conn.execute("SET DateStyle TO ISO, YMD")
    return conn


def _inner_sql(engine: sa.Engine, plan: Plan) -> psql.Composable | None:
    from psycopg import sql as psql


    if engine.dialect.paramstyle != "pyformat":
        return None
    compiled = plan.statement.compile(dialect=engine.dialect)
    if set(compiled.params) - {WATERMARK_PARAM}:
        return None
    pieces = str(compiled).split(f"%({WATERMARK_PARAM})s")
    # the compiled text escapes "%" for pyformat; COPY is sent without parameters
    parts: list[psql.Composable] = [psql.SQL(pieces[0].replace("%%", "%"))]
    for piece in pieces[1:]:
        parts += [psql.Literal(plan.params[WATERMARK_PARAM]), psql.SQL(piece.replace("%%", "%"))]
    return psql.Composed(parts)


def copy_supported(engine: sa.Engine, plan: Plan) -> CopyLayout | None:
    """The COPY layout for ``plan``, or None when the generic path must read it."""
    try:
        import psycopg
        from psycopg import sql as psql
    except ImportError:
        return None
    inner = _inner_sql(engine, plan)
    if inner is None:
        return None
    with _connect(engine) as conn:
        try:
            cur = conn.execute(
                psql.Composed([psql.SQL("SELECT * FROM ("), inner, psql.SQL(") AS q LIMIT 0")])
            )
        except psycopg.Error:
            return None  # let the generic path report it through SQLAlchemy
        description = cur.description or []
    names, types, utc = [], [], []
    for col in description:
        arrow_type = plan.column_types.get(col.name) or from_pg_oid(col.type_code, col.precision, col.scale)
        if from_pg_oid(col.type_code, col.precision, col.scale) is None or arrow_type is None:
            return None
        names.append(col.name)
        types.append(arrow_type)
        utc.append(col.type_code == PG_TIMESTAMPTZ)
    if len(set(names)) != len(names):
        return None
    return CopyLayout(inner, names, types, utc)


def _row_blocks(pgconn: pq.abc.PGconn, query: bytes, size: int) -> Generator[bytes]:
    """Run ``query`` (a COPY … TO STDOUT) on ``pgconn``; its output joined into ~``size``-byte blocks.

    PostgreSQL sends one CopyData message per row, so every message ends a row: a block never
    splits a row (quoted newlines included) and parses on its own. The rows are read through
    libpq itself (``psycopg.pq``): psycopg's ``Copy.read()`` spends Python work on every row,
    which at a million rows takes as long as the server needs to produce them. The socket wait is
    a ``select`` (the GIL is free while the server works).
    """
    import psycopg
    from psycopg import pq

    def failed(what: str, result: Any) -> psycopg.Error:
        message = result.error_message if result is not None else pgconn.error_message
        return psycopg.OperationalError(f"{what}: {bytes(message).decode('utf-8', 'replace').strip()}")

    pgconn.send_query(query)  # raises psycopg.OperationalError if it cannot be sent
    pgconn.flush()
    first = _next_result(pgconn)
    if first is None or first.status != pq.ExecStatus.COPY_OUT:
        _drain(pgconn)
        raise failed("COPY refused", first)
    parts: list[Any] = []
    n = 0
    fd = pgconn.socket
    finished = False
    # each row allocates a tuple: with the cyclic GC on, a million rows trigger ~1,400
    # collections that scan every object the process holds (9 % of the read in a profile);
    # it is paused while a block fills and runs between blocks
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while True:
            nbytes, data = pgconn.get_copy_data(1)
            if nbytes > 0:
                parts.append(data)
                n += nbytes
                if n >= size:
                    if gc_was_enabled:
                        gc.enable()
                    yield b"".join(parts)
                    gc.disable()
                    parts, n = [], 0
            elif nbytes == 0:
                select.select([fd], [], [])
                pgconn.consume_input()
            elif nbytes == -1:
                finished = True
                break
            else:
                raise failed("COPY interrupted", None)
    finally:
        if gc_was_enabled:
            gc.enable()
        if not finished:  # the reader stopped early: cancel the COPY, leave the connection idle
            pgconn.get_cancel().cancel()
            while pgconn.get_copy_data(0)[0] >= 0:
                pass
            _drain(pgconn)
    if parts:
        yield b"".join(parts)
    end = _next_result(pgconn)
    _drain(pgconn)
    if end is None or end.status != pq.ExecStatus.COMMAND_OK:
        raise failed("COPY failed", end)


def _next_result(pgconn: pq.abc.PGconn) -> Any:
    """The next result of the query in flight, waiting on the socket without holding the GIL."""
    while pgconn.is_busy():
        select.select([pgconn.socket], [], [])
        pgconn.consume_input()
    return pgconn.get_result()


def _drain(pgconn: pq.abc.PGconn) -> None:
    while _next_result(pgconn) is not None:
        pass


def copy_batches(
    connector: SqlConnector, engine: sa.Engine, plan: Plan, layout: CopyLayout
) -> Iterator[pa.RecordBatch]:
    """Stream ``COPY (SELECT ...) TO STDOUT`` as batches typed like the generic path's."""
    import psycopg
    from psycopg import sql as psql

    keys = [f"c{i}" for i in range(len(layout.names))]
    exprs: list[psql.Composable] = []
    for name, utc in zip(layout.names, layout.utc_columns, strict=True):
        ident = psql.Identifier(name)
        # timestamptz printed in UTC without an offset, then tagged UTC in Arrow
        exprs.append(psql.SQL("({} AT TIME ZONE 'UTC')").format(ident) if utc else ident)
    statement = psql.Composed(
        [
            psql.SQL("COPY (SELECT "),
            psql.SQL(", ").join(exprs),
            psql.SQL(" FROM ("),
            layout.inner,
            psql.SQL(") AS q) TO STDOUT WITH (FORMAT csv, HEADER false)"),
        ]
    )
    read_types = {
        key: pa.timestamp("us") if utc else arrow_type
        for key, arrow_type, utc in zip(keys, layout.types, layout.utc_columns, strict=True)
    }
    cursor_index = layout.names.index(connector.cursor) if connector.cursor in layout.names else None
    read_options = pa_csv.ReadOptions(column_names=keys, use_threads=True, block_size=_PARSE_BLOCK)
    parse_options = pa_csv.ParseOptions(newlines_in_values=True)
    convert_options = pa_csv.ConvertOptions(
        column_types=read_types,
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        true_values=["t"],
        false_values=["f"],
    )
    start = 1
    with _connect(engine) as conn:
        try:
            query = statement.as_bytes(conn)
            for block in read_ahead(_row_blocks(conn.pgconn, query, _BLOCK), depth=2, name="copy-reader"):
                raw = pa_csv.read_csv(
                    pa.py_buffer(block),
                    read_options=read_options,
                    parse_options=parse_options,
                    convert_options=convert_options,
                ).combine_chunks()
                arrays = [
                    col.chunk(0).cast(t) if utc else col.chunk(0)
                    for col, t, utc in zip(raw.columns, layout.types, layout.utc_columns, strict=True)
                ]
                batch = pa.RecordBatch.from_arrays(arrays, names=layout.names)
                for part in slice_batches(batch, connector.batch_size):
                    if cursor_index is not None:
                        connector.note_cursor_max(pc.max(part.column(cursor_index)).as_py())
                    yield with_origin(part, connector.source, ordinal_rows(start, part.num_rows))
                    start += part.num_rows
        except psycopg.Error as exc:
            raise ConnectorError(f"{connector.source}: COPY failed: {exc}") from None
        except pa.ArrowInvalid as exc:
            raise ConnectorError(f"{connector.source}: COPY output near row {start}: {exc}") from None
