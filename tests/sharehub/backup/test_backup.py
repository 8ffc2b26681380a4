"""Backup and restore (容灾备份): a whole hub onto a fresh instance, proven the same hub.

One module-scoped source hub (SQLite hub DB, local warehouse) syncs the five sample datasets,
registers the demo apps and answers their calls (audit records, certificate copies). Each test
restores its backup somewhere new and compares the two hubs table by table, row by row; the
lake by snapshot ids and by reading every snapshot with the source warehouse moved away.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from catalog import audit, publishing
from catalog.db.engine import engine_for
from sharehub import pipeline
from sharehub.backup import BackupError, check, restore, take
from sharehub.backup import dump as take_mod
from sharehub.settings import Settings, get_settings
from tests.sharehub.conftest import SyncedDemoHub

INSERT_REJECT = (
    "INSERT INTO hub_run_rejects (run_id, source, row, reason) VALUES ('x','f',1,'r') RETURNING id"
)
CODES = ("SCJ-YYZZ-001", "GAJ-HJRK-001", "RSJ-SBJF-001", "FY-SXBZXR-001", "SGB-BSZN-001")


@pytest.fixture(scope="module")
def source(
    tmp_path_factory: pytest.TempPathFactory, synced_demo_hub: SyncedDemoHub
) -> Iterator[dict[str, Any]]:
    from sharehub.demo import access as demo_access

    with synced_demo_hub(tmp_path_factory.mktemp("source")) as env:
        pipeline.sync("RSJ-SBJF-001", full=True)  # a second curated snapshot (history to keep)
        access = demo_access.setup_access(env["engine"], env["settings"])
        bodies = _calls(env["settings"], access)
        yield {**env, "access": access, "bodies": bodies}


def _calls(settings: Settings, access: Any) -> dict[str, Any]:
    """Make the demo's calls on the hub of ``settings``; the bodies by title."""
    from catalog.api import create_app
    from sharehub.demo import access as demo_access

    client = TestClient(create_app(settings))
    tokens = {}
    for name, (cid, secret) in access.credentials.items():
        r = client.post(
            "/api/v1/token",
            data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
        )
        assert r.status_code == 200, r.text
        tokens[name] = r.json()["access_token"]
    bodies = {}
    for call in access.calls:
        headers = {"Authorization": f"Bearer {tokens[call.app]}"} if call.app else {}
        if call.purpose:
            headers |= {"X-End-User-Id": demo_access.END_USER, "X-Case-Number": demo_access.CASE_NUMBER}
        r = client.request(call.method, call.path, params=call.params, headers=headers)
        assert r.status_code == 200, (call.title, r.text)
        bodies[call.title] = r.json()
    return bodies


# ---- comparing two hubs ----------------------------------------------------------------------


def _norm(v: Any) -> Any:
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(v, decimal.Decimal):
        return str(v.normalize())
    return v


def content(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every hub, serving and Iceberg catalog table's rows (minus lake locations), sorted."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    out: dict[str, list[tuple[Any, ...]]] = {}
    try:
        with engine.connect() as conn:
            for name in sa.inspect(conn).get_table_names():
                if name in ("hub_alembic_version", "hub_dataset_locks", "hub_portal_sessions"):
                    continue
                if not name.startswith(("hub_", "srv_", "iceberg_")):
                    continue
                table = sa.Table(name, sa.MetaData(), autoload_with=conn)
                cols = sorted(  # by name: a migrated table and a created one order columns differently
                    (c for c in table.columns if "location" not in c.name and c.name != "property_value"),
                    key=lambda c: c.name,
                )
                rows = conn.execute(sa.select(*cols)).all()
                out[name] = sorted(tuple(json.dumps(_norm(v), default=str) for v in r) for r in rows)
    finally:
        engine.dispose()
    return out


def _lake_state(settings: Settings) -> dict[str, list[int]]:
    from lake import open_lake

    with open_lake(settings.hub_db_url, settings.warehouse, s3=settings.s3_options()) as lake:
        out = {}
        for ns in ("raw", "curated", "quarantine"):
            for ident in lake.catalog.list_tables(ns):
                t = lake.catalog.load_table(ident)
                out[".".join(ident)] = [s.snapshot_id for s in t.snapshots()]
        return out


def _read_every_snapshot(settings: Settings) -> dict[str, list[int]]:
    from lake import open_lake

    rows: dict[str, list[int]] = {}
    with open_lake(settings.hub_db_url, settings.warehouse, s3=settings.s3_options()) as lake:
        for ns in ("raw", "curated", "quarantine"):
            for ident in lake.catalog.list_tables(ns):
                t = lake.catalog.load_table(ident)
                rows[".".join(ident)] = [
                    t.scan(snapshot_id=s.snapshot_id).to_arrow().num_rows for s in t.snapshots()
                ]
    return rows


@pytest.fixture(scope="module")
def backup_dir(source: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("bk") / "备份 2026-12"  # a space and Chinese characters
    take(source["settings"], dest, include_keys=True)
    return dest


def _fresh(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(var_dir=tmp_path / "var", **kw)


# ---- the round trips -------------------------------------------------------------------------


def test_restore_onto_a_fresh_hub_elsewhere_is_the_same_hub(
    source: dict[str, Any], backup_dir: Path, tmp_path: Path
) -> None:
    src = source["settings"]
    target = _fresh(tmp_path / "目标 hub")
    report = restore(target, backup_dir)
    assert content(target.hub_db_url) == content(src.hub_db_url)
    assert _lake_state(target) == _lake_state(src)
    assert report["certificates"]["signatures_verified"] > 900
    assert report["certificates"]["signatures_failed"] == 0
    assert report["audit"]["head_seq"] > 0 and report["serving_behind"] == []
    curated = _lake_state(src)["curated.rsj_sbjf_001"]
    assert len(curated) == 2  # the history came along, not only the current snapshot
    # the restored lake needs nothing of the old warehouse: move it away and read every snapshot
    old_lake = Path(src.var_dir) / "lake"
    away = old_lake.with_name("lake.away")
    expected = _read_every_snapshot(src)
    old_lake.rename(away)
    try:
        assert _read_every_snapshot(target) == expected
        # and the restored hub answers as the source did, with the same app credentials
        bodies = _calls(target, source["access"])
    finally:
        away.rename(old_lake)
    for title, body in source["bodies"].items():
        if "audit" in title.lower():
            continue  # the restored chain goes on: these very calls were appended to it
        assert _stable(bodies[title]) == _stable(body), title


def _stable(body: Any) -> Any:
    """A response minus what differs per call (request ids, times of issue)."""
    if isinstance(body, dict):
        return {
            k: _stable(v)
            for k, v in body.items()
            if k not in {"request_id", "issued_at", "copy_id", "expires_at"}
        }
    if isinstance(body, list):
        return [_stable(v) for v in body]
    return body


def test_restored_hub_syncs_on_from_where_it_was(
    source: dict[str, Any], backup_dir: Path, tmp_path: Path
) -> None:
    target = _fresh(tmp_path, connections=source["settings"].connections)
    restore(target, backup_dir)
    before = _lake_state(target)["curated.rsj_sbjf_001"]
    result = pipeline.sync("RSJ-SBJF-001", settings=target)
    from catalog.runs import record as runs

    engine = engine_for(target.hub_db_url)
    run = runs.get_run(engine, result["run_id"])
    assert run["status"] == "success", run
    assert run["base_snapshot_id"] == before[-1]
    # a new row gets a new id after the restored ones
    with engine.begin() as conn:
        top = conn.execute(sa.text("SELECT max(id) FROM hub_run_rejects")).scalar_one()
        new = conn.execute(sa.text(INSERT_REJECT)).scalar_one()
    assert new == top + 1


@pytest.mark.services
def test_sqlite_to_postgresql_and_back(
    source: dict[str, Any], backup_dir: Path, tmp_path: Path, pg_url: str
) -> None:
    on_pg = _fresh(tmp_path / "pg", database_url=pg_url)
    restore(on_pg, backup_dir)
    want = content(source["settings"].hub_db_url)
    assert content(pg_url) == want
    with sa.create_engine(pg_url, poolclass=sa.pool.NullPool).begin() as conn:
        top = conn.execute(sa.text("SELECT max(id) FROM hub_run_rejects")).scalar_one()
        new = conn.execute(sa.text(INSERT_REJECT)).scalar_one()
        assert new == top + 1  # the sequence was moved past the restored ids
        conn.execute(sa.text("DELETE FROM hub_run_rejects WHERE id = :i"), {"i": new})
    again = tmp_path / "from-pg"
    manifest = take(on_pg, again, include_keys=True)
    assert manifest["source"]["dialect"] == "postgresql"
    back = _fresh(tmp_path / "back")
    report = restore(back, again)
    assert content(back.hub_db_url) == want
    assert _lake_state(back) == _lake_state(source["settings"])
    assert (
        report["audit"]["head_hash"]
        == json.loads((backup_dir / "manifest.json").read_text())["audit_head"]["hash"]
    )


# ---- one read snapshot ---------------------------------------------------------------------------


def _record(i: int) -> audit.AuditRecord:
    return audit.AuditRecord(
        at=dt.datetime.now(dt.UTC),
        request_id=f"bk-{i}",
        actor_kind="anonymous",
        method="GET",
        path="/api/v1/x",
        action="test",
        decision="allow",
        status=200,
    )


@pytest.mark.parametrize("on", ["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def test_backup_reads_one_snapshot_while_the_hub_works(
    on: str,
    source: dict[str, Any],
    backup_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """Audit records appended while the backup runs (after it dumped hub_audit, before the head)
    are in neither: the restored chain verifies and ends at the head the backup recorded."""
    if on == "postgresql":
        hub = _fresh(tmp_path / "pg", database_url=request.getfixturevalue("pg_url"))
        restore(hub, backup_dir)
    else:
        hub = _fresh(tmp_path / "hub")
        restore(hub, backup_dir)
    engine = sa.create_engine(hub.hub_db_url)
    before = audit.verify(engine).last_seq
    real = take_mod._dump_table

    def dump_then_write(conn: sa.Connection, dest: Path, name: str, **kw: Any) -> dict[str, Any]:
        out = real(conn, dest, name, **kw)
        if name == "hub_audit":
            audit.append(engine, [_record(i) for i in range(3)])  # another connection, committed
        return out

    monkeypatch.setattr(take_mod, "_dump_table", dump_then_write)
    manifest = take(hub, tmp_path / "during")
    assert audit.verify(engine).last_seq == before + 3
    assert manifest["audit_head"]["seq"] == before
    assert next(t["rows"] for t in manifest["tables"] if t["name"] == "hub_audit") == before
    report = restore(_fresh(tmp_path / "after"), tmp_path / "during")
    assert report["audit"]["head_seq"] == before
    engine.dispose()


# ---- what must be refused ----------------------------------------------------------------------------


def _copy(backup_dir: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "copy"
    shutil.copytree(backup_dir, dest)
    return dest


def _untouched(target: Settings) -> None:
    if not (target.var_dir / "hub.db").exists():
        return  # not even created
    engine = sa.create_engine(target.hub_db_url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        names = [n for n in sa.inspect(conn).get_table_names() if n != "hub_alembic_version"]
    engine.dispose()
    assert not names, names  # no hub, serving or catalog table


def test_a_changed_table_file_is_refused_before_anything_is_written(backup_dir: Path, tmp_path: Path) -> None:
    bad = _copy(backup_dir, tmp_path)
    path = bad / "db" / "hub_grants.jsonl"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('"active"', '"activf"', 1), encoding="utf-8")  # same length
    target = _fresh(tmp_path)
    with pytest.raises(BackupError, match=r"db/hub_grants\.jsonl: SHA-256 differs"):
        restore(target, bad)
    _untouched(target)


def test_a_truncated_lake_file_is_refused(backup_dir: Path, tmp_path: Path) -> None:
    bad = _copy(backup_dir, tmp_path)
    data = sorted((bad / "lake").rglob("*.parquet"))[0]
    data.write_bytes(data.read_bytes()[:100])
    target = _fresh(tmp_path)
    with pytest.raises(
        BackupError, match=r"lake/.+\.parquet: 100 bytes, the manifest says \d+ \(the file was truncated"
    ):
        restore(target, bad)
    _untouched(target)


def test_an_interrupted_backup_is_not_a_backup(backup_dir: Path, tmp_path: Path) -> None:
    bad = _copy(backup_dir, tmp_path)
    (bad / "manifest.json").unlink()
    with pytest.raises(BackupError, match=r"manifest\.json is missing \(a backup writes it last"):
        check(bad)


def test_a_manifest_pointing_outside_the_backup_is_refused(backup_dir: Path, tmp_path: Path) -> None:
    bad = _copy(backup_dir, tmp_path)
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["tables"][0]["file"] = "../../etc/passwd"
    (bad / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match="unsafe path"):
        check(bad)


def test_an_edited_row_with_its_checksum_fixed_fails_verification(backup_dir: Path, tmp_path: Path) -> None:
    """Someone changes a certificate holder's name and an audit record, and fixes the manifest's
    checksums: the signatures and the chain still catch it, and the restore reports failure."""
    from sharehub.backup.archive import file_digest

    bad = _copy(backup_dir, tmp_path)
    manifest = json.loads((bad / "manifest.json").read_text())
    for name, old, new in (("hub_certificates", "有限公司", "无限公司"), ("hub_audit", '"allow"', '"deny"')):
        path = bad / "db" / f"{name}.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        hit = next(i for i, line in enumerate(lines) if i > 0 and old in line)
        lines[hit] = lines[hit].replace(old, new, 1)
        path.write_text("".join(lines), encoding="utf-8")
        entry = next(t for t in manifest["tables"] if t["name"] == name)
        entry.update(file_digest(path))
    (bad / "manifest.json").write_text(json.dumps(manifest))
    target = _fresh(tmp_path)
    with pytest.raises(BackupError) as caught:
        restore(target, bad)
    text = str(caught.value)
    assert "signature bad_signature" in text and "audit chain" in text
    # a restore that fails its checks leaves no hub behind: no tables, no lake files, no keys
    _untouched(target)
    assert not [p for p in (tmp_path / "var" / "lake").rglob("*") if p.is_file()]
    assert not (tmp_path / "var" / "keys").exists() or not any((tmp_path / "var" / "keys").iterdir())
    # and the same target takes a good backup afterwards
    assert restore(target, backup_dir)["certificates"]["signatures_failed"] == 0


def test_a_target_with_data_is_refused_and_left_as_it_was(source: dict[str, Any], backup_dir: Path) -> None:
    before = content(source["settings"].hub_db_url)
    with pytest.raises(
        BackupError, match=r"is not empty \(.*hold rows\): restore needs a new, empty database"
    ):
        restore(source["settings"], backup_dir)
    assert content(source["settings"].hub_db_url) == before


def test_a_warehouse_with_files_is_refused(backup_dir: Path, tmp_path: Path) -> None:
    target = _fresh(tmp_path)
    (tmp_path / "var" / "lake" / "curated").mkdir(parents=True)
    (tmp_path / "var" / "lake" / "curated" / "stray.parquet").write_bytes(b"x")
    with pytest.raises(BackupError, match=r"the target warehouse .* holds files"):
        restore(target, backup_dir)


def test_a_backup_from_a_newer_sharehub_is_refused(backup_dir: Path, tmp_path: Path) -> None:
    bad = _copy(backup_dir, tmp_path)
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["source"]["revision"] = "9999"
    (bad / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match="revision 9999, which this sharehub does not know"):
        restore(_fresh(tmp_path), bad)


def test_backup_into_a_non_empty_folder_is_refused(source: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "old.txt").write_text("keep me")
    with pytest.raises(BackupError, match="is not an empty folder"):
        take(source["settings"], tmp_path / "x")
    assert (tmp_path / "x" / "old.txt").read_text() == "keep me"


def test_keys_stay_out_unless_asked(source: dict[str, Any], backup_dir: Path, tmp_path: Path) -> None:
    manifest = take(source["settings"], tmp_path / "nokeys")
    assert manifest["keys"] is None and not (tmp_path / "nokeys" / "keys").exists()
    keys = json.loads((backup_dir / "manifest.json").read_text())["keys"]["files"]
    assert keys and all((backup_dir / f["path"]).stat().st_mode & 0o077 == 0 for f in keys)
    # without the private keys the restored hub still verifies every certificate signature
    report = restore(_fresh(tmp_path), tmp_path / "nokeys")
    assert report["certificates"]["signatures_failed"] == 0


# ---- S3: the files stay in the bucket ---------------------------------------------------------


@pytest.mark.s3
def test_s3_lake_backup_points_at_the_bucket(tmp_path: Path, s3_endpoint: Any) -> None:
    import pyarrow as pa

    from lake import open_lake

    bucket = s3_endpoint.new_bucket()
    s3 = {
        "endpoint": s3_endpoint.url,
        "bucket": bucket,
        "access_key": s3_endpoint.access_key,
        "secret_key": s3_endpoint.secret_key,
        "region": s3_endpoint.region,
    }
    hub = Settings(var_dir=tmp_path / "a", s3=s3)  # type: ignore[arg-type]
    engine_for(hub.hub_db_url)
    with open_lake(hub.hub_db_url, hub.warehouse, s3=hub.s3_options()) as lake:
        lake.ensure_table("curated", "S3-T-1", pa.schema([("k", pa.string()), ("v", pa.int64())]), key=["k"])
        lake.upsert("S3-T-1", pa.table({"k": ["a", "b"], "v": [1, 2]}), key=["k"], run_id="r1")
        lake.upsert("S3-T-1", pa.table({"k": ["c"], "v": [3]}), key=["k"], run_id="r2")
    manifest = take(hub, tmp_path / "bk")
    assert manifest["lake"]["kind"] == "s3" and not (tmp_path / "bk" / "lake").exists()
    (table,) = manifest["lake"]["tables"]
    assert table["total_records"] == 3 and all("sha256" not in f for f in table["files"])
    elsewhere = Settings(var_dir=tmp_path / "b", s3={**s3, "bucket": s3_endpoint.new_bucket()})  # type: ignore[arg-type]
    with pytest.raises(BackupError, match="its files stay in the bucket"):
        restore(elsewhere, tmp_path / "bk")
    same = Settings(var_dir=tmp_path / "c", s3=s3)  # type: ignore[arg-type]
    report = restore(same, tmp_path / "bk")
    assert report["lake"]["curated.s3_t_1"]["records"] == 3


# ---- the command line ---------------------------------------------------------------------------


def test_cli_backup_check_and_restore(
    source: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sharehub.cli.main import app

    runner = CliRunner()
    r = runner.invoke(app, ["backup", str(tmp_path / "b")])
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert "backup written to" in said and "keys not included" in said
    r = runner.invoke(app, ["restore", "--check", str(tmp_path / "b")])
    assert r.exit_code == 0 and "every file matches its manifest" in r.output
    r = runner.invoke(app, ["restore", str(tmp_path / "b")])  # onto the source itself: refused
    assert r.exit_code == 1 and "restore failed" in r.output and "Traceback" not in r.output
    monkeypatch.setenv("SHAREHUB_VAR_DIR", str(tmp_path / "new"))
    get_settings.cache_clear()
    r = runner.invoke(app, ["restore", "--json", str(tmp_path / "b")])
    get_settings.cache_clear()
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["certificates"]["signatures_failed"] == 0


def test_backup_files_are_private(backup_dir: Path) -> None:
    """A backup holds personal data (serving tables) and password hashes: owner-only."""
    for path in [backup_dir, *backup_dir.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def test_a_target_at_another_revision_is_refused(backup_dir: Path, tmp_path: Path) -> None:
    from catalog.db import migrate

    bad = _copy(backup_dir, tmp_path)
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["source"]["revision"] = "0002"  # an older hub's backup
    (bad / "manifest.json").write_text(json.dumps(manifest))
    target = _fresh(tmp_path)
    migrate.upgrade(target.hub_db_url)  # someone ran `sharehub db upgrade` first
    with pytest.raises(BackupError, match=rf"has a schema at revision {migrate.head()}, the backup 0002"):
        restore(target, bad)


def test_a_backup_taken_after_a_republish_restores_its_serving_tables_as_they_were(
    backup_dir: Path, tmp_path: Path
) -> None:
    """A dataset republished with a renamed field, not yet synced: its serving table still has
    the old columns, and that is what the backup holds and the restore rebuilds."""
    from sharehub.demo import DIRECTORY_DIR

    hub = _fresh(tmp_path / "源 hub")  # a warehouse path with a space and Chinese characters
    restore(hub, backup_dir)
    text = (DIRECTORY_DIR / "fy.yaml").read_text(encoding="utf-8")
    changed = tmp_path / "fy.yaml"
    changed.write_text(text.replace("- name: obligation\n", "- name: duty\n", 1), encoding="utf-8")
    publishing.publish_path(engine_for(hub.hub_db_url), changed)
    manifest = take(hub, tmp_path / "after republish")
    (entry,) = [t for t in manifest["tables"] if t["name"] == "srv_fy_sxbzxr_001"]
    assert "obligation" in [c["name"] for c in entry["shape"]["columns"]]
    again = _fresh(tmp_path / "again")
    restore(again, tmp_path / "after republish")
    assert content(again.hub_db_url) == content(hub.hub_db_url)


def test_portal_sessions_are_not_in_a_backup(backup_dir: Path) -> None:
    """A stolen backup must hold no usable session: the table exists in the source hub and is
    left out; a restored hub signs everyone in again."""
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    names = [t["name"] for t in manifest["tables"]]
    assert "hub_portal_sessions" not in names and "hub_objections" in names
