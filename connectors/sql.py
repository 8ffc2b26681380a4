"""The SQL connector: any SQLAlchemy URL, streamed in batches, full or incremental.

Incremental reads take ``cursor >= watermark - lookback`` (a closed start and no end bound):
rows equal to the watermark are read again on purpose, since the lake upserts on the primary
key. PostgreSQL sources are read in bulk through ADBC (``COPY ... TO STDOUT`` in binary, decoded
into Arrow by the driver: see ``connectors.postgres``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from connectors.arrow_types import from_pg_oid, from_sqlalchemy, infer_from_values, to_array
from connectors.base import DEFAULT_BATCH_SIZE, ConnectorError, Reject
from connectors.common import WATERMARK_PARAM, lower_bound, ordinal_rows, with_origin

QUERY_SOURCE = "query"
# a colon that SQLAlchemy's text() would take for a bind parameter (not "::" casts)
_TEXT_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")


@dataclass
class Plan:
    """A compiled read: the statement, its parameters and what is known of its column types."""

    statement: sa.Select[Any]
    params: dict[str, Any]
    column_types: dict[str, pa.DataType | None]


class SqlConnector:
    """Rows of a table or a query from any SQLAlchemy URL, as Arrow batches.

    After iteration ``new_watermark`` is the largest cursor value seen (None when no rows were
    read or the read is not incremental). On PostgreSQL the bulk path (ADBC: binary ``COPY``)
    reads unless ``copy_fast_path=False``; ``used_copy`` says whether it did (the names are
    kept from the CSV ``COPY`` path it replaced).
    """

    def __init__(
        self,
        url: str,
        *,
        table: str | None = None,
        query: str | None = None,
        columns: list[str] | None = None,
        cursor: str | None = None,
        watermark: Any | None = None,
        lookback: dt.timedelta | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        copy_fast_path: bool = True,
    ) -> None:
        if (table is None) == (query is None):
            raise ConnectorError("give exactly one of table= or query=")
        if watermark is not None and cursor is None:
            raise ConnectorError("an incremental read (watermark=) needs cursor=")
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        self.url = url
        self.table = table
        self.query = query
        self.columns = list(columns) if columns else None
        self.cursor = cursor
        self.watermark = watermark
        self.lookback = lookback
        self.batch_size = batch_size
        self.copy_fast_path = copy_fast_path
        self.source = table if table is not None else QUERY_SOURCE
        self.new_watermark: Any | None = None
        self.used_copy = False
        self._rejects: list[Reject] = []

    @property
    def rejects(self) -> list[Reject]:
        """Rows the connector could not read (always empty for SQL: types come from the database)."""
        return self._rejects

    def _engine(self) -> sa.Engine:
        try:
            return sa.create_engine(self.url)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise ConnectorError(f"{self.source}: bad database URL: {exc}") from None

    def plan(self, conn: sa.Connection) -> Plan:
        """Build the SELECT (quoted identifiers, bound watermark) for this read."""
        params: dict[str, Any] = {}
        if self.table is not None:
            schema, _, name = self.table.rpartition(".")
            try:
                table = sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=conn)
            except sa.exc.NoSuchTableError:
                raise ConnectorError(f"{self.table}: no such table") from None
            wanted = self.columns or list(table.c.keys())
            missing = [c for c in wanted if c not in table.c]
            if self.cursor is not None and self.cursor not in table.c:
                missing.append(self.cursor)
            if missing:
                raise ConnectorError(f"{self.table}: no such column(s): {', '.join(missing)}")
            statement = sa.select(*(table.c[c] for c in wanted))
            types = {c: from_sqlalchemy(table.c[c].type) for c in wanted}
            cursor_column: sa.ColumnElement[Any] | None = (
                table.c[self.cursor] if self.cursor is not None else None
            )
        else:
            assert self.query is not None
            text = sa.text(_TEXT_BIND.sub(r"\\:\1", self.query.strip().rstrip(";")))
            sub = text.columns().subquery("q")
            if self.columns:
                statement = sa.select(*(sa.column(c) for c in self.columns)).select_from(sub)
            else:
                statement = sa.select(sa.literal_column("*")).select_from(sub)
            types = {}
            cursor_column = sa.column(self.cursor) if self.cursor is not None else None
        if self.watermark is not None and cursor_column is not None:
            start = lower_bound(self.watermark, self.lookback)
            statement = statement.where(
                cursor_column >= sa.bindparam(WATERMARK_PARAM, start, type_=cursor_column.type)
            )
            params[WATERMARK_PARAM] = start
        return Plan(statement, params, types)

    def read_batches(self) -> Iterator[pa.RecordBatch]:
        """Stream the rows as record batches with ``_source`` (table or "query") and ``_row``."""
        self.new_watermark = None
        self.used_copy = False
        engine = self._engine()
        try:
            if self.copy_fast_path and engine.dialect.name == "postgresql":
                from connectors.postgres import bulk_batches, bulk_supported

                with engine.connect() as conn:
                    plan = self.plan(conn)
                    layout = bulk_supported(engine, plan)
                if layout is not None:
                    self.used_copy = True
                    yield from bulk_batches(self, engine, plan, layout)
                    return
            yield from self._generic(engine)
        except sa.exc.SQLAlchemyError as exc:
            raise ConnectorError(f"{self.source}: {type(exc).__name__}: {exc}") from None
        finally:
            engine.dispose()

    def note_cursor_max(self, value: Any) -> None:
        """Fold a batch's largest cursor value into ``new_watermark``."""
        if value is not None and (self.new_watermark is None or value > self.new_watermark):
            self.new_watermark = value

    def _generic(self, engine: sa.Engine) -> Iterator[pa.RecordBatch]:
        with engine.connect() as conn:
            plan = self.plan(conn)
            result = conn.execution_options(stream_results=True, yield_per=self.batch_size).execute(
                plan.statement, plan.params
            )
            names = list(result.keys())
            types: list[pa.DataType | None] = [plan.column_types.get(n) for n in names]
            if engine.dialect.name == "postgresql":
                description = result.cursor.description if result.cursor is not None else None
                for i, col in enumerate(description or []):
                    if types[i] is None and isinstance(col[1], int):
                        types[i] = from_pg_oid(col[1], col[4], col[5])
            cursor_index = names.index(self.cursor) if self.cursor in names else None
            start = 1
            for rows in result.partitions(self.batch_size):
                values = list(zip(*rows, strict=True)) if rows else [() for _ in names]
                arrays = []
                for i, column in enumerate(values):
                    if types[i] is None:
                        types[i] = infer_from_values(column)
                    arrays.append(self._array(column, types[i], names[i], start))
                batch = pa.RecordBatch.from_arrays(arrays, names=names)
                if cursor_index is not None:
                    self.note_cursor_max(
                        max((v for v in values[cursor_index] if v is not None), default=None)
                    )
                yield with_origin(batch, self.source, ordinal_rows(start, batch.num_rows))
                start += batch.num_rows

    def _array(
        self, values: tuple[Any, ...], arrow_type: pa.DataType | None, name: str, start: int
    ) -> pa.Array:
        assert arrow_type is not None
        try:
            return to_array(values, arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError) as exc:
            raise ConnectorError(
                f"{self.source}: column {name}: rows {start}-{start + len(values) - 1} do not fit "
                f"{arrow_type}: {exc}"
            ) from None
