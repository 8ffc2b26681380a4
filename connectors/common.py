"""Helpers shared by the connectors: the ``_source``/``_row`` columns and batch slicing."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Iterator, Sequence
from queue import Full, Queue
from typing import Any, TypeVar

import pyarrow as pa

from connectors.base import ROW_COLUMN, SOURCE_COLUMN, ConnectorError

#: the bind parameter of an incremental query's lower bound (the stored watermark)
WATERMARK_PARAM = "sharehub_watermark"

T = TypeVar("T")


def lower_bound(watermark: Any, lookback: dt.timedelta | None) -> Any:
    """The incremental start ``watermark - lookback`` (an ISO string watermark is parsed first).

    The start is closed (rows *at* the watermark are read again; the lake upserts on the key)."""
    if lookback is None:
        return watermark
    value = watermark
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ConnectorError(f"lookback needs a date/time watermark, got {watermark!r}") from None
    if not isinstance(value, dt.date):
        raise ConnectorError(f"lookback needs a date/time watermark, got {watermark!r}")
    return value - lookback


_END = object()


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


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def read_ahead(items: Iterable[T], depth: int = 1, *, name: str = "read-ahead") -> Iterator[T]:
    """Yield ``items`` while a thread produces up to ``depth`` of the next ones.

    For producers that wait outside the GIL (a socket, Parquet decoding): the caller works on
    one item while the next is fetched. An exception in the producer is raised in the consumer;
    a consumer that stops early stops the producer (and closes it, if it is a generator)."""
    queue: Queue[Any] = Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Raised(exc))
        finally:
            close = getattr(items, "close", None)
            if callable(close):
                close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = queue.get()
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join()
