"""JSON lines: one object per line, values kept as strings (nested values as JSON text)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

import pyarrow as pa

from connectors.base import Reject
from connectors.common import strings_batch, with_origin
from connectors.encoding import choose_encoding
from connectors.headers import MISSING_COLUMN, FileRefused, match_columns
from connectors.text_lines import Utf8Lines


def value_text(value: Any) -> str | None:
    """A JSON value as text: strings as they are, ``null`` as None, anything else as JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


class RecordColumns:
    """The keys of JSON objects as columns: matched to declared fields as headers are.

    Columns are the keys in order of first appearance (a later batch may carry more columns
    than an earlier one); with ``columns`` (declared field -> source name) a key is matched to
    a field as a header is (``headers.header_key``); an undeclared key that collides gets a
    ``_<n>`` suffix. Used by JSON lines files and the ``http`` connector's records.
    """

    def __init__(self, columns: Mapping[str, str] | None, *, name: str) -> None:
        self.columns = columns
        self.name = name
        self.keys: dict[str, str] = {}  # source key -> output name
        self.taken: dict[str, str] = {}  # field -> source key

    def output(self, key: str) -> str:
        """The column a source key goes to (decided at its first appearance)."""
        if key not in self.keys:
            free = {t: s for t, s in (self.columns or {}).items() if t not in self.taken}
            plan = match_columns([key], free, file=self.name)
            out = plan.names[0]
            if out in self.taken or out in self.keys.values():
                out = f"{key}_{len(self.keys) + 1}"
            elif self.columns and out in self.columns:
                self.taken[out] = key
            self.keys[key] = out
        return self.keys[key]

    def row(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """One object with its keys renamed to their columns."""
        return {self.output(str(k)): v for k, v in obj.items()}

    def batch(self, rows: list[dict[str, Any]], numbers: list[int]) -> pa.RecordBatch:
        """String columns (:func:`value_text`) of every column seen so far, with ``_source``/``_row``."""
        names = list(dict.fromkeys(self.keys.values()))
        values = [[value_text(obj.get(k)) for k in names] for obj in rows]
        return with_origin(strings_batch(names, values), self.name, numbers)

    def missing(self, where: str) -> list[Reject]:
        """A ``missing_column`` reject per declared column no object had (``where``: "lines")."""
        undeclared = [k for k, v in self.keys.items() if not self.columns or v not in self.columns]
        return [
            Reject(
                self.name,
                0,
                target,
                None,
                f"{self.name}: declared column {source} (field {target}) is in none of the {where}; "
                f"columns not declared: {', '.join(undeclared) or 'none'}",
                rule=MISSING_COLUMN,
            )
            for target, source in (self.columns or {}).items()
            if target not in self.taken
        ]


def _lines(decoded: Utf8Lines) -> Iterator[tuple[int, str]]:
    """Numbered lines (split on line feeds only, like the line numbers an editor shows)."""
    number = 0
    for chunk in decoded.chunks():
        parts = chunk.split(b"\n")
        parts.pop()
        for part in parts:
            number += 1
            yield number, part.decode("utf-8")


def read_jsonl(
    stream: BinaryIO,
    *,
    name: str,
    encoding: str | None,
    rejects: list[Reject],
    batch_size: int,
    columns: Mapping[str, str] | None = None,
    notes: dict[str, Any] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream a JSON-lines file as string batches with ``_source``/``_row`` (its line numbers).

    A line that is not a JSON object (or not valid in the file's encoding) is a reject; blank
    lines are skipped. Columns are the keys in order of first appearance (a later batch may
    carry more columns than an earlier one); with ``columns`` (declared field -> source name)
    keys are matched to fields as headers are (``headers.header_key``), and declared keys that
    no line has are reported in ``notes["missing"]``. The encoding is the declared one or
    detected (``encoding``).
    """
    notes = {} if notes is None else notes
    head = stream.read(1 << 20)
    if not head:
        raise FileRefused(f"{name}: file is empty")
    enc = choose_encoding(head, name=name, declared=encoding, complete=len(head) < 1 << 20)
    notes["encoding"] = "utf-8" if enc.codec == "utf-8-sig" else enc.codec
    decoded = Utf8Lines(stream, name=name, encoding=enc, head=head, rejects=rejects)
    record_columns = RecordColumns(columns, name=name)
    buffered: list[dict[str, Any]] = []
    numbers: list[int] = []

    for number, line in _lines(decoded):
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
        buffered.append(record_columns.row(obj))
        numbers.append(number)
        if len(buffered) >= batch_size:
            yield record_columns.batch(buffered, numbers)
            buffered, numbers = [], []
    if buffered:
        yield record_columns.batch(buffered, numbers)
    notes["missing"] = record_columns.missing("lines")
