"""Arrow types for SQL results: from SQLAlchemy column types, PostgreSQL type OIDs, or values."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

MAX_DECIMAL_PRECISION = 38

# PostgreSQL type OIDs the COPY fast path parses (anything else falls back to the generic path)
PG_BOOL = 16
PG_INTS = (20, 21, 23)
PG_FLOATS = (700, 701)
PG_NUMERIC = 1700
PG_TEXTS = (19, 25, 1042, 1043)
PG_UUID = 2950
PG_DATE = 1082
PG_TIMESTAMP = 1114
PG_TIMESTAMPTZ = 1184


def decimal_type(precision: int | None, scale: int | None) -> pa.DataType:
    """decimal128(p, s) for a declared precision; string when unconstrained or wider than 38."""
    if precision is None or precision < 1 or precision > MAX_DECIMAL_PRECISION:
        return pa.string()
    return pa.decimal128(precision, scale or 0)


def from_sqlalchemy(sa_type: sa.types.TypeEngine[Any]) -> pa.DataType | None:
    """The Arrow type for a (reflected) SQLAlchemy column type, or None when values decide."""
    if isinstance(sa_type, sa.Boolean):
        return pa.bool_()
    if isinstance(sa_type, sa.Integer):
        return pa.int64()
    if isinstance(sa_type, sa.Float):
        return pa.float64()
    if isinstance(sa_type, sa.Numeric):
        if not sa_type.asdecimal:
            return pa.float64()
        return decimal_type(sa_type.precision, sa_type.scale)
    if isinstance(sa_type, sa.DateTime):
        return pa.timestamp("us", tz="UTC" if sa_type.timezone else None)
    if isinstance(sa_type, sa.Date):
        return pa.date32()
    if isinstance(sa_type, sa.String | sa.Uuid):
        return pa.string()
    return None


def from_pg_oid(oid: int, precision: int | None, scale: int | None) -> pa.DataType | None:
    """The Arrow type for a PostgreSQL result column (psycopg's cursor.description), or None."""
    if oid == PG_BOOL:
        return pa.bool_()
    if oid in PG_INTS:
        return pa.int64()
    if oid in PG_FLOATS:
        return pa.float64()
    if oid == PG_NUMERIC:
        return decimal_type(precision, scale)
    if oid in PG_TEXTS or oid == PG_UUID:
        return pa.string()
    if oid == PG_DATE:
        return pa.date32()
    if oid == PG_TIMESTAMP:
        return pa.timestamp("us")
    if oid == PG_TIMESTAMPTZ:
        return pa.timestamp("us", tz="UTC")
    return None


def infer_from_values(values: Sequence[Any]) -> pa.DataType:
    """The Arrow type for a column of Python values; an all-null column is string."""
    kinds: set[type] = set()
    max_scale = 0
    aware = False
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool):
            kinds.add(bool)
        elif isinstance(v, int):
            kinds.add(int)
        elif isinstance(v, float):
            kinds.add(float)
        elif isinstance(v, Decimal):
            kinds.add(Decimal)
            exponent = v.as_tuple().exponent
            if isinstance(exponent, int):
                max_scale = max(max_scale, -exponent)
        elif isinstance(v, dt.datetime):
            kinds.add(dt.datetime)
            aware = aware or v.tzinfo is not None
        elif isinstance(v, dt.date):
            kinds.add(dt.date)
        elif isinstance(v, bytes | bytearray | memoryview):
            kinds.add(bytes)
        else:
            kinds.add(str)
    if not kinds or kinds == {str}:
        return pa.string()
    if kinds == {bool}:
        return pa.bool_()
    if kinds == {int}:
        return pa.int64()
    if kinds <= {int, float}:
        return pa.float64()
    if kinds <= {int, Decimal}:
        return pa.decimal128(MAX_DECIMAL_PRECISION, min(max_scale, MAX_DECIMAL_PRECISION))
    if kinds == {dt.datetime}:
        return pa.timestamp("us", tz="UTC" if aware else None)
    if kinds == {dt.date}:
        return pa.date32()
    if kinds == {bytes}:
        return pa.binary()
    return pa.string()


def text_of(value: Any) -> str | None:
    """A value as text for a string column (decimals in plain notation, JSON for dict/list)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_array(values: Sequence[Any], arrow_type: pa.DataType) -> pa.Array:
    """An Arrow array of ``arrow_type`` from Python values (raises ArrowInvalid/TypeError if unfit)."""
    if pa.types.is_string(arrow_type):
        return pa.array([text_of(v) for v in values], type=arrow_type)
    try:
        return pa.array(values, type=arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return pa.array(values).cast(arrow_type)
