"""JSON lines: one object per line, values kept as strings (nested values as JSON text)."""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from typing import Any, BinaryIO

import pyarrow as pa

from connectors.base import ConnectorError, Reject
from connectors.common import strings_batch, with_origin
from connectors.csv_reader import normalise_encoding


def value_text(value: Any) -> str | None:
    """A JSON value as text: strings as they are, ``null`` as None, anything else as JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _lines(stream: BinaryIO, name: str, encoding: str) -> Iterator[tuple[int, str]]:
    """Numbered lines (split on line feeds only, like the line numbers an editor shows)."""
    codec = normalise_encoding(encoding)
    if codec == "utf-8-sig":
        codec = "utf-8"
    pending = b""
    number = 0

    def decode(raw: bytes) -> str:
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            raise ConnectorError(f"{name}: line {number}: not valid {codec}") from None

    while chunk := stream.read(1 << 20):
        parts = (pending + chunk).split(b"\n")
        pending = parts.pop()
        for part in parts:
            number += 1
            yield number, decode(part)
    if pending:
        number += 1
        yield number, decode(pending)


def read_jsonl(
    stream: BinaryIO,
    *,
    name: str,
    encoding: str | None,
    rejects: list[Reject],
    batch_size: int,
) -> Iterator[pa.RecordBatch]:
    """Stream a JSON-lines file as string batches with ``_source``/``_row`` (its line numbers).

    A line that is not a JSON object is a reject; blank lines are skipped. Columns are the keys
    in order of first appearance (a later batch may carry more columns than an earlier one).
    """
    columns: dict[str, None] = {}
    buffered: list[dict[str, Any]] = []
    numbers: list[int] = []

    def flush() -> pa.RecordBatch:
        names = list(columns)
        rows = [[value_text(obj.get(k)) for k in names] for obj in buffered]
        return with_origin(strings_batch(names, rows), name, numbers)

    for number, line in _lines(stream, name, encoding or "utf-8"):
        text = line.strip()
        if not text:
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            rejects.append(Reject(name, number, None, text[:200], f"line {number}: invalid JSON: {exc.msg}"))
            continue
        if not isinstance(obj, dict):
            rejects.append(Reject(name, number, None, text[:200], f"line {number}: not a JSON object"))
            continue
        for key in obj:
            columns.setdefault(str(key), None)
        buffered.append({str(k): v for k, v in obj.items()})
        numbers.append(number)
        if len(buffered) >= batch_size:
            yield flush()
            buffered, numbers = [], []
    if buffered:
        yield flush()
