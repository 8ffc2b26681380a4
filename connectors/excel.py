"""xlsx workbooks (Excel, WPS) through python-calamine (Rust), openpyxl for two rare cases.

calamine reads a sheet about ten times faster than openpyxl's read-only mode and gives the same
cell values (dates, times, durations, booleans, a formula's cached value), except that it keeps
every number as a double and cannot give a formula's text. So a workbook whose sheets hold a
formula without a cached value (its ``formula`` reject quotes the formula) or an integer of
16 or more digits stored as a number (a double cannot hold it exactly: an 18-digit citizen ID)
is read by openpyxl, as before; a byte scan of the sheets' XML finds them first.

Row numbers count from the sheet's first row whatever calamine skips: python-calamine 0.9's
``iter_rows`` starts at row 1 but at the first used column (its issue #177), which is checked
on the first row so that a library that changes either way still numbers rows right.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import zipfile
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any, BinaryIO

import pyarrow as pa

from connectors.base import Reject
from connectors.common import strings_batch, with_origin
from connectors.headers import MAX_HEADER_ROWS, FileRefused, HeaderPlan, plan_header

_FORMULA_TAG = re.compile(rb"<(?:\w+:)?f[\s>/]")
# a formula cell up to its end, and a cached value inside it
_FORMULA_CELL = re.compile(rb"<(?:\w+:)?f[\s>/].*?</(?:\w+:)?c>", re.DOTALL)
_CACHED_VALUE = re.compile(rb"<(?:\w+:)?v>[^<]")
# an integer of 16+ digits (>= 1e15: printed in exponent form, or inexact, as a double)
_LONG_INTEGER = re.compile(rb"<(?:\w+:)?v>-?[0-9]{16,}</")
_SCAN_TAIL = 4096


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


def _has_formulas(workbook: Any, worksheet: Any) -> bool:
    """Whether the sheet's XML holds any formula (cheap byte scan; True when it cannot tell)."""
    archive = getattr(workbook, "_archive", None)
    path = getattr(worksheet, "_worksheet_path", None)
    if archive is None or path is None:
        return True
    tail = b""
    with archive.open(path) as xml:
        while chunk := xml.read(1 << 20):
            if _FORMULA_TAG.search(tail + chunk):
                return True
            tail = chunk[-16:]
    return False


def _pick_sheet(
    workbook: Any, *, name: str, sheet: str | None, columns: Mapping[str, str] | None
) -> tuple[Any, HeaderPlan, list[tuple[Any, ...]], Iterator[tuple[Any, ...]]]:
    """The sheet to read, its header, the rows read to find it and the iterator of the rest.

    A declared ``sheet`` is read whatever its state; otherwise the first visible sheet whose
    first rows hold a header naming a declared column (hidden sheets are templates' settings)."""
    if sheet is not None:
        if sheet not in workbook.sheetnames:
            raise FileRefused(f"{name}: no sheet named {sheet!r} (sheets: {', '.join(workbook.sheetnames)})")
        candidates = [workbook[sheet]]
    else:
        candidates = [ws for ws in workbook.worksheets if ws.sheet_state == "visible"]
        if not candidates:
            raise FileRefused(f"{name}: every sheet is hidden (sheets: {', '.join(workbook.sheetnames)})")
    refusals: list[FileRefused] = []
    for worksheet in candidates:
        worksheet.reset_dimensions()
        rows = worksheet.iter_rows(values_only=True)
        top = list(itertools.islice(rows, MAX_HEADER_ROWS))
        texts = [[cell_text(v) for v in row] for row in top]
        try:
            plan = plan_header(texts, columns, file=name, unit="row")
        except FileRefused as exc:
            refusals.append(exc)
            continue
        return worksheet, plan, top, rows
    hidden = [ws.title for ws in workbook.worksheets if ws.sheet_state != "visible"]
    if len(refusals) == 1 and not hidden:
        raise refusals[0]
    shown = "; ".join(f"sheet {ws.title!r}: {exc}" for ws, exc in zip(candidates, refusals, strict=True))
    note = f"; hidden sheets not read: {', '.join(hidden)} (declare source.sheet)" if hidden else ""
    raise FileRefused(f"{name}: no visible sheet has a header naming a declared column ({shown}){note}")


def _read_openpyxl(
    stream: BinaryIO,
    *,
    name: str,
    sheet: str | None,
    rejects: list[Reject],
    batch_size: int,
    columns: Mapping[str, str] | None = None,
    notes: dict[str, Any] | None = None,
) -> Iterator[pa.RecordBatch]:
    """:func:`read_xlsx` through openpyxl (formula texts, integers beyond a double)."""
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    notes = {} if notes is None else notes
    try:
        workbook = openpyxl.load_workbook(stream, read_only=True, data_only=True)
    except (InvalidFileException, OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise FileRefused(f"{name}: not a readable xlsx workbook: {exc}") from None
    formulas_book = None
    try:
        worksheet, plan, top, rest = _pick_sheet(workbook, name=name, sheet=sheet, columns=columns)
        notes.update(sheet=worksheet.title, header_line=plan.line, missing=plan.findings(name, unit="row"))
        header = plan.names
        width = len(header)
        formulas: Iterator[tuple[Any, ...]] | None = None
        if _has_formulas(workbook, worksheet):
            stream.seek(0)
            formulas_book = openpyxl.load_workbook(stream, read_only=True, data_only=False)
            fsheet = formulas_book[worksheet.title]
            fsheet.reset_dimensions()
            formulas = fsheet.iter_rows(values_only=True)
            for _ in range(plan.line):
                next(formulas, None)
        buffered: list[list[str | None]] = []
        numbers: list[int] = []
        data_rows = itertools.chain(top[plan.line :], rest)
        for number, row in enumerate(data_rows, start=plan.line + 1):
            formula_row = next(formulas, None) if formulas is not None else None
            values = [cell_text(v) for v in row]
            if formula_row is not None:
                for j, (value, formula) in enumerate(zip(row, formula_row, strict=False)):
                    if value is None and isinstance(formula, str) and formula.startswith("=") and j < width:
                        rejects.append(
                            Reject(
                                name,
                                number,
                                header[j],
                                formula,
                                f"formula {formula} has no cached value (the workbook was saved without "
                                "calculating it: open and save it in Excel or WPS)",
                                rule="formula",
                            )
                        )
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
        if formulas_book is not None:
            formulas_book.close()


def _trailing_nones(values: list[str | None]) -> int:
    n = 0
    for v in reversed(values):
        if v is not None:
            break
        n += 1
    return n


def _needs_openpyxl(stream: BinaryIO) -> bool:
    """Whether a worksheet holds a formula without a cached value or a 16+ digit integer.

    A byte scan of each worksheet's XML (no parse); True when the archive cannot be scanned,
    so openpyxl reports what is wrong with it."""
    try:
        with zipfile.ZipFile(stream) as archive:
            for info in archive.infolist():
                if not (info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml")):
                    continue
                with archive.open(info) as xml:
                    tail = b""
                    while chunk := xml.read(1 << 20):
                        text = tail + chunk
                        if _LONG_INTEGER.search(text):
                            return True
                        if _FORMULA_TAG.search(text):
                            for cell in _FORMULA_CELL.finditer(text):
                                if not _CACHED_VALUE.search(cell.group()):
                                    return True
                        tail = text[-_SCAN_TAIL:]
    except (zipfile.BadZipFile, OSError, KeyError, ValueError):
        return True
    finally:
        stream.seek(0)
    return False


def _sheet_rows(sheet: Any) -> Iterator[list[Any]]:
    """A calamine sheet's rows from row 1 and column A (``None`` for an empty cell)."""
    start, end = sheet.start, sheet.end
    if start is None or end is None:
        return
    first_row, first_col = start
    rows = sheet.iter_rows()
    first = next(rows, None)
    if first is None:
        return
    # rows begin at column A, or at the first used column (then pad them)
    pad = [None] * first_col if len(first) == end[1] - first_col + 1 else []
    # rows begin at row 1 (leading empty rows included), or at the first used row
    if first_row and any(v != "" for v in first):
        for _ in range(first_row):
            yield []
    for row in itertools.chain([first], rows):
        yield [*pad, *(None if v == "" else v for v in row)]


def _pick_calamine_sheet(
    workbook: Any, *, name: str, sheet: str | None, columns: Mapping[str, str] | None
) -> tuple[str, HeaderPlan, list[list[Any]], Iterator[list[Any]]]:
    """As :func:`_pick_sheet`, for a calamine workbook: (sheet name, header, top rows, the rest)."""
    from python_calamine import SheetTypeEnum, SheetVisibleEnum

    names = list(workbook.sheet_names)
    if sheet is not None:
        if sheet not in names:
            raise FileRefused(f"{name}: no sheet named {sheet!r} (sheets: {', '.join(names)})")
        candidates = [sheet]
        hidden: list[str] = []
    else:
        sheets = [m for m in workbook.sheets_metadata if m.typ == SheetTypeEnum.WorkSheet]
        candidates = [m.name for m in sheets if m.visible == SheetVisibleEnum.Visible]
        hidden = [m.name for m in sheets if m.visible != SheetVisibleEnum.Visible]
        if not candidates:
            raise FileRefused(f"{name}: every sheet is hidden (sheets: {', '.join(names)})")
    refusals: list[FileRefused] = []
    for title in candidates:
        rows = _sheet_rows(workbook.get_sheet_by_name(title))
        top = list(itertools.islice(rows, MAX_HEADER_ROWS))
        texts = [[cell_text(v) for v in row] for row in top]
        try:
            plan = plan_header(texts, columns, file=name, unit="row")
        except FileRefused as exc:
            refusals.append(exc)
            continue
        return title, plan, top, rows
    if len(refusals) == 1 and not hidden:
        raise refusals[0]
    shown = "; ".join(f"sheet {t!r}: {exc}" for t, exc in zip(candidates, refusals, strict=True))
    note = f"; hidden sheets not read: {', '.join(hidden)} (declare source.sheet)" if hidden else ""
    raise FileRefused(f"{name}: no visible sheet has a header naming a declared column ({shown}){note}")


def read_xlsx(
    stream: BinaryIO,
    *,
    name: str,
    sheet: str | None,
    rejects: list[Reject],
    batch_size: int,
    columns: Mapping[str, str] | None = None,
    notes: dict[str, Any] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream one sheet as string batches with ``_source``/``_row`` (sheet row numbers).

    The sheet is ``sheet``, or the first visible one holding the declared header; the header
    row is searched for (title rows, two-row headers, see ``headers``). Fully empty rows are
    skipped; a row with values beyond the header's width is a reject; a formula cell without a
    cached value (a workbook saved by a program that never calculated it) is a ``formula``
    reject on its field. Raises :class:`FileRefused` (before any batch) when the file is not a
    workbook or no sheet has the header.
    """
    kwargs: dict[str, Any] = dict(
        name=name, sheet=sheet, rejects=rejects, batch_size=batch_size, columns=columns, notes=notes
    )
    if _needs_openpyxl(stream):
        yield from _read_openpyxl(stream, **kwargs)
        return
    from python_calamine import CalamineError, CalamineWorkbook

    notes = {} if notes is None else notes
    try:
        workbook = CalamineWorkbook.from_filelike(stream)
    except (CalamineError, OSError, ValueError) as exc:
        raise FileRefused(f"{name}: not a readable xlsx workbook: {exc}") from None
    try:
        title, plan, top, rest = _pick_calamine_sheet(workbook, name=name, sheet=sheet, columns=columns)
        notes.update(sheet=title, header_line=plan.line, missing=plan.findings(name, unit="row"))
        header = plan.names
        width = len(header)
        buffered: list[list[str | None]] = []
        numbers: list[int] = []
        for number, row in enumerate(itertools.chain(top[plan.line :], rest), start=plan.line + 1):
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
                        ",".join(v or "" for v in values[:found]),
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
