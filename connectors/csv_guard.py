"""Record boundaries of a CSV file before pyarrow parses it: unclosed quotes and oversized rows.

pyarrow reads quoted values over several lines (an address typed with Alt+Enter), so one
stray quote makes it read on to the next quote: the rest of the file became one published
value, or one ragged reject, or (when later rows quote their values) fields shifted into
their neighbours. The guard follows the quoting line by line, as pyarrow does (a quote opens
a quoted value only at the start of a field, ``""`` inside is a quote, text after the closing
quote belongs to the field), and decides where a record really ends:

* a quoted value that is still open at the end of its line is held; when a following line
  is a complete row of its own (the header's number of fields, quotes balanced), or the file
  ends, or the value grows past :data:`MAX_ROW_BYTES`, the quote was never meant to span
  lines: the opening line is one ``read`` reject (``unclosed quote in column k``) and the
  lines after it are read as the rows they are;
* a row longer than :data:`MAX_ROW_BYTES` is one reject (pyarrow's block is that large, so
  every row that passes fits in it).

A rejected line is replaced by an empty line, so pyarrow's rows keep their line numbers (empty
rows are dropped after parsing). Files without quotes pass through untouched (one ``in`` test
per chunk).
"""

from __future__ import annotations

import re
from collections import deque

from connectors.base import Reject

#: the longest row a CSV file may have (also pyarrow's block size, plus headroom)
MAX_ROW_BYTES = 16_000_000
_QUOTE = 0x22
# a quoted value that opens at a field start and closes on its line before a comma or the
# line end (one linear pass)
_CLOSED_QUOTED = re.compile(rb'(?m)"(?<![^,\n]")[^"\n]*(?:""[^"\n]*)*"(?=,|\r?$)')


def quotes_closed(data: bytes) -> bool:
    """True when every quote in ``data`` belongs to a quoted value closed on its own line
    (the common case, checked at C speed: then no line can leave a value open)."""
    return b'"' not in _CLOSED_QUOTED.sub(b"", data)


def scan(line: bytes, in_quote: bool) -> tuple[bool, int, int]:
    """Follow the quoting of one line: (still inside a quoted value at its end, the 0-based
    field where the last quoted value opened, the number of fields it ends with)."""
    i, n, fieldno, opened = 0, len(line), 0, 0
    while True:
        if in_quote or (i < n and line[i] == _QUOTE):
            if not in_quote:
                i += 1
                opened = fieldno
            in_quote = False
            while True:
                j = line.find(b'"', i)
                if j < 0:
                    return True, opened, fieldno + 1
                if j + 1 < n and line[j + 1] == _QUOTE:
                    i = j + 2
                    continue
                i = j + 1
                break
        k = line.find(b",", i)
        if k < 0:
            return False, opened, fieldno + 1
        i = k + 1
        fieldno += 1


class QuoteGuard:
    """Feeds whole UTF-8 lines through, holding a multi-line record until it is known good."""

    def __init__(
        self, *, name: str, header: list[str], first_line: int, rejects: list[Reject], max_row_bytes: int
    ) -> None:
        self.name = name
        self.header = header
        self.width = len(header)
        self.line = first_line
        self.rejects = rejects
        self.max_row = max_row_bytes
        self._held: list[tuple[int, bytes]] = []
        self._opened = 0
        self._held_bytes = 0

    def feed(self, data: bytes) -> bytes:
        """Guard a chunk of whole lines; returns what pyarrow may parse now."""
        if not self._held and len(data) <= self.max_row and (b'"' not in data or quotes_closed(data)):
            self.line += data.count(b"\n")
            return data
        lines = data.split(b"\n")
        lines.pop()
        out: list[bytes] = []
        todo = deque((self.line + k, line) for k, line in enumerate(lines))
        self.line += len(lines)
        self._run(todo, out)
        return b"".join(x + b"\n" for x in out)

    def finish(self) -> bytes:
        """The end of the file: a value still open there had an unclosed quote."""
        out: list[bytes] = []
        while self._held:
            todo = deque(self._release("the file ends inside it", out))
            self._run(todo, out)
        return b"".join(x + b"\n" for x in out)

    def _run(self, todo: deque[tuple[int, bytes]], out: list[bytes]) -> None:
        while todo:
            n, line = todo.popleft()
            if self._held:
                if self._is_row(line):
                    todo.appendleft((n, line))
                    todo.extendleft(reversed(self._release(f"line {n} is a row of its own", out)))
                    continue
                self._held.append((n, line))
                self._held_bytes += len(line) + 1
                still_open, _, _ = scan(line, True)
                if not still_open:
                    out.extend(x for _, x in self._held)
                    self._held = []
                elif self._held_bytes > self.max_row:
                    todo.extendleft(
                        reversed(self._release(f"the value runs past {self.max_row / 1e6:.0f} MB", out))
                    )
                continue
            if len(line) > self.max_row:
                self.rejects.append(
                    Reject(
                        self.name,
                        n,
                        None,
                        line[:200].decode("utf-8", errors="replace"),
                        f"line {n}: the row is {len(line) / 1e6:.1f} MB, over the "
                        f"{self.max_row / 1e6:.0f} MB a row may take",
                    )
                )
                out.append(b"")
                continue
            if _QUOTE not in line or quotes_closed(line):
                out.append(line)
                continue
            still_open, opened, _ = scan(line, False)
            if not still_open:
                out.append(line)
                continue
            self._held, self._opened, self._held_bytes = [(n, line)], opened, len(line) + 1

    def _release(self, why: str, out: list[bytes]) -> list[tuple[int, bytes]]:
        """Reject the held record's first line as an unclosed quote; return the other lines."""
        (n, line), rest = self._held[0], self._held[1:]
        k = self._opened + 1
        column = f"column {k} ({self.header[k - 1]})" if k <= self.width else f"column {k}"
        self.rejects.append(
            Reject(
                self.name,
                n,
                None,
                line[:200].decode("utf-8", errors="replace").rstrip("\r"),
                f"line {n}: unclosed quote in {column}: {why}; close the quote, or double it "
                'inside a quoted value ("")',
            )
        )
        out.append(b"")
        self._held, self._held_bytes = [], 0
        return rest

    def _is_row(self, line: bytes) -> bool:
        """Whether a line is a complete row of its own: the header's fields, quotes closed."""
        text = line.rstrip(b"\r")
        if not text:
            return False
        still_open, _, fields = scan(text, False)
        if still_open or fields < self.width:
            return False
        return fields == self.width or text.endswith(b"," * (fields - self.width))
