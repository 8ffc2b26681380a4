"""A text file's lines decoded to UTF-8, a chunk of whole lines at a time.

A line that does not decode is replaced by an empty line (so every later line keeps its
number) and reported as a ``read`` reject naming the line, the byte and the encoding; the rest
of the file goes on. UTF-16 and UTF-32 files are decoded with an incremental decoder (their
line feed is two or four bytes); the other encodings never use 0x0A inside a character, so
they are cut at line feeds and decoded whole lines at a time.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from typing import BinaryIO

from connectors.base import ConnectorError, Reject
from connectors.encoding import UTF8_BOM, WIDE_CODECS, Encoding

CHUNK = 1 << 20


class Utf8Lines:
    """UTF-8 chunks of whole lines (each ending in a line feed) of ``raw`` after ``head``."""

    def __init__(
        self, raw: BinaryIO, *, name: str, encoding: Encoding, head: bytes, rejects: list[Reject]
    ) -> None:
        self._raw = raw
        self._name = name
        self._enc = encoding
        self._head = head
        self._rejects = rejects
        self.line = 1  # number of the next line to come
        codec = encoding.codec
        self._codec = "utf-8" if codec in ("utf-8", "utf-8-sig") else codec

    def chunks(self) -> Iterator[bytes]:
        """Decoded chunks of whole lines."""
        if self._codec in WIDE_CODECS:
            yield from self._wide()
            return
        pending = self._head
        first = True
        eof = False
        while not eof:
            chunk = self._raw.read(CHUNK)
            if not chunk:
                eof = True
                data, pending = pending, b""
            else:
                data = pending + chunk
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    pending = data
                    continue
                data, pending = data[:cut], data[cut:]
            if first:
                first = False
                if data.startswith(UTF8_BOM) and self._codec == "utf-8":
                    data = data[len(UTF8_BOM) :]
            if not data:
                continue
            if not data.endswith(b"\n"):
                data += b"\n"
            out = self._decode(data)
            self.line += data.count(b"\n")
            yield out

    def _decode(self, data: bytes) -> bytes:
        try:
            text = data.decode(self._codec)
        except UnicodeDecodeError:
            return self._decode_lines(data)
        return data if self._codec == "utf-8" else text.encode("utf-8")

    def _decode_lines(self, data: bytes) -> bytes:
        out = []
        lines = data.split(b"\n")
        lines.pop()  # data ends with a line feed
        how = "detected" if self._enc.detected else "declared"
        for n, line in enumerate(lines, start=self.line):
            try:
                out.append(line.decode(self._codec).encode("utf-8"))
            except UnicodeDecodeError as exc:
                column = len(line[: exc.start].decode(self._codec, errors="replace")) + 1
                self._rejects.append(
                    Reject(
                        self._name,
                        n,
                        None,
                        line.decode(self._codec, errors="replace")[:200],
                        f"line {n}: not valid {self._enc.label} ({how} encoding): cannot decode byte "
                        f"0x{line[exc.start]:02x} at character {column}",
                    )
                )
                out.append(b"")
        return b"\n".join(out) + b"\n"

    def _wide(self) -> Iterator[bytes]:
        decoder = codecs.getincrementaldecoder(self._codec)()
        pending = ""
        data = self._head
        first = True
        while True:
            eof = not data
            try:
                text = pending + decoder.decode(data, final=eof)
            except UnicodeDecodeError:
                line = self.line + pending.count("\n")
                raise ConnectorError(
                    f"{self._name}: near line {line}: not valid {self._enc.label} "
                    f"({'detected' if self._enc.detected else 'declared'} encoding)"
                ) from None
            if first and text:
                first = False
                text = text.removeprefix("\ufeff")
            cut = len(text) if eof else text.rfind("\n") + 1
            if cut:
                piece, pending = text[:cut], text[cut:]
                if not piece.endswith("\n"):
                    piece += "\n"
                self.line += piece.count("\n")
                yield piece.encode("utf-8")
            else:
                pending = text
            if eof:
                return
            data = self._raw.read(CHUNK)


class ChunkStream(io.RawIOBase):
    """A read-only byte stream over an iterator of byte chunks (what pyarrow's reader pulls)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._buf = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while self._pos >= len(self._buf):
            nxt = next(self._chunks, None)
            if nxt is None:
                return 0
            self._buf, self._pos = nxt, 0
        n = min(len(buffer), len(self._buf) - self._pos)
        buffer[:n] = self._buf[self._pos : self._pos + n]
        self._pos += n
        return n
