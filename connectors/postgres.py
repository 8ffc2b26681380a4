"""PostgreSQL bulk path: the query read as Arrow record batches through ADBC.

The ADBC PostgreSQL driver (``adbc_driver_postgresql``) runs ``COPY (query) TO STDOUT (FORMAT
binary)`` and decodes the binary rows into Arrow in C; the batches stream (~16 MB each), so
memory stays bounded whatever the table's size. Column types are described before the read
(``adbc_execute_schema``: a prepare, nothing executed) and converted to what the generic path
gives (int2/int4 -> int64, ``numeric(p,s)`` -> decimal128, unconstrained numeric -> text,
uuid -> text, real -> float64 through its shortest text), so the Arrow data equals the generic
path's. Queries with a column type not handled here fall back to the generic path.

A constrained ``numeric(p,s)`` column with ``p <= 18`` is read as its unscaled value,
``(x * 10^s)::int8``, and viewed as ``decimal128`` in Arrow: exact (``|x| * 10^s < 10^p``), and it
spares the driver's per-value numeric-to-text formatting and our text-to-decimal parse (together
a quarter of the client's CPU on the B12 table). A ``NaN`` stored in such a column fails the
read, as it did when the text ``NaN`` failed the decimal cast.

The watermark is a bind parameter, but not of the read itself: the driver buffers a whole
result set in memory when the query has bound parameters (it cannot use COPY then). The value
is bound to ``set_config`` on the same session and the read compares the cursor with
``CAST(current_setting(...) AS <type>)``: the query text holds no value and still streams.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from connectors.arrow_types import from_pg_oid
from connectors.base import ConnectorError
from connectors.common import WATERMARK_PARAM, ordinal_rows, read_ahead, slice_batches, with_origin

if TYPE_CHECKING:
    from adbc_driver_manager import dbapi

    from connectors.sql import Plan, SqlConnector

#: the session setting that carries the watermark from its bind parameter into the read
WATERMARK_SETTING = "sharehub.watermark"
#: bytes of binary COPY output the driver decodes into one record batch
_BATCH_BYTES = 16 << 20

# the driver's POSTGRESQL:type names of the types read here, as the OIDs arrow_types knows
_OIDS = {
    "bool": 16,
    "int8": 20,
    "int2": 21,
    "int4": 23,
    "float4": 700,
    "float8": 701,
    "numeric": 1700,
    "name": 19,
    "text": 25,
    "bpchar": 1042,
    "varchar": 1043,
    "uuid": 2950,
    "date": 1082,
    "timestamp": 1114,
    "timestamptz": 1184,
}
_BYTEA = "bytea"
#: widest numeric(p,s) read as its unscaled int8 (10^18 < 2^63)
_SCALED_MAX_PRECISION = 18
# the driver prints numeric NaN and infinities as C does; the generic path gives Decimal's text
_NUMERIC_WORDS = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}

Convert = Callable[[pa.Array], pa.Array]


@dataclass
class ReadLayout:
    """What the bulk read needs: the query text, the watermark setting, the columns' conversions."""

    query: str
    watermark: tuple[str, str] | None  # (text bound to set_config, the SQL type it is cast to)
    names: list[str]
    converts: list[Convert]


def adbc_uri(engine: sa.Engine) -> str:
    """The libpq URI of ``engine``'s database (UTF-8 client encoding unless the URL says otherwise)."""
    url = engine.url.set(drivername="postgresql")
    if "client_encoding" not in url.query:
        url = url.update_query_dict({"client_encoding": "UTF8"})
    return url.render_as_string(hide_password=False)


def connect(engine: sa.Engine) -> dbapi.Connection:
    """An autocommit ADBC connection to ``engine``'s database."""
    import adbc_driver_postgresql.dbapi

    conn: dbapi.Connection = adbc_driver_postgresql.dbapi.connect(adbc_uri(engine), autocommit=True)
    return conn


def _watermark_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _watermark_sql_type(value: Any, column_type: pa.DataType | None) -> str | None:
    """The SQL type the watermark text is cast to: the bound value's own type, as a literal of it
    would have (an aware datetime is timestamptz, a naive one timestamp); a string takes the
    cursor column's type (as an untyped literal would). None when neither says."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double precision"
    if isinstance(value, Decimal):
        return "numeric"
    if isinstance(value, dt.datetime):
        return "timestamptz" if value.tzinfo is not None else "timestamp"
    if isinstance(value, dt.date):
        return "date"
    if not isinstance(value, str) or column_type is None:
        return None
    if isinstance(column_type, pa.BaseExtensionType):
        return "numeric" if getattr(column_type, "type_name", None) == "numeric" else None
    if isinstance(column_type, pa.TimestampType):
        return "timestamptz" if column_type.tz is not None else "timestamp"
    if pa.types.is_date32(column_type):
        return "date"
    if pa.types.is_integer(column_type):
        return "bigint"
    if pa.types.is_floating(column_type):
        return "double precision"
    if pa.types.is_boolean(column_type):
        return "boolean"
    if pa.types.is_string(column_type):
        return "text"
    return None


def _numeric_precision_scale(field: pa.Field) -> tuple[int | None, int | None]:
    typmod = int((field.metadata or {}).get(b"POSTGRESQL:typmod", b"-1"))
    if typmod < 4:
        return None, None
    return ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF


def _uuid_text(array: pa.Array) -> pa.Array:
    """16-byte UUIDs as their canonical 36-character text (vectorised)."""
    import numpy as np

    storage = array.storage if isinstance(array, pa.ExtensionArray) else array
    n = len(storage)
    raw = np.frombuffer(storage.buffers()[1], dtype=np.uint8)[storage.offset * 16 : (storage.offset + n) * 16]
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    pairs = raw.reshape(n, 16)
    hexed = np.empty((n, 32), dtype=np.uint8)
    hexed[:, 0::2] = digits[pairs >> 4]
    hexed[:, 1::2] = digits[pairs & 15]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    # 8-4-4-4-12 hex digits: where each group starts in the hex digits and in the text
    for first, at, size in ((0, 0, 8), (8, 9, 4), (12, 14, 4), (16, 19, 4), (20, 24, 12)):
        text[:, at : at + size] = hexed[:, first : first + size]
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    validity = storage.buffers()[0] if storage.null_count else None
    if validity is not None and storage.offset:
        validity = pc.is_valid(storage).buffers()[1]
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text.tobytes()), validity)


def _numeric_text(array: pa.Array) -> pa.Array:
    text = array.storage if isinstance(array, pa.ExtensionArray) else array
    words = pc.is_in(text, value_set=pa.array(list(_NUMERIC_WORDS)))
    if not pc.any(words).as_py():
        return text
    for word, name in _NUMERIC_WORDS.items():
        text = pc.if_else(pc.equal(text, word), pa.scalar(name), text)
    return text


def _scaled_decimal(scale: int, target: pa.DataType) -> Convert:
    """An int8 of unscaled values (``x * 10^scale``) as ``target``: viewed as decimal128(19, scale)
    (the same 16-byte layout as an int64 cast to decimal128(19, 0)), then cast, which checks the
    declared precision."""
    wide = pa.decimal128(19, scale)
    return lambda a: a.cast(pa.decimal128(19, 0)).view(wide).cast(target)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _converter(field: pa.Field, target: pa.DataType) -> Convert | None:
    """How a column as the driver gives it becomes ``target`` (None: not a type read here)."""
    typname = (field.metadata or {}).get(b"POSTGRESQL:type", b"").decode()
    if typname == _BYTEA:
        return (lambda a: a.cast(target)) if field.type == target or pa.types.is_binary(target) else None
    if typname not in _OIDS:
        return None
    if typname == "numeric":  # text from the driver: to decimal128(p, s), or kept as text
        return lambda a: _numeric_text(a).cast(target)
    if typname == "uuid":
        return lambda a: _uuid_text(a).cast(target)
    if typname == "float4":
        # the generic path (and COPY's text) give the float's shortest text read as a double
        return lambda a: a.cast(pa.string()).cast(target)
    if field.type == target:
        return lambda a: a
    return lambda a: a.cast(target)


def _query_text(engine: sa.Engine, plan: Plan) -> tuple[str, bool] | None:
    """The compiled SELECT with the watermark placeholder as ``$1``; None when it cannot be sent."""
    if engine.dialect.paramstyle != "pyformat":
        return None
    compiled = plan.statement.compile(dialect=engine.dialect)
    if set(compiled.params) - {WATERMARK_PARAM}:
        return None
    pieces = str(compiled).split(f"%({WATERMARK_PARAM})s")
    # the compiled text escapes "%" for pyformat
    return "$1".join(p.replace("%%", "%") for p in pieces), len(pieces) > 1


def bulk_supported(engine: sa.Engine, plan: Plan) -> ReadLayout | None:
    """The bulk read of ``plan``, or None when the generic path must read it."""
    try:
        from adbc_driver_manager import dbapi
    except ImportError:
        return None
    compiled = _query_text(engine, plan)
    if compiled is None:
        return None
    text, has_watermark = compiled
    try:
        with connect(engine) as conn, conn.cursor() as cur:
            schema = cur.adbc_execute_schema(text)
            param_schema = cur.adbc_prepare(text) if has_watermark else None
    except dbapi.Error:
        return None  # let the generic path report it through SQLAlchemy
    names = list(schema.names)
    if len(set(names)) != len(names):
        return None
    converts: list[Convert] = []
    scaled: dict[str, int] = {}  # numeric(p,s) columns read as their unscaled int8
    for field in schema:
        typname = (field.metadata or {}).get(b"POSTGRESQL:type", b"").decode()
        precision, scale = _numeric_precision_scale(field) if typname == "numeric" else (None, None)
        natural = pa.binary() if typname == _BYTEA else from_pg_oid(_OIDS.get(typname, -1), precision, scale)
        if natural is None:
            return None
        target = plan.column_types.get(field.name) or natural
        convert: Convert | None
        if (
            precision is not None
            and scale is not None
            and 0 <= scale <= precision <= _SCALED_MAX_PRECISION
            and pa.types.is_decimal(target)
        ):
            scaled[field.name] = scale
            convert = _scaled_decimal(scale, target)
        else:
            convert = _converter(field, target)
        if convert is None:
            return None
        converts.append(convert)
    if scaled:
        select = ", ".join(
            f"(scaled.{_quote(n)} * 1{'0' * scaled[n]})::int8 AS {_quote(n)}"
            if n in scaled
            else f"scaled.{_quote(n)}"
            for n in names
        )
        text = f"SELECT {select} FROM ({text}) AS scaled"
    watermark = None
    if has_watermark:
        value = plan.params[WATERMARK_PARAM]
        column_type = param_schema.field(0).type if param_schema is not None and len(param_schema) else None
        sql_type = _watermark_sql_type(value, column_type)
        if sql_type is None:
            return None
        watermark = (_watermark_text(value), sql_type)
        text = text.replace("$1", f"CAST(current_setting('{WATERMARK_SETTING}') AS {sql_type})")
    return ReadLayout(text, watermark, names, converts)


def _batches(cur: Any, layout: ReadLayout) -> Iterator[pa.RecordBatch]:
    if layout.watermark is not None:
        cur.execute("SELECT set_config($1, $2, false)", parameters=(WATERMARK_SETTING, layout.watermark[0]))
        cur.fetchall()
    cur.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(_BATCH_BYTES)})
    cur.execute(layout.query)
    reader = cur.fetch_record_batch()
    try:
        yield from reader
    finally:
        reader.close()


def bulk_batches(
    connector: SqlConnector, engine: sa.Engine, plan: Plan, layout: ReadLayout
) -> Iterator[pa.RecordBatch]:
    """Stream the read as batches typed like the generic path's, with ``_source`` and ``_row``."""
    from adbc_driver_manager import dbapi

    cursor_index = layout.names.index(connector.cursor) if connector.cursor in layout.names else None
    start = 1
    try:
        with connect(engine) as conn, conn.cursor() as cur:
            # the driver decodes the next batch (GIL released) while the caller works on this one
            for raw in read_ahead(_batches(cur, layout), depth=2, name="adbc-reader"):
                arrays = [convert(raw.column(i)) for i, convert in enumerate(layout.converts)]
                batch = pa.RecordBatch.from_arrays(arrays, names=layout.names)
                for part in slice_batches(batch, connector.batch_size):
                    if cursor_index is not None:
                        connector.note_cursor_max(pc.max(part.column(cursor_index)).as_py())
                    yield with_origin(part, connector.source, ordinal_rows(start, part.num_rows))
                    start += part.num_rows
    except (dbapi.Error, OSError) as exc:  # pyarrow raises the stream's server errors as OSError
        raise ConnectorError(f"{connector.source}: bulk read failed: {exc}") from None
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ConnectorError(f"{connector.source}: bulk read near row {start}: {exc}") from None
