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
    keys: dict[str, str] = {}  # source key -> output name
    taken: dict[str, str] = {}  # field -> source key
    buffered: list[dict[str, Any]] = []
    numbers: list[int] = []

    def output(key: str) -> str:
        if key not in keys:
            free = {t: s for t, s in (columns or {}).items() if t not in taken}
            plan = match_columns([key], free, file=name)
            out = plan.names[0]
            if out in taken or out in keys.values():
                out = f"{key}_{len(keys) + 1}"
            elif columns and out in columns:
                taken[out] = key
            keys[key] = out
        return keys[key]

    def flush() -> pa.RecordBatch:
        names = list(dict.fromkeys(keys.values()))
        rows = [[value_text(obj.get(k)) for k in names] for obj in buffered]
        return with_origin(strings_batch(names, rows), name, numbers)

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
        buffered.append({output(str(k)): v for k, v in obj.items()})
        numbers.append(number)
        if len(buffered) >= batch_size:
            yield flush()
            buffered, numbers = [], []
    if buffered:
        yield flush()
    undeclared = [k for k, v in keys.items() if not columns or v not in columns]
    notes["missing"] = [
        Reject(
            name,
            0,
            target,
            None,
            f"{name}: declared column {source} (field {target}) is in none of the lines; "
            f"columns not declared: {', '.join(undeclared) or 'none'}",
            rule=MISSING_COLUMN,
        )
        for target, source in (columns or {}).items()
        if target not in taken
    ]
