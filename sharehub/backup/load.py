"""``sharehub restore SRC``: a backup onto a fresh hub, then proof that it is the same hub.

Order: check every file of the backup against its manifest (nothing is written before);
refuse a target that holds data; create the schema at the backup's revision; copy a local
warehouse's files under the target warehouse (rewriting the Iceberg metadata's paths when
the folder differs); load every table in one transaction, the catalog's pointers last; bring
the schema to head; then verify: row counts, the audit chain and its head, every certificate
signature, each lake table's snapshot and the files its metadata needs, the serving state.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import sqlalchemy as sa

from catalog.db import migrate
from catalog.serving import tables as serving
from lake.relocate import LakeFile, copy_table, prefix_rewriter
from sharehub.backup.archive import (
    DB_DIR,
    KEYS_DIR,
    LAKE_DIR,
    BackupError,
    build_table,
    check_file,
    copy_private,
    decoder,
    private_dir,
    read_manifest,
    read_rows,
    safe_relative,
)
from sharehub.backup.dump import _file_io
from sharehub.settings import Settings

_BATCH = 1_000


def check(src: Path) -> dict[str, Any]:
    """The manifest of the backup at ``src`` once every file it lists has its size and SHA-256."""
    src = Path(src)
    manifest = read_manifest(src)
    for t in manifest["tables"]:
        check_file(src, safe_relative(t["file"]), t)
        if not t["file"].startswith(DB_DIR + "/"):
            raise BackupError(f"unsafe table file in the manifest: {t['file']!r}")
    local = manifest["lake"]["kind"] == "local"
    for table in manifest["lake"]["tables"]:
        for f in table["files"]:
            if local and "sha256" not in f:
                raise BackupError(f"the manifest lists lake file {f['path']!r} without its checksum")
            if local:
                check_file(src, f"{LAKE_DIR}/{safe_relative(f['path'])}", f)
            else:
                safe_relative(f["path"])
    for f in (manifest.get("keys") or {}).get("files", []):
        if not f["path"].startswith(KEYS_DIR + "/"):
            raise BackupError(f"unsafe key file in the manifest: {f['path']!r}")
        check_file(src, safe_relative(f["path"]), f)
    return manifest


def restore(settings: Settings, src: Path) -> dict[str, Any]:
    """Restore the backup at ``src`` into the hub of ``settings`` (which must be empty); a report.

    Whatever stops the restore once it has begun writing (a failed load, a failed check) empties
    the target again: its hub tables are dropped and the warehouse folder cleared, so that a
    half-restored hub never serves and the restore can simply be run again.
    """
    src = Path(src)
    manifest = check(src)
    revision = manifest["source"]["revision"]
    if revision is not None and not migrate._known(revision):
        raise BackupError(
            f"the backup is at schema revision {revision}, which this sharehub does not know "
            f"(its newest is {migrate.head()}): restore it with the sharehub version that made it"
        )
    url = settings.hub_db_url
    _require_empty(url, revision)
    new_root = _target_root(settings, manifest["lake"])
    try:
        loaded = _load(settings, src, manifest, new_root)
        from sharehub.backup.verify import verify_restored

        report = verify_restored(settings, manifest, new_root)
    except BaseException as exc:
        _wipe(url, new_root if manifest["lake"]["kind"] == "local" else None)
        if isinstance(exc, BackupError) or not isinstance(exc, Exception):
            raise
        why = f"{type(exc).__name__}: {exc}"
        raise BackupError(f"restore stopped ({why}); the target was emptied again") from exc
    _copy_keys(settings, src, manifest)  # last: a failed restore installs no keys
    report["rows"] = loaded
    return report


def _load(settings: Settings, src: Path, manifest: dict[str, Any], new_root: str) -> dict[str, int]:
    url = settings.hub_db_url
    lake = manifest["lake"]
    migrate.upgrade(url, manifest["source"]["revision"] or "head")
    _create_catalog_tables(settings)  # before the load's transaction: SQLite has one writer
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            loaded = _load_tables(conn, src, manifest, kinds=("hub",))
            _create_serving(conn, manifest)
            loaded |= _load_tables(conn, src, manifest, kinds=("serving",))
            if lake["kind"] == "local":
                _copy_lake(settings, src, lake, new_root)
            move = prefix_rewriter(lake["warehouse"], new_root)
            loaded |= _load_tables(conn, src, manifest, kinds=("iceberg",), move=move)
            _reset_sequences(conn)
    finally:
        engine.dispose()
    migrate.upgrade(url, "head")
    _wal(url)
    return loaded


def _wipe(url: str, local_root: str | None) -> None:
    """Empty the target again: drop the hub's tables, clear a local warehouse folder."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            md = sa.MetaData()
            md.reflect(conn)
            ours = [
                t
                for t in md.sorted_tables
                if t.name.startswith((migrate.MANAGED_PREFIX, serving.SERVING_PREFIX, "iceberg_"))
            ]
            md.drop_all(conn, tables=ours)
    finally:
        engine.dispose()
    if local_root is not None:
        folder = _folder(local_root)
        if folder.is_dir():
            for child in folder.iterdir():  # it held no files when the restore began
                shutil.rmtree(child) if child.is_dir() else child.unlink()


def _folder(uri: str) -> Path:
    """A local warehouse's folder as pyiceberg uses it (%-escapes are not decoded)."""
    return Path(urlparse(uri).path)


def _wal(url: str) -> None:
    """SQLite: the journal mode the embedded hub runs in (readers and one writer at once)."""
    if sa.make_url(url).get_backend_name() == "sqlite":
        with migrate.connect(url) as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")


# ---- the target ---------------------------------------------------------------------------


def _require_empty(url: str, revision: str | None) -> None:
    current = migrate.current(url)
    if current is not None and current != revision:
        raise BackupError(
            f"the target hub DB {migrate.masked_url(url)} has a schema at revision {current}, the backup "
            f"{revision}: restore into a new, empty database (the backup's rows are loaded at its "
            "revision, then migrated)"
        )
    with migrate.connect(url) as conn:  # (creates a SQLite file's folder)
        full = []
        for name in sorted(sa.inspect(conn).get_table_names()):
            if name == migrate.VERSION_TABLE:
                continue
            if name.startswith((migrate.MANAGED_PREFIX, serving.SERVING_PREFIX, "iceberg_")):
                q = sa.select(sa.literal(1)).select_from(sa.table(name)).limit(1)
                if conn.execute(q).first() is not None:
                    full.append(name)
    if full:
        raise BackupError(
            f"the target hub DB {migrate.masked_url(url)} is not empty ({', '.join(full[:5])}"
            f"{', …' if len(full) > 5 else ''} hold rows): restore needs a new, empty database"
        )


def _target_root(settings: Settings, lake: dict[str, Any]) -> str:
    root = settings.warehouse
    if lake["kind"] == "local":
        if not root.startswith("file://"):
            raise BackupError(
                f"the backup holds a local warehouse; the target's lake is {root}: "
                "restore onto a hub with a local warehouse (unset SHAREHUB_S3__BUCKET)"
            )
        folder = _folder(root)
        if folder.exists() and any(p.is_file() for p in folder.rglob("*")):
            raise BackupError(f"the target warehouse {folder} holds files: restore needs an empty folder")
        return root
    if root.rstrip("/") != lake["warehouse"].rstrip("/"):
        raise BackupError(
            f"the backup's lake is {lake['warehouse']} (S3: its files stay in the bucket) but the target "
            f"is configured with {root}: point SHAREHUB_S3__BUCKET/PREFIX at the backup's warehouse, or "
            "copy the bucket's objects with their paths first (versioned, to the same keys)"
        )
    return root


# ---- tables ---------------------------------------------------------------------------


def _load_tables(
    conn: sa.Connection,
    src: Path,
    manifest: dict[str, Any],
    *,
    kinds: tuple[str, ...],
    move: Callable[[str], str] | None = None,
) -> dict[str, int]:
    md = sa.MetaData()
    wanted = [t for t in manifest["tables"] if t["kind"] in kinds]
    if not wanted:
        return {}
    md.reflect(conn, only=[t["name"] for t in wanted])
    by_name = {t["name"]: t for t in wanted}
    counts: dict[str, int] = {}
    for table in md.sorted_tables:
        entry = by_name[table.name]
        for col in table.columns:
            if isinstance(col.type, sa.JSON):
                col.type = sa.JSON(none_as_null=True)  # None back as SQL NULL, as the hub writes it
        header, rows = read_rows(src / entry["file"])
        counts[table.name] = _insert(conn, table, header, rows, entry, move)
    return counts


def _insert(
    conn: sa.Connection,
    table: sa.Table,
    header: dict[str, Any],
    rows: Iterator[list[Any]],
    entry: dict[str, Any],
    move: Callable[[str], str] | None,
) -> int:
    columns = header["columns"]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise BackupError(
            f"{entry['file']}: columns {', '.join(missing)} are not in the target's {table.name}"
        )
    decode = [decoder(table.columns[c]) for c in columns]
    paths = {"metadata_location", "previous_metadata_location", "property_value"} if move else set()
    moves = [c in paths for c in columns]
    n, batch = 0, []
    for raw in rows:
        if len(raw) != len(columns):
            raise BackupError(f"{entry['file']}: a row has {len(raw)} values for {len(columns)} columns")
        row = {}
        for c, v, d, m in zip(columns, raw, decode, moves, strict=True):
            if d is not None:
                v = d(v)
            if m and isinstance(v, str) and move is not None and v.startswith(("file:", "s3:", "s3a:", "/")):
                if "/../" in v or v.endswith("/.."):
                    raise BackupError(f"{entry['file']}: location {v!r} leaves the warehouse")
                v = move(v)
            row[c] = v
        batch.append(row)
        n += 1
        if len(batch) >= _BATCH:
            conn.execute(table.insert(), batch)
            batch = []
    if batch:
        conn.execute(table.insert(), batch)
    if n != entry["rows"]:
        raise BackupError(f"{entry['file']}: {n} rows, the manifest says {entry['rows']}")
    return n


def _create_serving(conn: sa.Connection, manifest: dict[str, Any]) -> None:
    """The serving tables as they were dumped (the directory may have moved on since)."""
    md = sa.MetaData()
    for entry in manifest["tables"]:
        if entry["kind"] == "serving":
            build_table(entry["name"], entry["shape"], md).create(conn)


def _create_catalog_tables(settings: Settings) -> None:
    from lake.warehouse import catalog_properties, load_sql_catalog

    props = catalog_properties(settings.hub_db_url, settings.warehouse, s3=settings.s3_options())
    load_sql_catalog("sharehub", props).engine.dispose()


def _reset_sequences(conn: sa.Connection) -> None:
    """PostgreSQL: move each serial column's sequence past the restored ids."""
    if conn.dialect.name != "postgresql":
        return
    rows = conn.execute(
        sa.text(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND column_default LIKE 'nextval(%'"
        )
    ).all()
    for table, column in rows:
        q = sa.text(
            "SELECT setval(pg_get_serial_sequence(:t, :c), "
            f'COALESCE((SELECT max("{column}") FROM "{table}"), 0) + 1, false)'
        )
        conn.execute(q, {"t": f'"{table}"', "c": column})


# ---- the lake ---------------------------------------------------------------------------


def _copy_lake(settings: Settings, src: Path, lake: dict[str, Any], new_root: str) -> list[Path]:
    io = _file_io(settings)
    old_root = lake["warehouse"]
    written: list[Path] = []
    base = old_root.rstrip("/") + "/"
    for table in lake["tables"]:
        files = [LakeFile(base + f["path"], f["kind"], f["required"]) for f in table["files"]]

        def source(path: str) -> str:
            return "file://" + str((src / LAKE_DIR / path[len(base) :]).resolve())  # not %-encoded

        moved = copy_table(io, files, source=source, old_root=old_root, new_root=new_root)
        written += [_folder(p) for p in moved.values()]
    return written


def _copy_keys(settings: Settings, src: Path, manifest: dict[str, Any]) -> None:
    keys = manifest.get("keys")
    if not keys:
        return
    target = settings.signing_keys_dir
    private_dir(target)
    for f in keys["files"]:
        dst = target / Path(f["path"]).name
        if dst.exists() and dst.read_bytes() != (src / f["path"]).read_bytes():
            raise BackupError(f"{dst} exists and differs from the backup's {f['path']}: not overwritten")
        tmp = dst.with_name(dst.name + ".restoring")
        tmp.unlink(missing_ok=True)
        copy_private(src / f["path"], tmp)
        tmp.replace(dst)
