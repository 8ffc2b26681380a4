"""The files an Iceberg table's metadata reaches, and copying them to another warehouse root.

Iceberg metadata holds absolute paths: the metadata JSON names the table location, its manifest
lists and earlier metadata files; a manifest list names manifests; a manifest names data files.
Copying a table to another folder therefore rewrites those three kinds of file (as Iceberg's
``rewrite_table_path`` action does) and copies data files byte for byte. Snapshot ids, sequence
numbers, statistics and history stay exactly as they were.

Plain arguments only: a pyiceberg ``FileIO`` and paths. Tables with delete files (merge-on-read)
cannot be relocated here (their contents name data files); the lake never writes them.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from lake.errors import LakeError

#: the kinds of file, in the order a copy must write them (what a file names is written first)
DATA, STATISTICS, MANIFEST, MANIFEST_LIST, METADATA = (
    "data",
    "statistics",
    "manifest",
    "manifest_list",
    "metadata",
)
COPY_ORDER = (DATA, STATISTICS, MANIFEST, MANIFEST_LIST, METADATA)
_DELETED = 2  # manifest entry status: the file was removed by this manifest's snapshot
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class LakeFile:
    """One file of a table: its absolute location, its kind, whether the current state needs it."""

    path: str
    kind: str
    required: bool = True


def _read_bytes(io: Any, path: str) -> bytes:
    with io.new_input(path).open() as f:
        data: bytes = f.read()
    return data


def read_metadata_json(data: bytes) -> dict[str, Any]:
    """A table metadata file's JSON (plain or gzip-compressed)."""
    if data[:2] == _GZIP_MAGIC:
        data = gzip.decompress(data)
    out: dict[str, Any] = json.loads(data)
    return out


def _avro_records(io: Any, path: str) -> tuple[Any, dict[str, str], list[Any]]:
    from pyiceberg.avro.file import AvroFile
    from pyiceberg.typedef import Record

    with AvroFile[Record](io.new_input(path)) as reader:
        records = list(reader)
        return reader.schema, dict(reader.header.meta), records


def _position(struct: Any, name: str) -> int:
    names = [f.name for f in struct.fields]
    if name not in names:
        raise LakeError(f"not an Iceberg manifest file: no field {name!r} (fields: {', '.join(names)})")
    return names.index(name)


def table_files(io: Any, metadata_location: str) -> list[LakeFile]:
    """Every file the table's metadata at ``metadata_location`` reaches, each once.

    The current metadata file and every snapshot's manifest list, manifests and live data files
    are required; earlier metadata files (the metadata log) and files that a manifest records
    as deleted are listed as not required (kept when they are still there).
    """
    seen: dict[str, LakeFile] = {}

    def add(path: str, kind: str, required: bool = True) -> bool:
        old = seen.get(path)
        if old is None or (required and not old.required):
            seen[path] = LakeFile(path, kind, required)
            return old is None
        return False

    meta = read_metadata_json(_read_bytes(io, metadata_location))
    add(metadata_location, METADATA)
    for entry in meta.get("metadata-log", []):
        add(entry["metadata-file"], METADATA, required=False)
    for stats in [*meta.get("statistics", []), *meta.get("partition-statistics", [])]:
        add(stats["statistics-path"], STATISTICS)
    manifests: list[str] = []
    for snap in meta.get("snapshots", []):
        if "manifest-list" not in snap:
            raise LakeError(
                f"{metadata_location}: snapshot {snap.get('snapshot-id')} has no manifest list (v1)"
            )
        if add(snap["manifest-list"], MANIFEST_LIST):
            schema, _meta, records = _avro_records(io, snap["manifest-list"])
            path_at = _position(schema, "manifest_path")
            for rec in records:
                if add(rec[path_at], MANIFEST):
                    manifests.append(rec[path_at])
    for manifest in manifests:
        for path, deleted in _manifest_entries(io, manifest):
            add(path, DATA, required=not deleted)
    return list(seen.values())


def _manifest_entries(io: Any, manifest: str) -> Iterator[tuple[str, bool]]:
    schema, meta, records = _avro_records(io, manifest)
    if meta.get("content", "data") != "data":
        raise LakeError(f"{manifest} lists delete files (merge-on-read), which cannot be relocated")
    status_at, file_at = _position(schema, "status"), _position(schema, "data_file")
    path_at = _position(schema.find_field("data_file").field_type, "file_path")
    for rec in records:
        yield rec[file_at][path_at], rec[status_at] == _DELETED


# ---- rewriting ---------------------------------------------------------------------------


def prefix_rewriter(old_root: str, new_root: str) -> Callable[[str], str]:
    """A function moving locations under ``old_root`` to ``new_root`` (others are refused)."""
    old, new = old_root.rstrip("/") + "/", new_root.rstrip("/") + "/"

    def move(path: str) -> str:
        if path.startswith(old):
            return new + path[len(old) :]
        if path.rstrip("/") + "/" == old:
            return new.rstrip("/")
        raise LakeError(f"{path} is outside the warehouse {old_root}: cannot relocate it")

    return move


def _rewrite_strings(value: Any, move: Callable[[str], str], old_root: str) -> Any:
    if isinstance(value, str):
        return move(value) if value.startswith(old_root.rstrip("/")) else value
    if isinstance(value, list):
        return [_rewrite_strings(v, move, old_root) for v in value]
    if isinstance(value, dict):
        return {k: _rewrite_strings(v, move, old_root) for k, v in value.items()}
    return value


def rewrite_metadata(data: bytes, old_root: str, new_root: str) -> bytes:
    """A metadata JSON file with every location under ``old_root`` moved to ``new_root``."""
    compressed = data[:2] == _GZIP_MAGIC
    meta = _rewrite_strings(read_metadata_json(data), prefix_rewriter(old_root, new_root), old_root)
    out = json.dumps(meta, ensure_ascii=False, separators=(",", ":")).encode()
    return gzip.compress(out, mtime=0) if compressed else out


def rewrite_avro(
    io: Any,
    src: str,
    dst: str,
    kind: str,
    move: Callable[[str], str],
    lengths: dict[str, int],
) -> int:
    """Copy a manifest or manifest list from ``src`` to ``dst``, moving the paths it names.

    A manifest list's ``manifest_length`` becomes the length of the rewritten manifest
    (``lengths``: new path -> size). Returns the size written.
    """
    from pyiceberg.avro.file import AvroOutputFile
    from pyiceberg.typedef import Record

    schema, meta, records = _avro_records(io, src)
    name = json.loads(meta.pop("avro.schema"))["name"]
    if kind == MANIFEST_LIST:
        path_at, length_at = _position(schema, "manifest_path"), _position(schema, "manifest_length")
        for rec in records:
            rec[path_at] = move(rec[path_at])
            rec[length_at] = lengths.get(rec[path_at], rec[length_at])
    elif kind == MANIFEST:
        if meta.get("content", "data") != "data":
            raise LakeError(f"{src} lists delete files (merge-on-read), which cannot be relocated")
        file_at = _position(schema, "data_file")
        path_at = _position(schema.find_field("data_file").field_type, "file_path")
        for rec in records:
            rec[file_at][path_at] = move(rec[file_at][path_at])
    else:
        raise ValueError(f"not an Avro metadata kind: {kind}")
    with AvroOutputFile[Record](io.new_output(dst), schema, name, metadata=meta) as out:
        if records:
            out.write_block(records)
        size = int(out.tell())
    return size


def copy_table(
    io: Any,
    files: list[LakeFile],
    *,
    source: Callable[[str], str],
    old_root: str,
    new_root: str,
) -> dict[str, str]:
    """Write ``files`` under ``new_root``, reading each from ``source(path)``; the new locations.

    Data and statistics files are copied byte for byte, manifests and manifest lists rewritten
    with moved paths, metadata JSON rewritten last: a reader sees the copy only once complete.
    """
    move = prefix_rewriter(old_root, new_root)
    lengths: dict[str, int] = {}
    moved: dict[str, str] = {}
    for kind in COPY_ORDER:
        for f in files:
            if f.kind != kind:
                continue
            dst = move(f.path)
            moved[f.path] = dst
            src = source(f.path)
            if kind in (MANIFEST, MANIFEST_LIST):
                lengths[dst] = rewrite_avro(io, src, dst, kind, move, lengths)
                continue
            data = _read_bytes(io, src)
            if kind == METADATA:
                data = rewrite_metadata(data, old_root, new_root)
            with io.new_output(dst).create(overwrite=True) as out:
                out.write(data)
    return moved
