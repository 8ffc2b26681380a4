"""The file connector: CSV, xlsx, JSON lines and Parquet files in a local folder or an S3 prefix."""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs

from connectors.base import DEFAULT_BATCH_SIZE, ConnectorError, Reject
from connectors.common import ordinal_rows, slice_batches, with_origin
from connectors.headers import FILE, FileRefused, match_columns

FileFormat = Literal["csv", "xlsx", "jsonl", "parquet"]
FORMATS: tuple[str, ...] = ("csv", "xlsx", "jsonl", "parquet")

# keys of the ``s3`` option
S3_ENDPOINT = "endpoint"
S3_ACCESS_KEY = "access_key"
S3_SECRET_KEY = "secret_key"  # noqa: S105 - an option key, not a secret
S3_REGION = "region"


@dataclass(frozen=True)
class TakenFile:
    """A file read by this run: its name (relative to the location), sha256 hex and row count.

    ``notes`` says how it was read: ``encoding``, ``header_line``, ``sheet``, or
    ``identical_to`` (the same bytes as a file read before it in this run: not read again).
    """

    name: str
    checksum: str
    rows: int
    notes: dict[str, Any] = field(default_factory=dict, compare=False)


def s3_filesystem(options: Mapping[str, Any] | None) -> pafs.S3FileSystem:
    """A pyarrow S3 filesystem from ``{"endpoint", "access_key", "secret_key", "region"}``."""
    opts = dict(options or {})
    kwargs: dict[str, Any] = {}
    endpoint = opts.get(S3_ENDPOINT)
    if endpoint:
        parsed = urlparse(str(endpoint))
        if parsed.scheme and parsed.netloc:
            kwargs["endpoint_override"] = parsed.netloc
            kwargs["scheme"] = parsed.scheme
        else:
            kwargs["endpoint_override"] = str(endpoint)
    if opts.get(S3_ACCESS_KEY):
        kwargs["access_key"] = str(opts[S3_ACCESS_KEY])
        kwargs["secret_key"] = str(opts.get(S3_SECRET_KEY, ""))
    if opts.get(S3_REGION):
        kwargs["region"] = str(opts[S3_REGION])
    return pafs.S3FileSystem(**kwargs)


def resolve_location(location: str, s3: Mapping[str, Any] | None = None) -> tuple[pafs.FileSystem, str]:
    """The filesystem and base path for a local folder or an ``s3://bucket/prefix`` URL."""
    if location.startswith("s3://"):
        return s3_filesystem(s3), location[len("s3://") :].rstrip("/")
    return pafs.LocalFileSystem(), os.path.abspath(location)


def sha256_file(fs: pafs.FileSystem, path: str) -> str:
    """The sha256 hex digest of a file's bytes (streamed)."""
    digest = hashlib.sha256()
    with fs.open_input_stream(path, compression=None) as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class FileConnector:
    """Files matching a glob ``pattern`` under ``location``, read in name order, each taken once.

    ``seen`` maps file name -> sha256 of files already taken: a file with the same name and
    checksum is skipped (``.skipped``), a changed one is taken again. After iteration,
    ``.taken`` lists the files read with their checksums and row counts.

    ``columns`` maps declared fields to their source column names: headers are found and
    matched to them (``connectors.headers``) and batches carry the fields' names; each file
    lacking a declared column adds a ``missing_column`` reject. A file that cannot be read at
    all (0 bytes, not a workbook, an encoding that cannot be told, no header) is refused
    alone: one ``file`` reject, not taken (so it is read again once replaced), and the other
    files go on. A file with the same bytes as one read before it in the run is not read again
    (its rows would all be duplicate keys); it is taken with ``identical_to`` in its notes.
    """

    def __init__(
        self,
        location: str,
        pattern: str,
        format: FileFormat,
        *,
        encoding: str | None = None,
        sheet: str | None = None,
        seen: Mapping[str, str] | None = None,
        s3: Mapping[str, Any] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        columns: Mapping[str, str] | None = None,
    ) -> None:
        if format not in FORMATS:
            raise ConnectorError(f"unknown file format {format!r}; known formats: {', '.join(FORMATS)}")
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        self.location = location
        self.pattern = pattern
        self.format: FileFormat = format
        self.encoding = encoding
        self.sheet = sheet
        self.seen: dict[str, str] = dict(seen or {})
        self.batch_size = batch_size
        self.columns = dict(columns) if columns else None
        self._fs, self._base = resolve_location(location, s3)
        self._rejects: list[Reject] = []
        self.taken: list[TakenFile] = []
        self.skipped: list[str] = []

    @property
    def rejects(self) -> list[Reject]:
        """Rows that could not be read (ragged CSV rows, bad JSON lines, ...)."""
        return self._rejects

    def list_files(self) -> list[str]:
        """Names (relative to the location) of the files matching the pattern, in name order."""
        recursive = "/" in self.pattern
        selector = pafs.FileSelector(self._base, recursive=recursive)
        try:
            infos = self._fs.get_file_info(selector)
        except (FileNotFoundError, OSError) as exc:
            raise ConnectorError(f"{self.location}: cannot list files: {exc}") from None
        names = []
        prefix = self._base.rstrip("/") + "/"
        for info in infos:
            if info.type != pafs.FileType.File:
                continue
            name = info.path[len(prefix) :] if info.path.startswith(prefix) else info.base_name
            if fnmatch.fnmatchcase(name, self.pattern):
                names.append(name)
        return sorted(names)

    def _path(self, name: str) -> str:
        return f"{self._base.rstrip('/')}/{name}"

    def read_batches(self) -> Iterator[pa.RecordBatch]:
        """Stream every new or changed file's rows as record batches with ``_source``/``_row``."""
        self.taken, self.skipped, self._rejects[:] = [], [], []
        by_checksum: dict[str, str] = {}
        for name in self.list_files():
            path = self._path(name)
            checksum = sha256_file(self._fs, path)
            if self.seen.get(name) == checksum:
                self.skipped.append(name)
                continue
            if checksum in by_checksum:
                self.taken.append(TakenFile(name, checksum, 0, {"identical_to": by_checksum[checksum]}))
                continue
            notes: dict[str, Any] = {}
            batches = self._read_file(name, path, notes)
            try:
                if self._fs.get_file_info(path).size == 0:
                    raise FileRefused(f"{name}: file is empty")
                first = next(batches, None)  # encoding, workbook and header problems show here
            except FileRefused as exc:
                batches.close()
                self._rejects.append(Reject(name, exc.row, None, None, str(exc), rule=FILE))
                continue
            by_checksum[checksum] = name
            rows = 0
            if first is not None:
                rows += first.num_rows
                yield first
            for batch in batches:
                rows += batch.num_rows
                yield batch
            self._rejects.extend(notes.pop("missing", []))
            self.taken.append(TakenFile(name, checksum, rows, notes))

    def _read_file(
        self, name: str, path: str, notes: dict[str, Any]
    ) -> Generator[pa.RecordBatch, None, None]:
        if self.format == "csv":
            from connectors.csv_reader import read_csv

            with self._fs.open_input_stream(path) as stream:
                yield from read_csv(
                    stream,
                    name=name,
                    encoding=self.encoding,
                    rejects=self._rejects,
                    batch_size=self.batch_size,
                    columns=self.columns,
                    notes=notes,
                )
        elif self.format == "jsonl":
            from connectors.jsonl import read_jsonl

            with self._fs.open_input_stream(path) as stream:
                yield from read_jsonl(
                    stream,
                    name=name,
                    encoding=self.encoding,
                    rejects=self._rejects,
                    batch_size=self.batch_size,
                    columns=self.columns,
                    notes=notes,
                )
        elif self.format == "xlsx":
            from connectors.excel import read_xlsx

            with self._fs.open_input_file(path) as file:
                yield from read_xlsx(
                    file,
                    name=name,
                    sheet=self.sheet,
                    rejects=self._rejects,
                    batch_size=self.batch_size,
                    columns=self.columns,
                    notes=notes,
                )
        else:
            yield from self._read_parquet(name, path, notes)

    def _read_parquet(self, name: str, path: str, notes: dict[str, Any]) -> Iterator[pa.RecordBatch]:
        import pyarrow.parquet as pq

        with self._fs.open_input_file(path) as file:
            try:
                parquet = pq.ParquetFile(file)
            except (pa.ArrowInvalid, OSError) as exc:
                raise FileRefused(f"{name}: not a readable Parquet file: {exc}") from None
            plan = match_columns(parquet.schema_arrow.names, self.columns, file=name)
            notes["missing"] = plan.findings(name)
            start = 1
            for batch in parquet.iter_batches(batch_size=self.batch_size):
                batch = batch.rename_columns(plan.names) if self.columns else batch
                for part in slice_batches(batch, self.batch_size):
                    yield with_origin(part, name, ordinal_rows(start, part.num_rows))
                    start += part.num_rows
