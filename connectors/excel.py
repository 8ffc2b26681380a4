"""xlsx workbooks through openpyxl's read-only mode: the first row is the header."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, BinaryIO

import pyarrow as pa

from connectors.base import ConnectorError, Reject
from connectors.common import strings_batch, with_origin


def cell_text(value: Any) -> str | None:
    """A cell value as text: dates/datetimes as ISO strings (a midnight datetime as a date)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, dt.timedelta):
        return str(value)
    return str(value)


def read_xlsx(
    stream: BinaryIO,
    *,
    name: str,
    sheet: str | None,
    rejects: list[Reject],
    batch_size: int,
) -> Iterator[pa.RecordBatch]:
    """Stream one sheet (``sheet`` or the first) as string batches with ``_source``/``_row``.

    Fully empty rows are skipped; a row with values beyond the header's width is a reject.
    """
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = openpyxl.load_workbook(stream, read_only=True, data_only=True)
    except (InvalidFileException, OSError, KeyError, ValueError) as exc:
        raise ConnectorError(f"{name}: not a readable xlsx workbook: {exc}") from None
    try:
        if sheet is None:
            worksheet = workbook.worksheets[0]
        elif sheet in workbook.sheetnames:
            worksheet = workbook[sheet]
        else:
            raise ConnectorError(
                f"{name}: no sheet named {sheet!r} (sheets: {', '.join(workbook.sheetnames)})"
            )
        worksheet.reset_dimensions()  # type: ignore[union-attr]
        rows = worksheet.iter_rows(values_only=True)
        header_row = next(rows, None)
        if header_row is None or all(v is None for v in header_row):
            raise ConnectorError(f"{name}: sheet {worksheet.title!r}: row 1: the header row is empty")
        header = [cell_text(v) or f"column_{i + 1}" for i, v in enumerate(header_row)]
        while header and header_row[len(header) - 1] is None:
            header.pop()  # trailing empty header cells
        width = len(header)
        buffered: list[list[str | None]] = []
        numbers: list[int] = []
        for number, row in enumerate(rows, start=2):
            values = [cell_text(v) for v in row]
            if all(v is None for v in values):
                continue
            extra = [v for v in values[width:] if v is not None]
            if extra:
                found = width + len(values[width:]) - _trailing_nones(values[width:])
                rejects.append(
                    Reject(
                        name,
                        number,
                        None,
                        ",".join(v or "" for v in values),
                        f"row {number}: expected {width} fields, found {found}",
                    )
                )
                continue
            buffered.append(values[:width])
            numbers.append(number)
            if len(buffered) >= batch_size:
                yield with_origin(strings_batch(header, buffered), name, numbers)
                buffered, numbers = [], []
        if buffered:
            yield with_origin(strings_batch(header, buffered), name, numbers)
    finally:
        workbook.close()


def _trailing_nones(values: list[str | None]) -> int:
    n = 0
    for v in reversed(values):
        if v is not None:
            break
        n += 1
    return n
