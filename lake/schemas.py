"""Arrow <-> Iceberg type handling.

Iceberg (format v2) stores timestamps in microseconds, UTC for zoned ones; pyiceberg reads strings
back as ``large_string``. The pipeline declares plain Arrow schemas, so the declared schema is kept
as a table property and reads are cast back to it.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from lake.errors import LakeError

_UTC = "UTC"
T = TypeVar("T", pa.Table, pa.RecordBatch)


def storage_type(t: pa.DataType) -> pa.DataType:
    """The Arrow type written to Iceberg for a declared Arrow type."""
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", _UTC if t.tz is not None else None)
    if pa.types.is_time(t):
        return pa.time64("us")
    if pa.types.is_date64(t):
        return pa.date32()
    if pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_dictionary(t):
        return storage_type(t.value_type)
    if pa.types.is_null(t):
        raise LakeError("a column of Arrow type null has no Iceberg type; declare its real type")
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.list_(storage_field(t.value_field))
    if pa.types.is_struct(t):
        return pa.struct([storage_field(t.field(i)) for i in range(t.num_fields)])
    if pa.types.is_map(t):
        return pa.map_(storage_type(t.key_type), storage_field(t.item_field))
    return t


def storage_field(f: pa.Field, *, required: bool = False) -> pa.Field:
    return pa.field(f.name, storage_type(f.type), nullable=f.nullable and not required)


def storage_schema(declared: pa.Schema, key: Sequence[str] = ()) -> pa.Schema:
    """The Iceberg-compatible Arrow schema for ``declared``; key columns become required."""
    missing = [k for k in key if k not in declared.names]
    if missing:
        raise LakeError(f"key column(s) {missing} are not in the schema {declared.names}")
    if len(set(declared.names)) != len(declared.names):
        raise LakeError(f"duplicate column names in schema {declared.names}")
    return pa.schema([storage_field(f, required=f.name in key) for f in declared])


def encode_schema(schema: pa.Schema) -> str:
    return base64.b64encode(schema.remove_metadata().serialize().to_pybytes()).decode("ascii")


def decode_schema(text: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def merge_declared(old: pa.Schema | None, new: pa.Schema) -> pa.Schema:
    """New declared fields first, then old ones it no longer declares (Iceberg never drops them here)."""
    if old is None:
        return new
    return pa.schema(list(new) + [f for f in old if f.name not in new.names])


def _cast(col: pa.Array | pa.ChunkedArray, target: pa.DataType, name: str) -> pa.Array | pa.ChunkedArray:
    if col.type == target:
        return col
    opts = pc.CastOptions(target, allow_time_truncate=True)
    try:
        return pc.cast(col, options=opts)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise LakeError(f"column '{name}': cannot convert {col.type} to {target}: {exc}") from exc


def fit_to_table(data: T, target: pa.Schema) -> T:
    """Select, order and cast ``data`` to the table's write schema; absent optional columns are null."""
    extra = [n for n in data.schema.names if n not in target.names]
    if extra:
        raise LakeError(
            f"schema conflict: column(s) {extra} are not in the table (declare them with ensure_table first)"
        )
    arrays = []
    for field in target:
        if field.name in data.schema.names:
            col = _cast(data.column(field.name), field.type, field.name)
            if not field.nullable and col.null_count:
                raise LakeError(f"key column '{field.name}' has {col.null_count} null value(s)")
        elif field.nullable:
            col = pa.nulls(data.num_rows, field.type)
        else:
            raise LakeError(f"required column '{field.name}' is missing from the data")
        arrays.append(col)
    if isinstance(data, pa.Table):
        return pa.Table.from_arrays(arrays, schema=target)
    return pa.RecordBatch.from_arrays(arrays, schema=target)


def restore(data: T, declared: pa.Schema | None) -> T:
    """Cast what Iceberg gave back to the declared Arrow types (columns not declared stay as read)."""
    if declared is None:
        return data
    fields, arrays = [], []
    for field, col in zip(data.schema, data.columns, strict=True):
        if field.name in declared.names:
            want = declared.field(field.name)
            col = _cast(col, want.type, field.name)
            field = pa.field(
                field.name, want.type, nullable=want.nullable or col.null_count > 0, metadata=want.metadata
            )
        else:
            field = field.remove_metadata()
        fields.append(field)
        arrays.append(col)
    schema = pa.schema(fields)
    if isinstance(data, pa.Table):
        return pa.Table.from_arrays(arrays, schema=schema)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
