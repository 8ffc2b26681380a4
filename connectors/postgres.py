"""PostgreSQL fast path: ``COPY (SELECT ...) TO STDOUT WITH (FORMAT csv)`` into pyarrow's CSV reader.

Column types come from a ``LIMIT 0`` run of the same query (psycopg's cursor.description type
OIDs), so the Arrow data equals the generic path's. COPY takes no bind parameters: the
watermark is quoted client-side by ``psycopg.sql.Literal``. Queries with a column type the
fast path does not parse fall back to the generic path.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import sqlalchemy as sa

from connectors.arrow_types import PG_TIMESTAMPTZ, from_pg_oid
from connectors.base import ConnectorError
from connectors.common import ordinal_rows, slice_batches, with_origin

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql as psql

    from connectors.sql import Plan, SqlConnector

_BLOCK = 1 << 20


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

    from connectors.sql import WATERMARK_PARAM

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


class _CopyStream(io.RawIOBase):
    """A byte stream over psycopg's COPY OUT chunks."""

    def __init__(self, copy: psycopg.Copy) -> None:
        super().__init__()
        self._copy = copy
        self._buffer = memoryview(b"")

    def readable(self) -> bool:
        return True

    def is_empty(self) -> bool:
        """Whether the COPY produced no data at all (pyarrow refuses an empty CSV)."""
        if not self._buffer:
            self._buffer = memoryview(bytes(self._copy.read()))
        return not self._buffer

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if not self._buffer:
            self._buffer = memoryview(bytes(self._copy.read()))
            if not self._buffer:
                return 0
        n = min(len(buffer), len(self._buffer))
        buffer[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


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
    start = 1
    with _connect(engine) as conn:
        try:
            with conn.cursor() as cur, cur.copy(statement) as copy:
                stream = _CopyStream(copy)
                if stream.is_empty():
                    return
                reader = pa_csv.open_csv(
                    io.BufferedReader(stream, buffer_size=_BLOCK),
                    read_options=pa_csv.ReadOptions(column_names=keys, use_threads=False, block_size=_BLOCK),
                    parse_options=pa_csv.ParseOptions(newlines_in_values=True),
                    convert_options=pa_csv.ConvertOptions(
                        column_types=read_types,
                        null_values=[""],
                        strings_can_be_null=True,
                        quoted_strings_can_be_null=False,
                        true_values=["t"],
                        false_values=["f"],
                    ),
                )
                for raw in reader:
                    arrays = [
                        col.cast(t) if utc else col
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
