"""``sharehub backup DEST``: the hub DB in one read snapshot, the lake's files, optionally the keys.

The hub DB's tables (directory and its history, parties, applications, grants, keys' public
halves, the audit chain, certificates and copies, run records, watermarks, the file ledger,
the serving store and the Iceberg catalog's rows) are read in one transaction: REPEATABLE READ
on PostgreSQL, one read transaction on SQLite (WAL: writers go on). The lake is then read at
the metadata files that snapshot points to — Iceberg files are never rewritten, so later
commits do not change what the backup copies. A local warehouse's reachable files are copied;
on S3 they are checked to exist and left where they are (bucket versioning keeps them).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import sqlalchemy as sa

from catalog.db import migrate
from catalog.serving import tables as serving
from lake.errors import LakeError
from lake.relocate import LakeFile, read_metadata_json, table_files
from sharehub.backup.archive import (
    DB_DIR,
    FORMAT,
    KEYS_DIR,
    LAKE_DIR,
    BackupError,
    HashingWriter,
    copy_private,
    describe_table,
    private_dir,
    row_line,
    write_manifest,
)
from sharehub.settings import Settings

#: not backed up: the migration stamp (the manifest records the revision), run locks (a
#: restored hub has no running steps; runs unfinished at backup time are reaped as abandoned)
#: and portal sessions (a restored hub signs everyone in again: a stolen backup holds no session)
SKIPPED = (migrate.VERSION_TABLE, "hub_dataset_locks", "hub_portal_sessions")
ICEBERG_TABLES = ("iceberg_namespace_properties", "iceberg_tables")
_YIELD = 2_000


def take(settings: Settings, dest: Path, *, include_keys: bool = False) -> dict[str, Any]:
    """Write a backup of the hub to the folder ``dest`` (new or empty); its manifest."""
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} is not an empty folder: a backup goes into a new or empty folder")
    private_dir(dest)
    url = settings.hub_db_url
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        manifest = _dump_db(engine, dest)
    finally:
        engine.dispose()
    manifest["created_at"] = dt.datetime.now(dt.UTC).isoformat()
    manifest["source"]["url"] = migrate.masked_url(url)
    manifest["lake"] = _copy_lake(settings, dest, manifest.pop("_iceberg"))
    manifest["keys"] = _copy_keys(settings, dest) if include_keys else None
    write_manifest(dest, manifest)
    return manifest


# ---- the hub DB -------------------------------------------------------------------------


def _snapshot(conn: sa.Connection) -> sa.Connection:
    """Start the one read transaction the whole dump runs in."""
    if conn.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        conn.begin()
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN")  # pysqlite would not begin before a SELECT by itself
    else:
        raise BackupError(f"backups of a {conn.dialect.name} hub DB are not supported (PostgreSQL or SQLite)")
    return conn


def _dump_db(engine: sa.Engine, dest: Path) -> dict[str, Any]:
    with engine.connect() as conn:
        conn = _snapshot(conn)
        names = set(sa.inspect(conn).get_table_names())
        if migrate.VERSION_TABLE not in names:
            raise BackupError(
                "the hub DB has no schema revision: nothing to back up (run `sharehub db upgrade`)"
            )
        revision = conn.execute(sa.text(f"SELECT version_num FROM {migrate.VERSION_TABLE}")).scalar()
        codes = list(conn.execute(sa.text("SELECT code FROM hub_datasets ORDER BY code")).scalars())
        by_serving = {serving.serving_table_name(c): c for c in codes}
        tables: list[dict[str, Any]] = []
        for name in sorted(names):
            if name in SKIPPED:
                continue
            if name.startswith(migrate.MANAGED_PREFIX):
                kind, code = "hub", None
            elif name in by_serving:
                kind, code = "serving", by_serving[name]
            elif name in ICEBERG_TABLES:
                kind, code = "iceberg", None
            else:
                continue  # not the hub's (another application's table in the same database)
            entry = _dump_table(conn, dest, name, shaped=kind == "serving")
            entry.update(kind=kind, dataset_code=code)
            tables.append(entry)
        head = conn.execute(sa.text("SELECT seq, hash FROM hub_audit_head")).first()
        iceberg = (
            [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM iceberg_tables"))]
            if "iceberg_tables" in names
            else []
        )
        signed = conn.execute(
            sa.text("SELECT count(*) FROM hub_certificates WHERE signature IS NOT NULL")
        ).scalar_one()
        conn.rollback()
    return {
        "format": FORMAT,
        "source": {"dialect": engine.dialect.name, "revision": revision},
        "tables": tables,
        "audit_head": {"seq": int(head.seq), "hash": head.hash} if head else None,
        "certificates_signed": int(signed),
        "_iceberg": iceberg,
    }


def _dump_table(conn: sa.Connection, dest: Path, name: str, *, shaped: bool) -> dict[str, Any]:
    """Write one table; ``shaped``: also describe its columns and indexes (to rebuild it as it was)."""
    table = sa.Table(name, sa.MetaData(), autoload_with=conn)
    shape = describe_table(table, sa.inspect(conn).get_indexes(name)) if shaped else None
    order = list(table.primary_key.columns) or list(table.columns)
    rel = f"{DB_DIR}/{name}.jsonl"
    out = HashingWriter(dest / rel)
    import json

    out.write(json.dumps({"table": name, "columns": [c.name for c in table.columns]}).encode() + b"\n")
    rows = 0
    result = conn.execution_options(yield_per=_YIELD).execute(sa.select(table).order_by(*order))
    for row in result:
        out.write(row_line(row))
        rows += 1
    entry = {"name": name, "file": rel, "rows": rows, **out.close()}
    if shape is not None:
        entry["shape"] = shape
    return entry


# ---- the lake ---------------------------------------------------------------------------


def _file_io(settings: Settings) -> Any:
    from pyiceberg.io import load_file_io

    from lake.warehouse import catalog_properties

    return load_file_io(catalog_properties(settings.hub_db_url, settings.warehouse, s3=settings.s3_options()))


def relative(path: str, root: str) -> str:
    """``path`` relative to the warehouse ``root`` (a path outside it is an error)."""
    base = root.rstrip("/") + "/"
    if not path.startswith(base):
        raise BackupError(f"lake file {path} is outside the warehouse {root}")
    return path[len(base) :]


def _copy_lake(settings: Settings, dest: Path, iceberg: list[dict[str, Any]]) -> dict[str, Any]:
    root = settings.warehouse
    local = root.startswith("file://")
    io = _file_io(settings)
    out: dict[str, Any] = {"kind": "local" if local else "s3", "warehouse": root, "tables": []}
    for row in sorted(iceberg, key=lambda r: (r["catalog_name"], r["table_namespace"], r["table_name"])):
        location = row["metadata_location"]
        ident = f"{row['table_namespace']}.{row['table_name']}"
        try:
            files = table_files(io, location)
            meta = read_metadata_json(_read(io, location))
        except (OSError, ValueError, LakeError) as exc:
            raise BackupError(f"lake table {ident}: cannot read its metadata at {location}: {exc}") from exc
        current = meta.get("current-snapshot-id")
        if current == -1:
            current = None
        snap = next((s for s in meta.get("snapshots", []) if s["snapshot-id"] == current), None)
        listed = [_take_file(io, dest, f, root, ident, local) for f in files]
        out["tables"].append(
            {
                "catalog": row["catalog_name"],
                "identifier": ident,
                "metadata_location": location,
                "snapshot_id": current,
                "total_records": int(snap["summary"].get("total-records", 0)) if snap else 0,
                "files": [f for f in listed if f is not None],
            }
        )
    if not local:
        out["versioning"] = _bucket_versioning(settings)
    return out


def _read(io: Any, path: str) -> bytes:
    with io.new_input(path).open() as f:
        data: bytes = f.read()
    return data


def _take_file(io: Any, dest: Path, f: LakeFile, root: str, ident: str, local: bool) -> dict[str, Any] | None:
    rel = relative(f.path, root)
    entry: dict[str, Any] = {"path": rel, "kind": f.kind, "required": f.required}
    if not local:
        if not io.new_input(f.path).exists():
            if f.required:
                raise BackupError(f"lake table {ident}: {f.path} is missing from the bucket")
            return None
        return entry
    src = Path(urlparse(f.path).path)  # as pyiceberg reads it: %-escapes are not decoded
    if not src.is_file():
        if f.required:
            raise BackupError(
                f"lake table {ident}: {src} is missing (the warehouse lost a file its metadata needs)"
            )
        return None
    entry.update(copy_private(src, dest / LAKE_DIR / rel))
    return entry


def _bucket_versioning(settings: Settings) -> str | None:
    """The bucket's versioning status (Enabled/Suspended/Off), None when it cannot be read."""
    from lake.s3admin import minio_client

    s3 = settings.s3_options() or {}
    try:
        client = minio_client(
            s3.get("endpoint"), s3.get("access_key"), s3.get("secret_key"), s3.get("region")
        )
        status = client.get_bucket_versioning(str(settings.s3.bucket)).status
        return str(status) if status else "Off"
    except Exception:
        return None


# ---- keys -------------------------------------------------------------------------------


def _copy_keys(settings: Settings, dest: Path) -> dict[str, Any]:
    src = settings.signing_keys_dir
    files: list[dict[str, Any]] = []
    if src.is_dir():
        for path in sorted(p for p in src.iterdir() if p.is_file()):
            digest = copy_private(path, dest / KEYS_DIR / path.name)
            files.append({"path": f"{KEYS_DIR}/{path.name}", **digest})
    return {"files": files}
