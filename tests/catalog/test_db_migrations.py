"""The hub DB schema: Alembic migrations on PostgreSQL, the SQLite embedded path, `sharehub db`."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from catalog import audit, publishing
from catalog.audit import AuditRecord
from catalog.db import migrate, tables
from catalog.db.engine import engine_for
from catalog.db.migrate import SchemaNotCurrentError
from catalog.directory import store
from catalog.directory.loader import directory_files, load_directory_file
from catalog.serving import tables as serving
from sharehub.cli.db import app as db_app
from sharehub.settings import get_settings
from tests.paths import REPO

HUB_TABLES = set(tables.metadata.tables)


def table_names(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


def execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            for s in statements:
                conn.execute(sa.text(s))
    finally:
        engine.dispose()


def version_rows(url: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(f"SELECT version_num FROM {migrate.VERSION_TABLE}")).scalars())
    finally:
        engine.dispose()


def models_copy() -> sa.MetaData:
    md = sa.MetaData()
    for table in tables.metadata.tables.values():
        table.to_metadata(md)
    return md


def test_one_head_and_every_hub_table_is_managed() -> None:
    assert migrate.head() == "0006"
    assert all(migrate.include_name(t, "table", {}) for t in HUB_TABLES)
    for foreign in ("srv_scj_yyzz_001", "iceberg_tables", "iceberg_namespace_properties", "alembic_version"):
        assert not migrate.include_name(foreign, "table", {})
    assert not migrate.include_name(migrate.VERSION_TABLE, "table", {})
    # the packaged scripts are found without any alembic.ini
    assert (migrate.MIGRATIONS_DIR / "env.py").is_file()
    assert (migrate.MIGRATIONS_DIR / "script.py.mako").is_file()


# ---- PostgreSQL ---------------------------------------------------------------------------


@pytest.mark.services
def test_upgrade_creates_every_table_and_matches_the_models(pg_url: str) -> None:
    assert migrate.current(pg_url) is None
    before = migrate.check(pg_url)
    assert before[0] == "revision: database at none, migrations at 0006"
    assert {f"add table {t}" for t in HUB_TABLES} <= set(before)

    migrate.upgrade(pg_url)

    assert HUB_TABLES | {migrate.VERSION_TABLE} == table_names(pg_url)
    assert migrate.current(pg_url) == migrate.head()
    assert migrate.check(pg_url) == []  # the migrations create exactly the models


@pytest.mark.services
def test_check_reports_model_changes_that_have_no_migration(hub_pg_url: str) -> None:
    md = models_copy()
    md.tables["hub_apps"].append_column(sa.Column("homepage", sa.String(300)))
    md.tables["hub_departments"].c.name.type = sa.String(300)
    md.tables["hub_datasets"].c.schedule.nullable = False
    md.tables["hub_departments"].c.contact.server_default = sa.DefaultClause("n/a")
    sa.Index("ix_hub_audit_subject", md.tables["hub_audit"].c.subject)
    sa.UniqueConstraint(md.tables["hub_staff"].c.password_hash, name="uq_staff_password")
    md.remove(md.tables["hub_watermarks"])
    sa.Table("hub_notes", md, sa.Column("id", sa.Integer, primary_key=True))

    diffs = migrate.check(hub_pg_url, md)

    assert set(diffs) == {
        "add column hub_apps.homepage VARCHAR(300)",
        "type of hub_departments.name: database VARCHAR(200), models VARCHAR(300)",
        "nullable of hub_datasets.schedule: database True, models False",
        "server default of hub_departments.contact: database \"''::character varying\", models 'n/a'",
        "add index ix_hub_audit_subject on hub_audit (subject)",
        "add unique constraint uq_staff_password on hub_staff (password_hash)",
        "remove table hub_watermarks",
        "add table hub_notes",
    }
    assert migrate.check(hub_pg_url) == []


@pytest.mark.services
def test_check_reports_database_drift(hub_pg_url: str) -> None:
    execute(
        hub_pg_url,
        "ALTER TABLE hub_sync_runs ADD COLUMN note TEXT",
        "DROP INDEX ix_hub_certificates_holder_id",
        "ALTER TABLE hub_staff DROP CONSTRAINT hub_staff_department_code_fkey",
        "CREATE TABLE hub_leftover (id INTEGER PRIMARY KEY)",
    )
    assert set(migrate.check(hub_pg_url)) == {
        "remove column hub_sync_runs.note TEXT",
        "add index ix_hub_certificates_holder_id on hub_certificates (holder_id)",
        "add foreign key on hub_staff (department_code) -> hub_departments",
        "remove table hub_leftover",
    }


@pytest.mark.services
def test_upgrade_twice_is_a_no_op(pg_url: str) -> None:
    migrate.upgrade(pg_url)
    engine = engine_for(pg_url)
    publishing.publish_path(engine, REPO / "directory" / "scjgj.yaml")
    migrate.upgrade(pg_url)
    migrate.upgrade(pg_url, "0001")
    assert version_rows(pg_url) == [migrate.head()]
    assert [d.spec.code for d in store.list_datasets(engine)]  # the data survived
    assert migrate.check(pg_url) == []


_UPGRADE_CHILD = """
import sys, time
from pathlib import Path
from catalog.db import migrate
url, ready, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
ready.touch()
while not go.exists():  # a start line: every process upgrades at once
    time.sleep(0.01)
migrate.upgrade(url)
"""


@pytest.mark.services
def test_concurrent_upgrades_of_a_fresh_database_all_succeed(pg_url: str, tmp_path: Path) -> None:
    # processes, as in production (several containers running `sharehub db upgrade`): Alembic's
    # context is process-global, so threads would not be a fair test
    go = tmp_path / "go"
    readies = [tmp_path / f"ready-{i}" for i in range(3)]
    procs = [
        subprocess.Popen([sys.executable, "-c", _UPGRADE_CHILD, pg_url, str(r), str(go)], cwd=REPO)
        for r in readies
    ]
    try:
        while not all(r.exists() for r in readies) and all(p.poll() is None for p in procs):
            time.sleep(0.01)
        go.touch()
        codes = [p.wait(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert codes == [0, 0, 0]
    assert version_rows(pg_url) == [migrate.head()]
    assert migrate.check(pg_url) == []


@pytest.mark.services
def test_engine_for_refuses_a_database_that_was_not_upgraded(pg_url: str) -> None:
    with_password = pg_url.replace("postgres@", "postgres:s3cret-pw@")  # trust auth ignores it
    with pytest.raises(SchemaNotCurrentError, match=r"run `sharehub db upgrade`") as info:
        engine_for(with_password)
    assert "s3cret-pw" not in str(info.value)
    assert "postgres:***@" in str(info.value)
    assert table_names(pg_url) == set()  # engine_for creates nothing on a server database

    execute(pg_url, "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")  # Airflow's
    execute(pg_url, "INSERT INTO alembic_version VALUES ('a1b2c3d4e5f6')")
    with pytest.raises(SchemaNotCurrentError, match="no schema revision"):
        engine_for(pg_url)

    migrate.upgrade(pg_url)
    engine = engine_for(pg_url, pool_size=3, max_overflow=2)
    assert engine.pool.size() == 3  # type: ignore[attr-defined]
    assert engine.pool._max_overflow == 2  # type: ignore[attr-defined]
    assert engine_for(pg_url, pool_size=3, max_overflow=2) is engine
    assert version_rows(pg_url) == [migrate.head()]
    assert migrate.check(pg_url) == []  # Airflow's alembic_version is not ours


@pytest.mark.services
def test_engine_for_refuses_an_unknown_or_missing_revision(hub_pg_url: str) -> None:
    execute(hub_pg_url, f"UPDATE {migrate.VERSION_TABLE} SET version_num = 'f00dcafe'")
    with pytest.raises(SchemaNotCurrentError, match=r"f00dcafe.*newer sharehub"):
        engine_for(hub_pg_url)
    assert migrate.check(hub_pg_url) == ["revision: database at f00dcafe, migrations at 0006"]
    execute(hub_pg_url, f"DELETE FROM {migrate.VERSION_TABLE}")
    with pytest.raises(SchemaNotCurrentError, match="no schema revision"):
        engine_for(hub_pg_url)


def _record(i: int) -> AuditRecord:
    return AuditRecord(
        at=dt.datetime(2025, 3, 1, 8, 0, i, tzinfo=dt.UTC),
        request_id=f"req-{i}",
        actor_kind="app",
        method="GET",
        path=f"/api/v1/datasets/SCJ-LIC/records/{i}",
        action="dataset.query",
        decision="allow",
        status=200,
        row_count=1,
        app_id="approval",
        dataset_code="SCJ-LIC",
        fields=["uscc"],
    )


@pytest.mark.services
def test_core_flows_and_the_lake_catalog_on_the_upgraded_database(hub_pg_url: str, tmp_path: Path) -> None:
    from lake import open_lake

    engine = engine_for(hub_pg_url)
    files = directory_files(REPO / "directory")
    assert len(files) >= 5
    for f in files:
        assert {c.action for c in publishing.publish_path(engine, f)} <= {"created"}
    published = store.list_datasets(engine)
    assert len(published) == sum(len(load_directory_file(f).datasets) for f in files) >= 5
    assert audit.append(engine, [_record(i) for i in range(1, 6)]) == [1, 2, 3, 4, 5]
    assert audit.append(engine, [_record(6)]) == [6]
    report = audit.verify(engine)
    assert report.ok and report.checked == 6

    with open_lake(hub_pg_url, (tmp_path / "lake").as_uri()):
        pass
    names = table_names(hub_pg_url)
    assert {"iceberg_tables", "iceberg_namespace_properties"} <= names
    assert {serving.serving_table_name(p.spec.code) for p in published} <= names
    assert migrate.check(hub_pg_url) == []  # serving and Iceberg catalog tables are not ours


# ---- SQLite (embedded) --------------------------------------------------------------------


def test_engine_for_on_sqlite_creates_the_tables_and_stamps_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'var' / 'hub.db'}"
    assert migrate.current(url) is None
    assert not (tmp_path / "var").exists()  # asking does not create the file
    engine = engine_for(url)
    assert migrate.current(url) == migrate.head()
    assert table_names(url) >= HUB_TABLES
    assert migrate.check(url) == []
    migrate.upgrade(url)  # a no-op
    assert version_rows(url) == [migrate.head()]
    publishing.publish_path(engine, REPO / "directory" / "scjgj.yaml")
    assert migrate.check(url) == []  # srv_* tables are not compared


def test_a_pre_migration_sqlite_file_gets_stamped(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    old = sa.create_engine(url)
    tables.metadata.create_all(old)  # what engine_for did before migrations existed
    old.dispose()
    engine_for(url)
    assert version_rows(url) == [migrate.head()]


def test_sqlite_from_the_migrations_matches_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'hub.db'}"
    migrate.upgrade(url)
    assert migrate.check(url) == []
    engine_for(url)  # already at head: nothing to do
    assert version_rows(url) == [migrate.head()]


def test_sqlite_check_sees_a_column_missing_from_the_migrations(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    engine_for(url)
    md = models_copy()
    md.tables["hub_grants"].append_column(sa.Column("scope", sa.Text))
    assert migrate.check(url, md) == ["add column hub_grants.scope TEXT"]


def test_sqlite_newer_revision_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    engine_for(url)
    execute(url, f"UPDATE {migrate.VERSION_TABLE} SET version_num = 'f00dcafe'")
    with pytest.raises(SchemaNotCurrentError, match="newer sharehub"):
        engine_for(f"sqlite:///{tmp_path}/./hub.db")  # another URL string: not the cached engine


def test_engines_initialising_one_sqlite_file_at_once(tmp_path: Path) -> None:
    # separate engines (the URL strings differ, so engine_for does not share one) on one new file
    urls = [f"sqlite:///{tmp_path}{'/.' * i}/hub.db" for i in range(4)]
    go = threading.Barrier(len(urls), timeout=60)
    errors: list[BaseException] = []

    def work(url: str) -> None:
        try:
            go.wait()
            engine_for(url)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(u,)) for u in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert version_rows(urls[0]) == [migrate.head()]
    assert migrate.check(urls[0]) == []


# ---- sharehub db ----------------------------------------------------------------------------


@pytest.fixture
def hub_env(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    def use(url: str) -> None:
        monkeypatch.setenv("SHAREHUB_DATABASE_URL", url)
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()


@pytest.mark.services
def test_cli_on_postgresql(pg_url: str, hub_env) -> None:  # type: ignore[no-untyped-def]
    hub_env(pg_url.replace("postgres@", "postgres:s3cret-pw@"))
    runner = CliRunner()

    out = runner.invoke(db_app, ["url"])
    assert out.exit_code == 0
    assert out.stdout.strip() == pg_url.replace("postgres@", "postgres:***@")

    out = runner.invoke(db_app, ["current"])
    assert out.exit_code == 0 and out.stdout.startswith("none (head is 0006")

    out = runner.invoke(db_app, ["check"])
    assert out.exit_code == 1
    assert "add table hub_datasets" in out.stdout
    assert "s3cret-pw" not in out.output

    out = runner.invoke(db_app, ["upgrade", "--revision", "nope"])
    assert out.exit_code == 1 and "nope" in out.stderr
    assert migrate.current(pg_url) is None

    out = runner.invoke(db_app, ["upgrade"])
    assert out.exit_code == 0, out.output
    assert "upgraded from an empty database to revision 0006" in out.stdout
    assert "s3cret-pw" not in out.output

    out = runner.invoke(db_app, ["upgrade"])
    assert out.exit_code == 0 and "already at revision 0006" in out.stdout

    out = runner.invoke(db_app, ["current"])
    assert out.stdout.strip() == "0006 (head)"

    out = runner.invoke(db_app, ["check"])
    assert out.exit_code == 0 and "in sync with the models (revision 0006)" in out.stdout

    execute(pg_url, "ALTER TABLE hub_apps DROP COLUMN description")
    out = runner.invoke(db_app, ["check"])
    assert out.exit_code == 1
    assert out.stdout.strip() == "add column hub_apps.description TEXT"


def test_cli_on_the_embedded_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHAREHUB_VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        out = runner.invoke(db_app, ["url"])
        assert out.stdout.strip() == f"sqlite:///{(tmp_path / 'var' / 'hub.db').resolve()}"
        out = runner.invoke(db_app, ["upgrade"])
        assert out.exit_code == 0, out.output
        assert (tmp_path / "var" / "hub.db").is_file()
        out = runner.invoke(db_app, ["check"])
        assert out.exit_code == 0, out.output
    finally:
        get_settings.cache_clear()


@pytest.mark.services
def test_0002_keeps_data_and_fixes_duplicate_grants(pg_url: str) -> None:
    """A hub at 0001 with data — two active grants for one pair (a race 0001 could lose), an
    8-digit certificate serial, audit records — upgrades to 0002 with nothing lost: the newest
    grant stays active, the serial and identifier stay, the chain verifies and a department
    still finds its old records."""
    migrate.upgrade(pg_url, "0001")
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    records = [
        AuditRecord(
            at=t0, request_id=f"r{i}", actor_kind="app", method="GET", path="/api/v1/x",
            action="records.lookup",
            decision="allow", status=200, app_id="app-1", dataset_code=code,
        )
        for i, code in enumerate(["SCJ-LIC", None, "GAJ-HJRK-001"], 1)
    ]  # fmt: skip
    prev, rows = audit.GENESIS, []
    for seq, r in enumerate(records, 1):
        h = audit.record_hash(prev, seq, audit.normalise(r))
        rows.append((seq, r, prev, h))
        prev = h
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)

    def insert(conn: sa.Connection, table: str, **values: object) -> None:
        """A row of the 0001 schema, by name (the models describe 0002)."""
        conn.execute(sa.table(table, *(sa.column(k) for k in values)).insert().values(**values))

    try:
        with engine.begin() as conn:
            insert(conn, "hub_departments", code="SCJ", name="市监局", contact="", updated_at=t0)
            insert(
                conn, "hub_apps", app_id="app-1", name="a", department_code="SCJ", description="",
                status="active", secret_hash="x", secret_generation=1, secret_rotated_at=t0, created_at=t0,
            )  # fmt: skip
            for gid in (1, 2):
                insert(
                    conn, "hub_grants", id=gid, app_id="app-1", dataset_code="SCJ-LIC", application_id=gid,
                    fields='["uscc"]', clear_fields="[]", valid_from=t0, rate_limit=600, status="active",
                    created_at=t0,
                )  # fmt: skip
            insert(
                conn, "hub_certificates", identifier="old-ident", type_code="T", dataset_code="SCJ-LIC",
                record_key="k", number="n", holder_id="h", holder_name="hn", issuer_code="i",
                issuer_name="in",
                status="valid", serial=7, version=1, face="{}", face_sha256="x", issued_at=t0, updated_at=t0,
                run_id="r1",
            )  # fmt: skip
            for seq, r, p, h in rows:
                insert(
                    conn, "hub_audit", seq=seq, at=r.at, request_id=r.request_id, actor_kind="app",
                    app_id="app-1", method="GET", path="/api/v1/x", action="records.lookup",
                    dataset_code=r.dataset_code, decision="allow", status=200, row_count=0, prev_hash=p,
                    hash=h,
                )  # fmt: skip
            insert(conn, "hub_audit_head", id=1, seq=3, hash=prev)
    finally:
        engine.dispose()
    migrate.upgrade(pg_url)
    assert migrate.check(pg_url) == []
    hub = engine_for(pg_url)
    with hub.connect() as conn:
        grants = conn.execute(sa.text("SELECT id, status, revoked_by FROM hub_grants ORDER BY id")).all()
        serial = conn.execute(sa.text("SELECT serial FROM hub_certificates")).scalar_one()
    assert [tuple(g) for g in grants] == [(1, "revoked", "migration"), (2, "active", None)]
    assert serial == 7
    report = audit.verify(hub)
    assert report.ok and report.checked == 3, report.problems
    # a department's auditor still finds its old records (by their dataset_code)
    assert [r["seq"] for r in audit.query(hub, dataset_codes=["GAJ-HJRK-001"])] == [3]
