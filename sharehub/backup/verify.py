"""The checks after a restore: is the restored hub the one the backup was taken of?

Row counts per table; the audit chain verified end to end and its head equal to the one the
backup recorded; every stored certificate signature verified with the restored public keys;
each lake table at the snapshot the backup recorded, its scan planned (every manifest read)
with the recorded number of records and every data file present; the serving store's
snapshot against the curated one (a backup taken mid-run may have serving behind: the next
run of that dataset repairs it, so that is reported, not failed).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from catalog import audit
from catalog.auth.keys import KeyStore
from catalog.certificates import signing
from catalog.clock import as_utc
from catalog.db import tables
from sharehub.backup.archive import BackupError
from sharehub.settings import Settings


def verify_restored(settings: Settings, manifest: dict[str, Any], root: str) -> dict[str, Any]:
    """Run the checks on the hub of ``settings``; the report, or :class:`BackupError` listing failures."""
    engine = sa.create_engine(settings.hub_db_url, poolclass=sa.pool.NullPool)
    problems: list[str] = []
    report: dict[str, Any] = {}
    try:
        _counts(engine, manifest, problems)
        report["audit"] = _audit(engine, manifest, problems)
        report["certificates"] = _certificates(engine, settings, problems)
        report["lake"] = _lake(settings, manifest, problems)
        report["serving_behind"] = _serving_behind(engine, report["lake"])
    finally:
        engine.dispose()
    if problems:
        raise BackupError("the restored hub does not match the backup:\n  " + "\n  ".join(problems))
    return report


def _counts(engine: sa.Engine, manifest: dict[str, Any], problems: list[str]) -> None:
    with engine.connect() as conn:
        for t in manifest["tables"]:
            n = conn.execute(sa.select(sa.func.count()).select_from(sa.table(t["name"]))).scalar_one()
            if n != t["rows"]:
                problems.append(f"table {t['name']}: {n} rows, the backup has {t['rows']}")


def _audit(engine: sa.Engine, manifest: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    result = audit.verify(engine)
    if not result.ok:
        problems += [f"audit chain: {p}" for p in result.problems[:20]]
    want = manifest.get("audit_head")
    if want and (result.last_seq, result.last_hash) != (want["seq"], want["hash"]):
        problems.append(
            f"audit head: seq {result.last_seq} {result.last_hash[:12]}…, the backup recorded "
            f"seq {want['seq']} {want['hash'][:12]}…"
        )
    return {
        "records": result.checked,
        "head_seq": result.last_seq,
        "head_hash": result.last_hash,
        "archived": result.archived,  # before the kept records, in archive files (not in the backup)
    }


def _certificates(engine: sa.Engine, settings: Settings, problems: list[str]) -> dict[str, int]:
    keys = KeyStore(engine, settings.signing_keys_dir)
    t = tables.certificates
    good = bad = 0
    with engine.connect() as conn:
        rows = conn.execution_options(yield_per=2_000).execute(sa.select(t).where(t.c.signature.is_not(None)))
        for row in rows:
            doc = signing.signed_certificate(dict(row._mapping), row.signature, row.signing_kid)
            why = signing.verify_signature(keys, doc["certificate"], doc["signature"])
            since = keys.withdrawn_since(row.signing_kid) if why is None else None
            signed_at = as_utc(row.signed_at)
            if since is not None and (signed_at is None or signed_at >= since):
                # a withdrawn (leaked) key's signature the hub made after the leak: not trusted
                why = "key_withdrawn (run `sharehub keys sign-missing`)"
            if why is None:
                good += 1
            else:
                bad += 1
                if bad <= 20:
                    problems.append(f"certificate {row.identifier}: signature {why}")
    return {"signatures_verified": good, "signatures_failed": bad}


def _lake(settings: Settings, manifest: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    from lake import open_lake

    out: dict[str, Any] = {}
    lake = open_lake(settings.hub_db_url, settings.warehouse, s3=settings.s3_options())
    try:
        catalog = lake.catalog
        for t in manifest["lake"]["tables"]:
            ident = t["identifier"]
            try:
                table = catalog.load_table(ident)
                current = table.metadata.current_snapshot_id
                records = files = 0
                if current is not None:
                    for task in table.scan().plan_files():
                        files += 1
                        records += task.file.record_count
                        if not table.io.new_input(task.file.file_path).exists():
                            problems.append(f"lake table {ident}: data file {task.file.file_path} is missing")
            except Exception as exc:
                problems.append(f"lake table {ident}: cannot be read: {exc}")
                continue
            if current != t["snapshot_id"]:
                problems.append(f"lake table {ident}: snapshot {current}, the backup has {t['snapshot_id']}")
            if records != t["total_records"]:
                problems.append(f"lake table {ident}: {records} records, the backup has {t['total_records']}")
            out[ident] = {"snapshot_id": current, "records": records, "data_files": files}
    finally:
        lake.close()
    return out


def _serving_behind(engine: sa.Engine, lake: dict[str, Any]) -> list[str]:
    from lake.tables import normalise_code

    t = tables.serving_state
    behind = []
    with engine.connect() as conn:
        for code, snap in conn.execute(sa.select(t.c.dataset_code, t.c.snapshot_id)):
            curated = lake.get(f"curated.{normalise_code(code)}")
            if curated is not None and curated["snapshot_id"] != snap:
                behind.append(code)
    return behind
