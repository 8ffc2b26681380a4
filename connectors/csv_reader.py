"""CSV files: encoding, header row, record boundaries, then pyarrow's streaming reader.

The bytes are decoded to UTF-8 a chunk of whole lines at a time (``text_lines``: the declared
encoding or one the bytes prove, ``encoding``), the header row is found among the first lines
and mapped to the declared fields (``headers``), the quoting is followed line by line so a
stray quote cannot swallow or shift the rows after it (``csv_guard``), and pyarrow parses the
rest. Every column is read as a string (``conform`` casts them). Rows are numbered by their
physical line (the header is line 1 unless title lines precede it), also when quoted values
span several lines; ragged rows become rejects and the rest of the file goes on. A trailing
comma after the last field (WPS exports) is not a ragged row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from connectors.base import Reject
from connectors.common import slice_batches, strings_batch, with_origin
from connectors.csv_guard import MAX_ROW_BYTES, QuoteGuard
from connectors.encoding import choose_encoding, normalise_encoding
from connectors.headers import MAX_HEADER_ROWS, FileRefused, plan_header
from connectors.text_lines import ChunkStream, Utf8Lines

__all__ = ["DETECT_BYTES", "normalise_encoding", "read_csv"]

#: how much of a file is sampled to detect its encoding
DETECT_BYTES = 1 << 20
#: pyarrow's block: every row the guard lets through fits in one
BLOCK_BYTES = 1 << 24
#: data lines after the header looked at to see whether rows end in a trailing comma
_SAMPLE_LINES = 50


#: pyarrow's number of the first data record (the header line the reader writes is record 1)
FIRST_RECORD = 2


@dataclass
class _RawReject:
    record: int
    text: str
    expected: int
    actual: int


class _LineNumbers:
    """Turns pyarrow's record numbers into physical line numbers; handles rows pyarrow skips.

    pyarrow's invalid-row handler gives the record number of a skipped row and may run ahead of
    the batches; rows are numbered when their batch arrives. A skipped row whose extra fields
    are all empty (a trailing comma), or that lacks only unnamed trailing columns, is kept:
    it comes out in ``recovered``; any other is a ragged-row reject.
    """

    def __init__(self, name: str, rejects: list[Reject], header_lines: int, named: int, width: int):
        self.name = name
        self.rejects = rejects
        self.pending: list[_RawReject] = []
        self.next_record = FIRST_RECORD
        self.next_line = 1 + header_lines
        self.named = named
        self.width = width
        self.recovered: list[tuple[int, list[str]]] = []

    def handler(self, row: pa_csv.InvalidRow) -> str:
        self.pending.append(_RawReject(row.number, row.text, row.expected_columns, row.actual_columns))
        return "skip"

    def _emit_due(self, final: bool = False) -> None:
        while self.pending and (final or self.pending[0].record <= self.next_record):
            raw = self.pending.pop(0)
            line = self.next_line
            try:
                values = next(csv.reader(io.StringIO(raw.text)), [])
            except csv.Error:
                values = []
            if self.named <= len(values) < self.width or (
                len(values) > self.width and not any(v.strip() for v in values[self.width :])
            ):
                self.recovered.append((line, (values + [""] * self.width)[: self.width]))
            else:
                self.rejects.append(
                    Reject(
                        self.name,
                        line,
                        None,
                        raw.text,
                        f"line {line}: expected {self.named} fields, found {len(values) or raw.actual}",
                    )
                )
            self.next_line += 1 + raw.text.count("\n")
            self.next_record += 1

    def number(self, spans: pa.Array) -> pa.Array:
        """Line numbers for the next ``len(spans)`` rows; ``spans`` = lines each row occupies."""
        import numpy as np

        span = np.asarray(spans.to_numpy(zero_copy_only=False), dtype=np.int64)
        out = np.empty(len(span), dtype=np.int64)
        i = 0
        while i < len(span):
            self._emit_due()
            seg = len(span) - i
            if self.pending:
                seg = min(seg, self.pending[0].record - self.next_record)
            part = span[i : i + seg]
            ends = np.cumsum(part)
            out[i : i + seg] = self.next_line + ends - part
            self.next_line += int(ends[-1])
            self.next_record += seg
            i += seg
        return pa.array(out)

    def finish(self) -> None:
        self._emit_due(final=True)

    def take_recovered(self, names: list[str]) -> pa.RecordBatch | None:
        """The recovered rows so far as one batch (with ``_source``/``_row``), or None."""
        if not self.recovered:
            return None
        rows, self.recovered = self.recovered, []
        return with_origin(strings_batch(names, [v for _, v in rows]), self.name, [n for n, _ in rows])


def _row_spans(batch: pa.RecordBatch) -> pa.Array:
    """How many physical lines each row occupies (1 + line feeds inside its quoted values)."""
    spans = pa.repeat(pa.scalar(1, pa.int64()), batch.num_rows)
    for column in batch.columns:
        counts = pc.fill_null(pc.count_substring(column, "\n"), 0)
        spans = pc.add(spans, pc.cast(counts, pa.int64()))
    return spans


def _all_empty(batch: pa.RecordBatch) -> pa.Array:
    mask = None
    for column in batch.columns:
        empty = pc.equal(column, "")
        mask = empty if mask is None else pc.and_(mask, empty)
    assert mask is not None
    return mask


def _first_lines(chunks: Iterator[bytes], want: int) -> tuple[list[bytes], bytes]:
    """The first ``want`` lines (without line feeds) and the rest of the chunk they end in."""
    buffered = b""
    for chunk in chunks:
        buffered += chunk
        if buffered.count(b"\n") >= want:
            break
    lines = buffered.split(b"\n", want)
    rest = lines.pop() if len(lines) > want else b""
    if lines and lines[-1] == b"" and not rest:
        lines.pop()
    return lines, rest


def _parse_line(line: bytes) -> list[str]:
    """One line's fields (Python's csv module, which refuses fields over 128 KB: then none)."""
    try:
        return next(csv.reader([line.decode("utf-8").rstrip("\r")]), [])
    except csv.Error:
        return []


def _trailing_columns(lines: list[bytes], named: int) -> int:
    """How many empty fields most sampled data rows carry after the header's (trailing commas)."""
    extra = []
    for line in lines:
        values = _parse_line(line)
        if len(values) > named and not any(v.strip() for v in values[named:]):
            extra.append(len(values) - named)
        elif values:
            extra.append(0)
    if not extra:
        return 0
    common = max(set(extra), key=extra.count)
    return common if extra.count(common) * 2 > len(extra) else 0


def _drop_empty(batch: pa.RecordBatch, unnamed: list[str]) -> pa.RecordBatch:
    """Drop unnamed trailing columns that hold nothing (values there go to ``_extra``)."""
    for name in unnamed:
        column = batch.column(name)
        if not pc.any(pc.not_equal(column, "")).as_py():
            batch = batch.drop_columns([name])
    return batch


def read_csv(
    stream: BinaryIO,
    *,
    name: str,
    encoding: str | None,
    rejects: list[Reject],
    batch_size: int,
    columns: Mapping[str, str] | None = None,
    notes: dict[str, Any] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream a CSV file as string batches with ``_source``/``_row`` columns.

    ``columns`` maps declared fields to their source names: the header is searched for among
    the first lines and matched columns are named by their field; ``notes`` receives the
    encoding, the header line and the missing declared columns (``missing``: rejects). Raises
    :class:`FileRefused` (before any batch) when the file is empty, its encoding cannot be told,
    or its header cannot be found; bad lines and ragged rows are appended to ``rejects``.
    """
    notes = {} if notes is None else notes
    head = stream.read(DETECT_BYTES)
    if not head:
        raise FileRefused(f"{name}: file is empty")
    enc = choose_encoding(head, name=name, declared=encoding, complete=len(head) < DETECT_BYTES)
    notes["encoding"] = "utf-8" if enc.codec == "utf-8-sig" else enc.codec
    decoded = Utf8Lines(stream, name=name, encoding=enc, head=head, rejects=rejects)
    chunks = decoded.chunks()
    first, rest = _first_lines(chunks, MAX_HEADER_ROWS + _SAMPLE_LINES)
    top = first[:MAX_HEADER_ROWS]
    plan = plan_header([_parse_line(x) for x in top], columns, file=name)
    notes["header_line"] = plan.line
    notes["missing"] = plan.findings(name)
    named = len(plan.names)
    trailing = _trailing_columns(first[plan.line : plan.line + _SAMPLE_LINES], named)
    unnamed = [f"column_{named + k + 1}" for k in range(trailing)]
    names = plan.names + unnamed
    guard = QuoteGuard(
        name=name, header=plan.source, first_line=plan.line + 1, rejects=rejects, max_row_bytes=MAX_ROW_BYTES
    )
    after = b"".join(x + b"\n" for x in first[plan.line :]) + rest

    def guarded() -> Iterator[bytes]:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(names)  # pyarrow numbers records only after a header
        yield out.getvalue().encode("utf-8")
        yield guard.feed(after)
        for chunk in chunks:
            yield guard.feed(chunk)
        yield guard.finish()

    lines = _LineNumbers(name, rejects, header_lines=plan.line, named=named, width=len(names))
    try:
        reader = pa_csv.open_csv(
            io.BufferedReader(ChunkStream(guarded()), buffer_size=1 << 20),
            read_options=pa_csv.ReadOptions(use_threads=False, block_size=BLOCK_BYTES),
            parse_options=pa_csv.ParseOptions(
                newlines_in_values=True, ignore_empty_lines=False, invalid_row_handler=lines.handler
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        for batch in reader:
            if batch.num_rows == 0:
                continue
            rows = lines.number(_row_spans(batch))
            keep = pc.invert(_all_empty(batch))  # blank lines carry no data
            out = with_origin(batch, name, rows).filter(keep)
            yield from slice_batches(_drop_empty(out, unnamed), batch_size)
            recovered = lines.take_recovered(names)
            if recovered is not None:
                yield _drop_empty(recovered, unnamed)
    except pa.ArrowInvalid as exc:
        raise FileRefused(f"{name}: line {lines.next_line}: {exc}") from None
    lines.finish()
    recovered = lines.take_recovered(names)
    if recovered is not None:
        yield _drop_empty(recovered, unnamed)
