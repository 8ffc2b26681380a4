"""Helpers shared by the connectors: the ``_source``/``_row`` columns and batch slicing."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from connectors.base import ROW_COLUMN, SOURCE_COLUMN


def with_origin(batch: pa.RecordBatch, source: str, rows: Any) -> pa.RecordBatch:
    """Append the ``_source`` (string) and ``_row`` (int64) columns to ``batch``.

    ``rows`` is anything ``pa.array`` turns into int64 (a numpy array, a list, an Arrow array).
    """
    n = batch.num_rows
    row_array = rows if isinstance(rows, pa.Array) else pa.array(rows, type=pa.int64())
    arrays = [*batch.columns, pa.repeat(pa.scalar(source, pa.string()), n), row_array.cast(pa.int64())]
    names = [*batch.schema.names, SOURCE_COLUMN, ROW_COLUMN]
    return pa.RecordBatch.from_arrays(arrays, names=names)


def ordinal_rows(start: int, n: int) -> pa.Array:
    """Row numbers ``start, start + 1, ...`` as an int64 array of length ``n``."""
    import numpy as np

    return pa.array(np.arange(start, start + n, dtype=np.int64))


def slice_batches(batch: pa.RecordBatch, size: int) -> Iterator[pa.RecordBatch]:
    """Split ``batch`` into slices of at most ``size`` rows."""
    if batch.num_rows <= size:
        yield batch
        return
    for offset in range(0, batch.num_rows, size):
        yield batch.slice(offset, size)


def strings_batch(columns: Sequence[str], rows: Sequence[Sequence[str | None]]) -> pa.RecordBatch:
    """A record batch of string columns from row tuples (shorter rows are padded with nulls)."""
    width = len(columns)
    cols: list[list[str | None]] = [[] for _ in range(width)]
    for row in rows:
        for i in range(width):
            cols[i].append(row[i] if i < len(row) else None)
    return pa.RecordBatch.from_arrays([pa.array(c, type=pa.string()) for c in cols], names=list(columns))
