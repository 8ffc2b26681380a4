"""The backup folder's format: ``manifest.json``, table files, checksums, the value codec.

A backup is a folder::

    manifest.json          what the backup holds (written last: no manifest, no backup)
    db/<table>.jsonl       one table: a header line, then one JSON array per row
    lake/<path>            a local warehouse's files, by their path under the warehouse
    keys/<file>            the private keys folder, only with ``--include-keys``

Every file is listed in the manifest with its size and SHA-256; a restore checks them all
before it writes anything. Values are JSON: datetimes as ISO 8601 (aware ones in UTC, naive
ones as they are), dates ISO, decimals as strings, bytes base64; the target column's type
decides how a value is read back.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa

from catalog.values import json_value

FORMAT = "sharehub-backup/1"
MANIFEST = "manifest.json"
DB_DIR, LAKE_DIR, KEYS_DIR = "db", "lake", "keys"
_CHUNK = 1 << 20


class BackupError(RuntimeError):
    """A backup cannot be taken or restored; the message says which file, table or check and why."""


# ---- files and checksums -----------------------------------------------------------------


class HashingWriter:
    """A binary file that counts and hashes what is written to it."""

    def __init__(self, path: Path) -> None:
        private_dir(path.parent)
        self.path = path
        self._f: BinaryIO = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
        self._h = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._f.write(data)
        self._h.update(data)
        self.size += len(data)

    def close(self) -> dict[str, Any]:
        """Flush to disk; the file's ``size`` and ``sha256``."""
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        return {"size": self.size, "sha256": self._h.hexdigest()}


def private_dir(path: Path) -> None:
    """Create ``path`` (and parents) readable by the owner only: a backup holds personal data."""
    target, missing = path, []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        folder.chmod(0o700)  # whatever the umask
    target.chmod(0o700)


def copy_private(src: Path, dst: Path) -> dict[str, Any]:
    """Copy ``src`` to a new owner-only file ``dst``, flushed to disk; its size and SHA-256."""
    out = HashingWriter(dst)
    with src.open("rb") as f:
        while chunk := f.read(_CHUNK):
            out.write(chunk)
    return out.close()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_digest(path: Path) -> dict[str, Any]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return {"size": size, "sha256": h.hexdigest()}


def check_file(root: Path, rel: str, want: dict[str, Any]) -> None:
    """Raise :class:`BackupError` unless ``root/rel`` has the listed size and SHA-256."""
    path = root / rel
    if not path.is_file():
        raise BackupError(f"{rel}: missing from the backup at {root}")
    got = file_digest(path)
    if got["size"] != want["size"]:
        raise BackupError(
            f"{rel}: {got['size']} bytes, the manifest says {want['size']} "
            "(the file was truncated or changed)"
        )
    if got["sha256"] != want["sha256"]:
        raise BackupError(f"{rel}: SHA-256 differs from the manifest (the file was changed)")


def safe_relative(rel: str) -> str:
    """``rel`` when it is a plain relative path inside the backup (never ``..`` or absolute)."""
    parts = Path(rel).parts
    if not rel or Path(rel).is_absolute() or ".." in parts or "\\" in rel:
        raise BackupError(f"unsafe path in the manifest: {rel!r}")
    return rel


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` atomically (a crash leaves no manifest, so no usable backup)."""
    tmp = root / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
    with tmp.open("rb") as f:
        os.fsync(f.fileno())
    tmp.chmod(0o600)
    tmp.replace(root / MANIFEST)
    fsync_dir(root)


def read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not root.is_dir():
        raise BackupError(f"{root}: no such folder")
    if not path.is_file():
        raise BackupError(
            f"{root} is not a complete sharehub backup: {MANIFEST} is missing "
            "(a backup writes it last, so an interrupted backup has none)"
        )
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BackupError(f"{path}: not valid JSON ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: format {manifest.get('format')!r}, this sharehub reads {FORMAT!r}")
    return manifest


# ---- table shapes (serving tables are rebuilt from what was dumped, not from today's spec) ----


def type_token(t: Any) -> list[Any]:
    """A portable description of a column type (raises :class:`BackupError` for others)."""
    if isinstance(t, sa.Boolean):
        return ["boolean"]
    if isinstance(t, sa.DateTime):
        return ["datetime", bool(getattr(t, "timezone", False))]
    if isinstance(t, sa.Date):
        return ["date"]
    if isinstance(t, sa.Time):
        return ["time"]
    if isinstance(t, sa.Float):
        return ["float"]
    if isinstance(t, sa.Numeric):
        return ["numeric", t.precision, t.scale]
    if isinstance(t, sa.BigInteger):
        return ["biginteger"]
    if isinstance(t, sa.Integer):
        return ["integer"]
    if isinstance(t, sa.JSON):
        return ["json"]
    if isinstance(t, sa.LargeBinary):
        return ["binary"]
    if isinstance(t, sa.String):
        return ["string", t.length] if t.length else ["text"]
    raise BackupError(f"column type {t!r} has no portable form in a backup")


def _type_of(token: list[Any]) -> Any:
    kind = token[0]
    simple: dict[str, Any] = {
        "boolean": sa.Boolean(),
        "date": sa.Date(),
        "time": sa.Time(),
        "float": sa.Float(),
        "biginteger": sa.BigInteger(),
        "integer": sa.Integer(),
        "json": sa.JSON(),
        "binary": sa.LargeBinary(),
        "text": sa.Text(),
    }
    if kind in simple:
        return simple[kind]
    if kind == "datetime":
        return sa.DateTime(timezone=bool(token[1]))
    if kind == "numeric":
        return sa.Numeric(token[1], token[2])
    if kind == "string":
        return sa.String(int(token[1]))
    raise BackupError(f"unknown column type {token!r} in the backup")


def describe_table(table: sa.Table, indexes: list[Any]) -> dict[str, Any]:
    """Columns (name, type, nullable, key) and indexes of a reflected table."""
    return {
        "columns": [
            {"name": c.name, "type": type_token(c.type), "nullable": bool(c.nullable), "key": c.primary_key}
            for c in table.columns
        ],
        "indexes": [
            {"name": i["name"], "columns": list(i["column_names"]), "unique": bool(i.get("unique"))}
            for i in indexes
            if i.get("name") and all(i["column_names"])
        ],
    }


def build_table(name: str, shape: dict[str, Any], metadata: sa.MetaData) -> sa.Table:
    """The table a :func:`describe_table` description stands for."""
    columns = [
        sa.Column(
            c["name"], _type_of(c["type"]), nullable=c["nullable"], primary_key=c["key"], autoincrement=False
        )
        for c in shape["columns"]
    ]
    indexes = [sa.Index(i["name"], *i["columns"], unique=i["unique"]) for i in shape["indexes"]]
    return sa.Table(name, metadata, *columns, *indexes)


# ---- values ------------------------------------------------------------------------------


def encode(value: Any) -> Any:
    """A column value as JSON (see the module docstring)."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return json_value(value)


def row_line(row: Any) -> bytes:
    return json.dumps([encode(v) for v in row], ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def decoder(column: sa.Column[Any]) -> Any:
    """A function turning a JSON value back into what ``column`` takes."""
    t = column.type
    if isinstance(t, sa.DateTime):
        aware = bool(getattr(t, "timezone", False))
        return lambda v: None if v is None else _datetime(v, aware)
    if isinstance(t, sa.Date):
        return lambda v: None if v is None else dt.date.fromisoformat(v)
    if isinstance(t, sa.Time):
        return lambda v: None if v is None else dt.time.fromisoformat(v)
    if isinstance(t, sa.Numeric) and not isinstance(t, sa.Float) and t.asdecimal:
        return lambda v: None if v is None else decimal.Decimal(str(v))
    if isinstance(t, sa.LargeBinary):
        return lambda v: None if v is None else base64.b64decode(v)
    return None


def _datetime(text: str, aware: bool) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    if aware and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)  # the hub keeps UTC in databases without time zones
    if not aware and value.tzinfo is not None:
        # a column without time zone (SQLite): UTC wall time, as the hub writes it there
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def read_rows(path: Path) -> tuple[dict[str, Any], Iterator[list[Any]]]:
    """A table file's header and its rows (JSON arrays, not yet decoded)."""
    f = path.open("rb")
    header: dict[str, Any] = json.loads(f.readline())

    def rows() -> Iterator[list[Any]]:
        with f:
            for n, line in enumerate(f, start=2):
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise BackupError(f"{path.name}, line {n}: not a JSON row ({exc})") from None

    return header, rows()
