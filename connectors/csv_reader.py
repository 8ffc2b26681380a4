"""CSV files: encoding detection, streaming transcoding to UTF-8, and pyarrow's streaming reader.

Every column is read as a string (``conform`` casts them). Rows are numbered by their
physical line (the header is line 1), also when quoted values span several lines; ragged
rows become rejects and the rest of the file goes on.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from connectors.base import ConnectorError, Reject
from connectors.common import slice_batches, with_origin

UTF8_BOM = codecs.BOM_UTF8
#: how much of a file is sampled to detect its encoding
DETECT_BYTES = 1 << 20
_CHUNK = 1 << 20
# GBK and GB2312 are subsets of GB18030: decoding with the superset accepts every drop.
_SUPERSETS = {"gbk": "gb18030", "gb2312": "gb18030", "hz": "hz"}


def normalise_encoding(encoding: str) -> str:
    """The Python codec name for a declared encoding (GBK/GB2312 widened to GB18030)."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise ConnectorError(f"unknown encoding {encoding!r}") from None
    return _SUPERSETS.get(name, name)


def detect_encoding(head: bytes) -> str:
    """Detect UTF-8 with BOM, UTF-8 or GB18030 from the first bytes of a file.

    The sample may end inside a multi-byte character; that is not held against it.
    Falls back to UTF-8 when the sample fits neither (decoding then reports the line).
    """
    if head.startswith(UTF8_BOM):
        return "utf-8-sig"
    for candidate in ("utf-8", "gb18030"):
        decoder = codecs.getincrementaldecoder(candidate)()
        try:
            decoder.decode(head, final=False)
        except UnicodeDecodeError:
            continue
        return candidate
    return "utf-8"


class DecodingStream(io.RawIOBase):
    """A read-only byte stream that decodes ``raw`` from ``encoding`` and yields UTF-8.

    Decoding goes whole lines at a time (a line feed byte never occurs inside a character in
    UTF-8 or GB18030), so a decoding error is reported with its line number. Memory is
    bounded by the chunk size plus the longest line.
    """

    def __init__(self, raw: BinaryIO, *, name: str, encoding: str, detected: bool, prefix: bytes = b""):
        super().__init__()
        self._raw = raw
        self._name = name
        self._detected = detected
        self._pending = prefix
        self._out = bytearray()
        self._eof = False
        self._line = 1
        self._first = True
        self.encoding = encoding
        # a declared UTF-8 file may still start with a BOM: drop it rather than keep U+FEFF
        self._codec = "utf-8" if encoding in ("utf-8", "utf-8-sig") else encoding

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        """Decode one more chunk into the output buffer; False at the end of the input."""
        while not self._eof:
            chunk = self._raw.read(_CHUNK)
            data = self._pending + chunk
            if not chunk:
                self._eof = True
                complete, self._pending = data, b""
            else:
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    self._pending = data
                    continue
                complete, self._pending = data[:cut], data[cut:]
            if self._first:
                self._first = False
                if complete.startswith(UTF8_BOM) and self._codec == "utf-8":
                    complete = complete[len(UTF8_BOM) :]
            if not complete:
                continue
            self._out += self._decode(complete)
            self._line += complete.count(b"\n")
            return True
        return False

    def _decode(self, data: bytes) -> bytes:
        try:
            text = data.decode(self._codec)
        except UnicodeDecodeError as exc:
            line = self._line + data[: exc.start].count(b"\n")
            how = "detected" if self._detected else "declared"
            raise ConnectorError(
                f"{self._name}: line {line}: not valid {self.encoding} ({how} encoding): "
                f"cannot decode byte 0x{data[exc.start]:02x}"
            ) from None
        if self._codec == "utf-8":
            return data  # validated; already UTF-8
        return text.encode("utf-8")

    def first_line(self) -> bytes:
        """The first line (without consuming it), or b"" for an empty stream."""
        while b"\n" not in self._out and self._fill():
            pass
        end = self._out.find(b"\n")
        return bytes(self._out if end < 0 else self._out[:end])

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._out and self._fill():
            pass
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        del self._out[:n]
        return n


@dataclass
class _RawReject:
    record: int
    text: str
    expected: int
    actual: int


class _LineNumbers:
    """Turns pyarrow's record numbers into physical line numbers and emits ragged-row rejects.

    pyarrow's invalid-row handler gives the record number (header = 1) of a skipped row and may
    run ahead of the batches; rows are numbered when their batch arrives.
    """

    def __init__(self, name: str, rejects: list[Reject], header_lines: int):
        self.name = name
        self.rejects = rejects
        self.pending: list[_RawReject] = []
        self.next_record = 2
        self.next_line = 1 + header_lines

    def handler(self, row: pa_csv.InvalidRow) -> str:
        self.pending.append(_RawReject(row.number, row.text, row.expected_columns, row.actual_columns))
        return "skip"

    def _emit_due(self, final: bool = False) -> None:
        while self.pending and (final or self.pending[0].record <= self.next_record):
            raw = self.pending.pop(0)
            line = self.next_line
            self.rejects.append(
                Reject(
                    self.name,
                    line,
                    None,
                    raw.text,
                    f"line {line}: expected {raw.expected} fields, found {raw.actual}",
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


def read_csv(
    stream: BinaryIO,
    *,
    name: str,
    encoding: str | None,
    rejects: list[Reject],
    batch_size: int,
) -> Iterator[pa.RecordBatch]:
    """Stream a CSV file as string batches with ``_source``/``_row`` columns.

    Raises ConnectorError when the file is empty or not valid in its declared/detected
    encoding; ragged rows are appended to ``rejects``.
    """
    head = stream.read(DETECT_BYTES)
    if not head:
        raise ConnectorError(f"{name}: file is empty")
    if encoding is None:
        codec, detected = detect_encoding(head), True
    else:
        codec, detected = normalise_encoding(encoding), False
    decoded = DecodingStream(stream, name=name, encoding=codec, detected=detected, prefix=head)
    header_text = decoded.first_line().decode("utf-8").rstrip("\r")
    if not header_text.strip():
        raise ConnectorError(f"{name}: line 1: the header row is empty")
    header = next(csv.reader([header_text]))
    lines = _LineNumbers(name, rejects, header_lines=1)
    try:
        reader = pa_csv.open_csv(
            io.BufferedReader(decoded, buffer_size=_CHUNK),
            read_options=pa_csv.ReadOptions(use_threads=False, block_size=_CHUNK),
            parse_options=pa_csv.ParseOptions(
                newlines_in_values=True, ignore_empty_lines=False, invalid_row_handler=lines.handler
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
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
            yield from slice_batches(out, batch_size)
    except pa.ArrowInvalid as exc:
        raise ConnectorError(f"{name}: line {lines.next_line}: {exc}") from None
    lines.finish()
