"""Audit retention (日志留存): archiving the chain's expired prefix, and verifying what is left,
what was archived and the archive files — adversarially, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from catalog import audit, publishing
from catalog.audit import AuditRecord, AuditWriter
from catalog.audit import archive as archive_mod
from catalog.audit.archive import ArchiveError, ArchiveTooSoon, Retention
from catalog.db import tables
from catalog.db.engine import engine_for
from catalog.directory.grades import DEFAULT_POLICY
from catalog.directory.model import DirectoryFile

UTC = dt.UTC
OLD = dt.datetime(2020, 1, 1, 8, 0, 0, 500, tzinfo=UTC)  # past general (3 y) and important (5 y)
NOW = dt.datetime(2026, 6, 1, 0, 0, tzinfo=UTC)  # the controlled clock of every archive run
BEFORE = dt.datetime(2023, 1, 1, tzinfo=UTC)
GEN, IMP, CORE = "ARC-GEN", "ARC-IMP", "ARC-CORE"


def _dataset(code: str, grade: str) -> dict[str, object]:
    return {
        "code": code,
        "name": f"{grade} 数据",
        "grade": grade,
        "share": {"type": "conditional", "condition": "依法履职"},
        "open": {"open": False},
        "primary_key": ["id"],
        "fields": [{"name": "id", "label": "编号"}, {"name": "v", "label": "值"}],
        "source": {"kind": "sql", "connection": "x", "table": "t"},
    }


def publish(engine: sa.Engine, *datasets: tuple[str, str]) -> None:
    doc = {
        "department": {"code": "ARC", "name": "归档测试局"},
        "datasets": [_dataset(code, grade) for code, grade in datasets],
    }
    publishing.publish(engine, DirectoryFile.model_validate(doc), source_file="arc.yaml")


def rec(i: int, *, at: dt.datetime | None = None, **kw: object) -> AuditRecord:
    base: dict[str, object] = {
        "at": (at or OLD) + dt.timedelta(seconds=i),
        "request_id": f"req-{i}",
        "actor_kind": "app",
        "method": "GET",
        "path": f"/api/v1/datasets/{GEN}/records/{i}",
        "action": "dataset.query",
        "decision": "allow",
        "status": 200,
        "row_count": 1,
        "app_id": "approval",
        "end_user": "张三",
        "case_number": f"CASE-{i}",
        "dataset_code": GEN,
        "fields": ["id", "v"],
    }
    base.update(kw)
    return AuditRecord(**base)  # type: ignore[arg-type]


def ready(engine: sa.Engine) -> sa.Engine:
    publish(engine, (GEN, "general"), (IMP, "important"), (CORE, "core"))
    return engine


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    return ready(engine_for(f"sqlite:///{tmp_path / 'hub.db'}"))


def fill(engine: sa.Engine) -> None:
    """seq 1-5 general (2 of them subject views, with index rows), 6 core, 7-10 general, all from
    2020: older than the general and important retentions, younger than core's."""
    records = [rec(i) for i in range(1, 6)]
    records[1] = rec(2, dataset_code=None, datasets={GEN: 1, IMP: 2}, action="subject.view")
    records[3] = rec(4, dataset_code=None, datasets=None, action="apps.list")  # no dataset: general
    records.append(rec(6, dataset_code=CORE))
    records += [rec(i) for i in range(7, 11)]
    audit.append(engine, records)


def count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def sql(engine: sa.Engine, text: str, **params: object) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(text), params)


def run(engine: sa.Engine, dest: Path, **kw: object) -> archive_mod.ArchiveResult:
    before = kw.pop("before", BEFORE)
    args: dict[str, object] = {"policy": DEFAULT_POLICY, "by": "auditor-li", "now": NOW}
    args.update(kw)
    return archive_mod.archive(engine, before, dest, **args)  # type: ignore[arg-type]


def state(engine: sa.Engine) -> tuple[int, int, int, tuple[int, str] | None]:
    return (
        count(engine, tables.audit),
        count(engine, tables.audit_datasets),
        count(engine, tables.audit_archives),
        audit.head(engine),
    )


# ---- retention -----------------------------------------------------------------------------


def test_a_records_retention_is_the_longest_of_its_datasets(engine: sa.Engine) -> None:
    publish(engine, ("ARC-LOW", "core"))
    publish(engine, ("ARC-LOW", "general"))  # lowered later: its old records keep core's time
    with engine.connect() as conn:
        r = Retention(conn, DEFAULT_POLICY)
    assert r.of(GEN, None)[0] == 1096  # 3 years, however many leap days they hold
    assert r.of(None, None) == (1096, "it concerns no dataset (general grade)")
    assert r.of(None, {GEN: 1, IMP: 0})[0] == 1827
    assert r.of(GEN, {CORE: 1})[0] == 3653
    assert r.of("GONE-OR-UNKNOWN", None)[0] == 3653  # unknown: the longest, conservatively
    assert r.of("ARC-LOW", None) == (3653, "dataset ARC-LOW, grade core")


def test_a_date_younger_than_the_shortest_retention_is_refused(engine: sa.Engine, tmp_path: Path) -> None:
    fill(engine)
    with pytest.raises(ArchiveTooSoon, match="younger than the shortest audit retention"):
        run(engine, tmp_path / "arc", before=NOW - dt.timedelta(days=365))
    assert state(engine)[2] == 0 and not (tmp_path / "arc").exists()


# ---- archiving -----------------------------------------------------------------------------


def test_the_expired_prefix_moves_and_a_core_record_stops_it(engine: sa.Engine, tmp_path: Path) -> None:
    fill(engine)
    assert count(engine, tables.audit_datasets) == 2
    res = run(engine, tmp_path / "arc")
    p = res.plan
    assert (p.first_seq, p.last_seq, p.records, p.stopped_at) == (1, 5, 5, 6)
    assert f"dataset {CORE}, grade core" in p.reason
    assert "under retention until 2030-01-01 08:00:06 UTC" in p.reason
    assert res.path is not None and res.file_sha256 is not None
    assert res.path.name == f"hub-audit-000000000001-000000000005-{res.file_sha256[:12]}.jsonl.gz"
    assert res.anchor_seq == 11
    kept, index_rows, archives, head = state(engine)
    assert (kept, index_rows, archives) == (6, 0, 1) and head is not None and head[0] == 11
    with engine.connect() as conn:
        row = conn.execute(sa.select(tables.audit_archives)).one()
        first_kept = conn.execute(sa.select(tables.audit).where(tables.audit.c.seq == 6)).one()
    assert (row.first_seq, row.last_seq, row.records, row.archived_by) == (1, 5, 5, "auditor-li")
    assert row.prev_hash == audit.GENESIS and row.last_hash == first_kept.prev_hash
    assert row.file_sha256 == res.file_sha256 and row.file_name == res.path.name

    report = audit.verify(engine)
    assert report.ok, report.problems
    assert (report.checked, report.archived, report.archives, report.last_seq) == (6, 5, 1, 11)

    # the file: a header, then every column of each record
    with gzip.open(res.path, "rt", encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    assert lines[0]["format"] == archive_mod.FORMAT
    assert {k: lines[0][k] for k in ("first_seq", "last_seq", "records", "index_rows")} == {
        "first_seq": 1,
        "last_seq": 5,
        "records": 5,
        "index_rows": 2,
    }
    assert [d["seq"] for d in lines[1:]] == [1, 2, 3, 4, 5]
    assert set(lines[1]) == {c.name for c in tables.audit.columns}
    assert lines[2]["datasets"] == {GEN: 1, IMP: 2}
    check = audit.verify_file(res.path, engine)
    assert check.ok and check.db == "matches" and check.records == 5, check.problems

    # appends go on; verify still starts from the archive
    audit.append(engine, [rec(i, at=NOW) for i in range(20, 30)])
    report = audit.verify(engine)
    assert report.ok, report.problems
    assert report.checked == 16 and report.last_seq == 21


def test_a_second_archive_continues_the_first(engine: sa.Engine, tmp_path: Path) -> None:
    fill(engine)
    run(engine, tmp_path / "arc")
    later = NOW + dt.timedelta(days=365 * 5)  # core's 10 years are over too
    res = run(engine, tmp_path / "arc", now=later, before=later - dt.timedelta(days=365 * 4))
    # everything goes, the first run's audit.archive record (seq 11) too: the new one vouches
    p = res.plan
    assert (p.first_seq, p.last_seq, p.stopped_at, p.reason) == (6, 11, None, "the log ends at seq 11")
    archives = tables.audit_archives
    with engine.connect() as conn:
        rows = conn.execute(sa.select(archives).order_by(archives.c.first_seq)).all()
    assert [(r.first_seq, r.last_seq) for r in rows] == [(1, 5), (6, 11)]
    assert rows[1].prev_hash == rows[0].last_hash
    report = audit.verify(engine)
    assert report.ok, report.problems
    assert (report.archived, report.archives, report.checked, report.last_seq) == (11, 2, 1, 12)
    # a third run with nothing old enough says so and changes nothing
    before = state(engine)
    res = run(engine, tmp_path / "arc", now=later, before=later - dt.timedelta(days=365 * 4))
    assert res.plan.records == 0 and res.path is None and "is not older than" in res.plan.reason
    assert state(engine) == before


def test_verify_starts_again_when_an_archive_commits_while_it_reads(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    verify_mod = sys.modules["catalog.audit.verify"]  # the package's `verify` is the function
    fill(engine)
    plain = verify_mod._batches
    calls: list[int] = []

    def racing(conn: sa.Connection, after: int, upto: int | None, batch: int):  # type: ignore[no-untyped-def]
        calls.append(after)
        if len(calls) == 1:  # the archive commits after verify read the (empty) archive rows
            run(engine, tmp_path / "arc")
        return plain(conn, after, upto, batch)

    monkeypatch.setattr(verify_mod, "_batches", racing)
    report = audit.verify(engine)
    assert report.ok, report.problems
    assert calls == [0, 5] and (report.archived, report.checked) == (5, 6)


def test_a_dry_run_changes_nothing(engine: sa.Engine, tmp_path: Path) -> None:
    fill(engine)
    before = state(engine)
    res = run(engine, tmp_path / "arc", dry_run=True)
    assert res.dry_run and res.plan.records == 5 and res.plan.stopped_at == 6 and res.path is None
    assert state(engine) == before
    assert not (tmp_path / "arc").exists()


def test_a_crash_between_the_file_and_the_commit(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(engine)
    before = state(engine)

    def crash(conn: sa.Connection) -> None:
        raise OSError("power lost")

    monkeypatch.setattr(archive_mod, "_before_delete", crash)
    with pytest.raises(OSError, match="power lost"):
        run(engine, tmp_path / "arc")
    assert state(engine) == before  # the archive row was rolled back with the rest
    [stray] = (tmp_path / "arc").iterdir()  # no temporary file left beside it
    assert stray.name.startswith("hub-audit-000000000001-000000000005-")
    report = audit.verify(engine)
    assert report.ok and report.archives == 0 and report.checked == 10
    check = audit.verify_file(stray, engine)
    assert not check.ok and check.db.startswith("no row (a stray")

    monkeypatch.undo()
    stray.write_bytes(b"half a file")  # even a torn stray is simply replaced by the rerun
    res = run(engine, tmp_path / "arc")
    assert res.path == stray and res.plan.records == 5
    assert audit.verify(engine).ok
    assert audit.verify_file(stray, engine).db == "matches"


def test_a_run_that_loses_the_race_leaves_the_committed_file_alone(engine: sa.Engine, tmp_path: Path) -> None:
    fill(engine)
    dest = tmp_path / "arc"
    # two runs plan the same prefix and write their files before either commits
    one = archive_mod.plan(engine, BEFORE, policy=DEFAULT_POLICY, now=NOW)
    two = archive_mod.plan(engine, BEFORE - dt.timedelta(days=1), policy=DEFAULT_POLICY, now=NOW)
    path_one = archive_mod._write_file(engine, one, dest)
    path_two = archive_mod._write_file(engine, two, dest)
    assert path_one != path_two  # other content, other name: neither overwrites the other
    sha_one = audit.verify_file(path_one).sha256
    archive_mod._commit(engine, one, path_one.name, sha_one, "first")
    with pytest.raises(ArchiveError, match="another archive run"):
        archive_mod._commit(engine, two, path_two.name, audit.verify_file(path_two).sha256, "second")
    assert audit.verify(engine).ok
    assert audit.verify_file(path_one, engine).db == "matches"
    assert audit.verify_file(path_two, engine).db == "differs"  # the loser's: not the archive row's
    with pytest.raises(ArchiveError, match="changed while being archived"):
        archive_mod._write_file(engine, two, dest)  # its records are gone: no file at all
    assert sorted(dest.iterdir()) == sorted([path_one, path_two])


def test_a_damaged_chain_is_not_archived(engine: sa.Engine, tmp_path: Path) -> None:
    fill(engine)
    sql(engine, "UPDATE hub_audit SET end_user = 'x' WHERE seq = 3")
    with pytest.raises(ArchiveError, match="seq 3: does not verify"):
        run(engine, tmp_path / "arc")
    assert state(engine)[2] == 0 and not (tmp_path / "arc").exists()


def test_max_records_per_run(engine: sa.Engine, tmp_path: Path) -> None:
    fill(engine)
    res = run(engine, tmp_path / "arc", max_records=2)
    assert (res.plan.last_seq, res.plan.stopped_at) == (2, 3) and "2 records per run" in res.plan.reason
    res = run(engine, tmp_path / "arc", max_records=2)
    assert (res.plan.first_seq, res.plan.last_seq) == (3, 4)
    assert audit.verify(engine).ok


# ---- tampering -----------------------------------------------------------------------------


@pytest.fixture
def archived(engine: sa.Engine, tmp_path: Path) -> Path:
    fill(engine)
    res = run(engine, tmp_path / "arc")
    assert res.path is not None and audit.verify(engine).ok
    return res.path


def test_records_deleted_without_an_archive_are_found(engine: sa.Engine, archived: Path) -> None:
    sql(engine, "DELETE FROM hub_audit WHERE seq IN (6, 7)")
    assert audit.verify(engine).problems == [
        "seq 6-7: removed without an archive (the archives end at seq 5, the log starts at seq 8)"
    ]


def test_records_or_index_rows_left_behind_are_found(engine: sa.Engine, archived: Path) -> None:
    sql(engine, "INSERT INTO hub_audit_datasets (dataset_code, seq) VALUES ('ARC-GEN', 2)")
    assert audit.verify(engine).problems == [
        "1 dataset index row(s) at or before seq 5 remain though archived"
    ]


def test_a_deleted_archive_row_is_found(engine: sa.Engine, archived: Path) -> None:
    sql(engine, "DELETE FROM hub_audit_archives")
    problems = audit.verify(engine).problems
    assert "seq 1-5: removed (the log starts at seq 6)" in problems
    assert any("the newest audit.archive record (seq 11) says 5" in p for p in problems)


@pytest.mark.parametrize(
    ("change", "found"),
    [
        ("last_hash = '" + "a" * 64 + "'", "prev_hash does not match the last_hash of the archive"),
        ("prev_hash = '" + "b" * 64 + "'", "prev_hash is not the genesis hash"),
        ("records = 4", "says 4 records for seq 1-5"),
        ("archived_by = 'someone-else'", "do not match what the audit.archive record at seq 11 vouches"),
        ("file_sha256 = '" + "c" * 64 + "'", "do not match what the audit.archive record at seq 11 vouches"),
        ("cutoff = '2024-01-01 00:00:00.000000'", "vouches for"),
    ],
)
def test_an_edited_archive_row_is_found(engine: sa.Engine, archived: Path, change: str, found: str) -> None:
    sql(engine, f"UPDATE hub_audit_archives SET {change}")
    report = audit.verify(engine)
    assert not report.ok and any(found in p for p in report.problems), report.problems


def test_records_deleted_and_an_archive_row_stretched_over_them_are_found(
    engine: sa.Engine, archived: Path
) -> None:
    # a DB admin deletes seq 6-7 and makes the archive row claim them, with the right hash
    with engine.connect() as conn:
        link = conn.execute(sa.text("SELECT prev_hash FROM hub_audit WHERE seq = 8")).scalar_one()
    sql(engine, "DELETE FROM hub_audit WHERE seq IN (6, 7)")
    sql(engine, "UPDATE hub_audit_archives SET last_seq = 7, records = 7, last_hash = :h", h=link)
    report = audit.verify(engine)
    assert report.problems == [
        "archive rows end at seq 7, the newest audit.archive record (seq 11) says 5: an archive row was "
        "added or removed outside `sharehub audit archive`"
    ]


def test_a_made_up_archive_row_without_its_voucher_is_found(engine: sa.Engine, tmp_path: Path) -> None:
    fill(engine)
    with engine.connect() as conn:
        link = conn.execute(sa.text("SELECT prev_hash FROM hub_audit WHERE seq = 4")).scalar_one()
    sql(engine, "DELETE FROM hub_audit WHERE seq <= 3")
    sql(engine, "DELETE FROM hub_audit_datasets WHERE seq <= 3")
    with engine.begin() as conn:
        conn.execute(
            tables.audit_archives.insert().values(
                first_seq=1, last_seq=3, prev_hash=audit.GENESIS, last_hash=link, records=3, cutoff=BEFORE,
                archived_at=NOW, archived_by="x", file_name="made-up", file_sha256="0" * 64,
            )
        )  # fmt: skip
    assert audit.verify(engine).problems == [
        "no audit.archive record in the log vouches for the 1 archive row(s) (the rows were made up, "
        "or that record was removed)"
    ]


def _rewrite(path: Path, edit: object) -> None:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    edit(lines)  # type: ignore[operator]
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(d, ensure_ascii=False) + "\n" for d in lines)


def test_an_edited_archive_file_is_found(engine: sa.Engine, archived: Path) -> None:
    def edit(lines: list[dict[str, object]]) -> None:
        lines[3]["end_user"] = "someone-else"

    _rewrite(archived, edit)
    check = audit.verify_file(archived, engine)
    assert "seq 3: changed (hash does not match its content)" in check.problems
    assert check.db == "differs" and any("file_sha256" in p for p in check.problems)
    alone = audit.verify_file(archived)
    assert alone.db == "not checked"
    assert alone.problems == ["seq 3: changed (hash does not match its content)"]


def test_a_record_removed_from_an_archive_file_is_found(engine: sa.Engine, archived: Path) -> None:
    def edit(lines: list[dict[str, object]]) -> None:
        del lines[2]

    _rewrite(archived, edit)
    problems = audit.verify_file(archived).problems
    assert "line 3: seq 3 where seq 2 belongs" in problems
    assert "the header says 5 records, the file holds 4" in problems


# ---- CLI -----------------------------------------------------------------------------------


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    from sharehub.settings import get_settings

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("SHAREHUB_DATABASE_URL", url)
    get_settings.cache_clear()
    yield ready(engine_for(url))
    get_settings.cache_clear()


def test_cli_archive_verify_archive_and_list(
    cli_db: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sharehub.cli import audit as cli_audit
    from sharehub.settings import get_settings

    fill(cli_db)  # 2020: past the general retention today as well
    runner = CliRunner()
    dest = tmp_path / "arc"
    res = runner.invoke(cli_audit.app, ["archive", "--before", "2999-01-01", "--to", str(dest)])
    assert res.exit_code == 2 and "younger than the shortest audit retention" in res.output
    res = runner.invoke(cli_audit.app, ["archive", "--before", "2021-01-01", "--to", str(dest), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "would archive seq 1-5 (5 records)" in res.output and "under retention" in res.output
    assert not dest.exists()
    res = runner.invoke(
        cli_audit.app, ["archive", "--before", "2021-01-01", "--to", str(dest), "--by", "li", "--json"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert (out["first_seq"], out["last_seq"], out["stopped_at"]) == (1, 5, 6)
    res = runner.invoke(cli_audit.app, ["verify"])
    assert res.exit_code == 0, res.output
    assert "audit log intact: 6 records" in res.output and "5 records in 1 archive(s)" in res.output

    res = runner.invoke(cli_audit.app, ["verify-archive", out["file"]])
    assert res.exit_code == 0, res.output
    assert "archive intact: seq 1-5 (5 records)" in res.output and "matches" in res.output

    res = runner.invoke(cli_audit.app, ["list"])
    assert res.exit_code == 0
    assert "records up to seq 5 (all older than 2021-01-01) are archived" in res.output
    res = runner.invoke(cli_audit.app, ["list", "--since", "2025-01-01"])
    assert "archived" not in res.output

    # on a machine without the hub DB the file is checked alone (and no empty DB is made)
    elsewhere = tmp_path / "elsewhere" / "hub.db"
    monkeypatch.setenv("SHAREHUB_DATABASE_URL", f"sqlite:///{elsewhere}")
    get_settings.cache_clear()
    res = runner.invoke(cli_audit.app, ["verify-archive", out["file"]])
    assert res.exit_code == 0, res.output
    assert "no hub DB here" in res.output and "not checked" in res.output and not elsewhere.exists()

    path = Path(out["file"])
    path.write_bytes(path.read_bytes()[:-20])  # a truncated copy
    res = runner.invoke(cli_audit.app, ["verify-archive", str(path), "--no-db"])
    assert res.exit_code == 1 and "archive damaged" in res.output


# ---- PostgreSQL ----------------------------------------------------------------------------


@pytest.mark.services
def test_archive_and_tamper_detection_on_postgresql(hub_pg_url: str, tmp_path: Path) -> None:
    engine = ready(engine_for(hub_pg_url))
    fill(engine)
    res = run(engine, tmp_path / "arc")
    assert (res.plan.last_seq, res.plan.stopped_at) == (5, 6)
    assert state(engine)[:3] == (6, 0, 1)
    assert audit.verify(engine, batch=3).ok
    assert audit.verify_file(res.path, engine).db == "matches"  # type: ignore[arg-type]
    sql(engine, "UPDATE hub_audit_archives SET archived_by = 'x'")
    assert not audit.verify(engine).ok
    sql(engine, "UPDATE hub_audit_archives SET archived_by = 'auditor-li'")
    assert audit.verify(engine).ok
    sql(engine, "DELETE FROM hub_audit WHERE seq = 6")
    assert audit.verify(engine).problems[0].startswith("seq 6: removed without an archive")
    engine.dispose()


@pytest.mark.services
def test_crash_before_the_commit_on_postgresql(
    hub_pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = ready(engine_for(hub_pg_url))
    fill(engine)
    before = state(engine)

    def crash(conn: sa.Connection) -> None:
        raise RuntimeError("killed")

    monkeypatch.setattr(archive_mod, "_before_delete", crash)
    with pytest.raises(RuntimeError):
        run(engine, tmp_path / "arc")
    assert state(engine) == before and audit.verify(engine).ok
    monkeypatch.undo()
    assert run(engine, tmp_path / "arc").plan.records == 5
    assert audit.verify(engine).ok
    engine.dispose()


@pytest.mark.services
def test_appends_while_archiving_on_postgresql_keep_one_chain(hub_pg_url: str, tmp_path: Path) -> None:
    engine = ready(engine_for(hub_pg_url))
    old = 3_000
    for start in range(0, old, 500):
        audit.append(engine, [rec(i) for i in range(start, start + 500)])
    stop = threading.Event()
    errors: list[BaseException] = []
    written: list[int] = []

    with AuditWriter(engine, batch_max=32, linger_s=0.001) as writer:

        def work(t: int) -> None:
            k = 0
            try:
                while not stop.is_set():
                    written.append(writer.write(rec(k, at=NOW, request_id=f"live-{t}-{k}")))
                    k += 1
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        results = []
        try:
            for _ in range(4):  # four runs of 700 while the writers go on
                seen = len(written)
                while len(written) < seen + 10 and not errors:  # appends land between the runs
                    time.sleep(0.005)
                results.append(run(engine, tmp_path / "arc", max_records=700))
                report = audit.verify(engine)  # verify while appends and archives go on
                assert report.ok, report.problems[:5]
        finally:
            stop.set()
            for th in threads:
                th.join()
    assert not errors, errors[:3]
    assert [r.plan.records for r in results] == [700, 700, 700, 700]
    assert [(r.plan.first_seq, r.plan.last_seq) for r in results] == [
        (1, 700),
        (701, 1400),
        (1401, 2100),
        (2101, 2800),
    ]
    report = audit.verify(engine)
    assert report.ok, report.problems[:5]
    head = audit.head(engine)
    assert head is not None and report.last_seq == head[0]
    # every record is in an archive or still in the log: 3,000 old, the live ones, 4 vouchers
    assert report.archived + report.checked == head[0] == old + len(written) + 4
    assert len(set(written)) == len(written)
    anchors = [r.anchor_seq for r in results]
    assert all(a is not None for a in anchors)
    # live records were appended before, between and after the runs' own records
    assert min(written) < anchors[0] and any(anchors[0] < w < anchors[-1] for w in written)
    for r in results:
        assert r.path is not None and audit.verify_file(r.path, engine).ok
    engine.dispose()


# ---- backup ---------------------------------------------------------------------------------


def test_a_backup_of_an_archived_log_restores_and_verifies(tmp_path: Path) -> None:
    from sharehub.backup import restore, take
    from sharehub.settings import Settings

    settings = Settings(var_dir=tmp_path / "var")
    engine = ready(engine_for(settings.hub_db_url))
    fill(engine)
    run(engine, tmp_path / "arc")
    manifest = take(settings, tmp_path / "bk")  # the archive rows go with it; the files do not
    assert manifest["audit_head"]["seq"] == 11
    report = restore(Settings(var_dir=tmp_path / "var2"), tmp_path / "bk")
    assert report["audit"]["records"] == 6 and report["audit"]["archived"] == 5
    assert report["audit"]["head_seq"] == 11
