"""The hash-chained audit log: hashing, appending, group commit, verify, query, CLI."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import multiprocessing
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from catalog import audit
from catalog.audit import GENESIS, AuditError, AuditRecord, AuditWriter
from catalog.audit.writer import _PgAppender
from catalog.db import tables
from catalog.db.engine import engine_for

T0 = dt.datetime(2025, 3, 1, 8, 0, 0, 123456, tzinfo=dt.UTC)


def rec(i: int, **kw: object) -> AuditRecord:
    base: dict[str, object] = {
        "at": T0 + dt.timedelta(seconds=i),
        "request_id": f"req-{i}",
        "actor_kind": "app",
        "method": "GET",
        "path": f"/api/v1/datasets/SCJ-LIC/records/{i}",
        "action": "dataset.query",
        "decision": "allow" if i % 3 else "deny",
        "status": 200 if i % 3 else 403,
        "row_count": i % 5,
        "app_id": "approval" if i % 2 else "portal",
        "end_user": "张三",
        "case_number": f"CASE-{i}",
        "dataset_code": "SCJ-LIC" if i % 4 else "GA-ID",
        "subject": "91330100MA27XYZ12K",
        "fields": ["uscc", "ent_name"],
        "reason": None if i % 3 else "no_grant",
    }
    base.update(kw)
    return AuditRecord(**base)  # type: ignore[arg-type]


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    return engine_for(f"sqlite:///{tmp_path / 'hub.db'}")


def fill(engine: sa.Engine, n: int, chunk: int = 9) -> None:
    for start in range(1, n + 1, chunk):
        audit.append(engine, [rec(i) for i in range(start, min(start + chunk, n + 1))])


def sql(engine: sa.Engine, text: str, **params: object) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(text), params)


# ---- hashing -------------------------------------------------------------------------------


def test_record_hash_matches_the_documented_byte_layout() -> None:
    r = AuditRecord(
        at=dt.datetime(2025, 3, 1, 16, 0, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        request_id="r1",
        actor_kind="app",
        method="GET",
        path='/a"b',
        action="dataset.query",
        decision="allow",
        status=200,
        row_count=2,
        app_id="approval",
        end_user="张三",
        fields=["uscc", "名称"],
    )
    expected = (
        '{"action":"dataset.query","actor_kind":"app","app_id":"approval","at":"2025-03-01T08:00:00.000005Z",'
        '"case_number":null,"certificate_id":null,"dataset_code":null,"decision":"allow","end_user":"张三",'
        '"fields":["uscc","名称"],"method":"GET","path":"/a\\"b","reason":null,"request_id":"r1",'
        '"row_count":2,"seq":7,"staff":null,"status":200,"subject":null}'
    )
    assert audit.hash_input(7, r) == expected
    prev = "ab" * 32
    assert audit.record_hash(prev, 7, r) == hashlib.sha256((prev + expected).encode("utf-8")).hexdigest()
    assert audit.record_hash(prev, 8, r) != audit.record_hash(prev, 7, r)
    with pytest.raises(ValueError):
        audit.record_hash(prev, 7, rec(1, at=dt.datetime(2025, 1, 1)))


def test_datasets_and_query_join_the_hash_only_when_set() -> None:
    """Records from before migration 0002 (no datasets, no query) keep their hashes; a record
    that has either carries it in the canonical JSON, in key order."""
    plain = rec(1)
    assert '"datasets"' not in audit.hash_input(1, plain) and '"query"' not in audit.hash_input(
        1, plain
    )
    multi = rec(1, dataset_code=None, datasets={"RSJ-PEN": 2, "GA-ID": 0}, query='{"id_no":"1"}')
    text = audit.hash_input(1, multi)
    assert '"datasets":{"GA-ID":0,"RSJ-PEN":2}' in text and '"query":"{\\"id_no\\":\\"1\\"}"' in text
    assert list(json.loads(text)) == sorted(json.loads(text))
    assert audit.record_hash(GENESIS, 1, multi) != audit.record_hash(GENESIS, 1, rec(1, dataset_code=None))


def test_the_dataset_index_is_checked_against_the_records(engine: sa.Engine) -> None:
    audit.append(engine, [rec(1), rec(2, dataset_code=None, datasets={"GA-ID": 1, "RSJ-PEN": 0}), rec(3)])
    assert audit.verify(engine).ok
    # a department's auditor finds the multi-dataset record through the index
    assert [r["seq"] for r in audit.query(engine, dataset_codes=["RSJ-PEN"])] == [2]
    sql(engine, "DELETE FROM hub_audit_datasets WHERE seq = 2 AND dataset_code = 'RSJ-PEN'")
    assert audit.query(engine, dataset_codes=["RSJ-PEN"]) == []
    report = audit.verify(engine)
    assert report.problems == [
        "seq 2: missing from the dataset index under RSJ-PEN (hidden from its auditors)"
    ]
    sql(engine, "INSERT INTO hub_audit_datasets (dataset_code, seq) VALUES ('RSJ-PEN', 2), ('XX', 3)")
    assert audit.verify(engine).problems == [
        "seq 3: listed in the dataset index under XX, which the record does not name"
    ]


def test_normalise_rejects_malformed_records_and_cleans_strings() -> None:
    for bad in ({"decision": "maybe"}, {"actor_kind": "robot"}, {"status": "200"}, {"fields": "uscc"}):
        with pytest.raises(ValueError):
            audit.normalise(rec(1, **bad))
    clean = audit.normalise(rec(1, path="/x\x00y" + "p" * 600, subject="\udc80bad"))
    assert clean.path.startswith("/x\\x00y") and len(clean.path) == 500
    assert clean.subject == "\\udc80bad"
    clean.subject.encode("utf-8")


# ---- appending and verifying ----------------------------------------------------------------


def test_a_long_chain_verifies_and_the_head_follows(engine: sa.Engine) -> None:
    fill(engine, 300, chunk=37)
    report = audit.verify(engine, batch=64)
    assert report.ok, report.problems
    assert report.checked == 300 and report.last_seq == 300
    with engine.connect() as conn:
        head = conn.execute(sa.select(tables.audit_head)).one()
        first = conn.execute(sa.select(tables.audit).where(tables.audit.c.seq == 1)).one()
    assert (head.seq, head.hash) == (300, report.last_hash)
    assert first.prev_hash == GENESIS


def test_append_returns_consecutive_seqs_and_stores_utc(engine: sa.Engine) -> None:
    assert audit.append(engine, []) == []
    assert audit.append(engine, [rec(1), rec(2)]) == [1, 2]
    shanghai = dt.timezone(dt.timedelta(hours=8))
    assert audit.append(engine, [rec(3, at=T0.astimezone(shanghai))]) == [3]
    rows = audit.query(engine)
    assert [r["seq"] for r in rows] == [1, 2, 3]
    assert rows[2]["at"] == T0 and rows[2]["at"].tzinfo is not None
    assert audit.verify(engine).ok


def test_concurrent_appends_on_sqlite_keep_one_chain(engine: sa.Engine) -> None:
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for k in range(10):
                audit.append(engine, [rec(t * 100 + k, request_id=f"t{t}-{k}-{j}") for j in range(3)])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    report = audit.verify(engine)
    assert report.ok, report.problems
    assert report.checked == 240


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("subject", "110101199003077777"),
        ("decision", "deny"),
        ("row_count", 99),
        ("fields", '["uscc","ent_name","legal_rep"]'),
        ("at", "2025-03-01 09:00:00.000000"),
        ("app_id", None),
    ],
)
def test_an_edited_field_is_named(engine: sa.Engine, column: str, value: object) -> None:
    fill(engine, 40)
    sql(engine, f"UPDATE hub_audit SET {column} = :v WHERE seq = 17", v=value)
    report = audit.verify(engine)
    assert not report.ok
    assert report.problems == ["seq 17: changed (hash does not match its content)"]


def test_a_record_rewritten_with_a_fresh_hash_breaks_the_next_link(engine: sa.Engine) -> None:
    fill(engine, 40)
    with engine.begin() as conn:
        row = conn.execute(sa.select(tables.audit).where(tables.audit.c.seq == 17)).one()
        forged = rec(17, row_count=0, fields=[])
        conn.execute(
            tables.audit.update()
            .where(tables.audit.c.seq == 17)
            .values(
                row_count=0, fields=[], hash=audit.record_hash(row.prev_hash, 17, audit.normalise(forged))
            )
        )
    report = audit.verify(engine)
    assert len(report.problems) == 1
    assert report.problems[0].startswith("seq 18: prev_hash does not match the hash of seq 17")


def test_the_last_record_rewritten_with_a_fresh_hash_is_caught_by_the_head(engine: sa.Engine) -> None:
    fill(engine, 40)
    with engine.begin() as conn:
        row = conn.execute(sa.select(tables.audit).where(tables.audit.c.seq == 40)).one()
        new_hash = audit.record_hash(row.prev_hash, 40, audit.normalise(rec(40, row_count=3)))
        conn.execute(tables.audit.update().where(tables.audit.c.seq == 40).values(row_count=3, hash=new_hash))
    report = audit.verify(engine)
    assert report.problems == ["seq 40: hash does not match the head (the last record was rewritten)"]


def test_a_removed_middle_record_is_named(engine: sa.Engine) -> None:
    fill(engine, 40)
    sql(engine, "DELETE FROM hub_audit WHERE seq = 20")
    report = audit.verify(engine)
    assert report.problems == ["seq 20: removed (chain jumps from 19 to 21)"]


def test_removed_ranges_and_the_first_record_are_named(engine: sa.Engine) -> None:
    fill(engine, 40)
    sql(engine, "DELETE FROM hub_audit WHERE seq IN (1, 10, 11, 12)")
    report = audit.verify(engine)
    assert report.problems == [
        "seq 1: removed (the log starts at seq 2)",
        "seq 10-12: removed (chain jumps from 9 to 13)",
    ]


def test_a_removed_tail_is_named(engine: sa.Engine) -> None:
    fill(engine, 40)
    sql(engine, "DELETE FROM hub_audit WHERE seq > 38")
    report = audit.verify(engine)
    assert report.problems == ["tail removed: head says last seq 40, log ends at 38"]
    assert report.checked == 38


def test_rows_slipped_in_after_the_head_are_named(engine: sa.Engine) -> None:
    fill(engine, 10)
    with engine.begin() as conn:
        row = conn.execute(sa.select(tables.audit).where(tables.audit.c.seq == 10)).one()
        r = audit.normalise(rec(11))
        values = {**r.__dict__, "seq": 11, "prev_hash": row.hash, "hash": audit.record_hash(row.hash, 11, r)}
        conn.execute(tables.audit.insert().values(**values))
    report = audit.verify(engine)
    assert len(report.problems) == 1 and "after the head" in report.problems[0]
    assert "seq 11" in report.problems[0]


def test_a_missing_head_row_is_named_and_stops_appends(engine: sa.Engine) -> None:
    fill(engine, 5)
    sql(engine, "DELETE FROM hub_audit_head")
    assert audit.verify(engine).problems == ["head row is missing (the log has 5 records)"]
    with pytest.raises(AuditError, match="head row is missing"):
        audit.append(engine, [rec(6)])


def _swap_seqs(engine: sa.Engine, a: int, b: int) -> None:
    sql(engine, "UPDATE hub_audit SET seq = -1 WHERE seq = :a", a=a)
    sql(engine, "UPDATE hub_audit SET seq = :a WHERE seq = :b", a=a, b=b)
    sql(engine, "UPDATE hub_audit SET seq = :b WHERE seq = -1", b=b)


_CONTENT = [c.name for c in tables.audit.columns if c.name not in {"seq", "prev_hash", "hash"}]


def _swap_contents(engine: sa.Engine, a: int, b: int) -> None:
    """Swap every content column of two rows, leaving seq, prev_hash and hash in place."""
    with engine.begin() as conn:
        ra = conn.execute(sa.select(tables.audit).where(tables.audit.c.seq == a)).one()._mapping
        rb = conn.execute(sa.select(tables.audit).where(tables.audit.c.seq == b)).one()._mapping
        for seq, src in ((a, rb), (b, ra)):
            conn.execute(
                tables.audit.update().where(tables.audit.c.seq == seq).values(**{c: src[c] for c in _CONTENT})
            )


@pytest.mark.parametrize("swap", [_swap_seqs, _swap_contents])
@pytest.mark.parametrize(("a", "b"), [(20, 21), (5, 30)])
def test_a_reordered_pair_is_named_as_a_reorder(engine: sa.Engine, swap: object, a: int, b: int) -> None:
    fill(engine, 40)
    swap(engine, a, b)  # type: ignore[operator]
    report = audit.verify(engine)
    assert report.problems == [f"seq {a} and {b}: reordered (each holds the other's record)"]


def test_a_rotation_of_three_names_where_each_record_belongs(engine: sa.Engine) -> None:
    fill(engine, 40)
    sql(engine, "UPDATE hub_audit SET seq = -1 WHERE seq = 10")
    sql(engine, "UPDATE hub_audit SET seq = 10 WHERE seq = 11")
    sql(engine, "UPDATE hub_audit SET seq = 11 WHERE seq = 12")
    sql(engine, "UPDATE hub_audit SET seq = 12 WHERE seq = -1")
    report = audit.verify(engine)
    assert report.problems == [
        "seq 10: reordered (holds the record that belongs at seq 11)",
        "seq 11: reordered (holds the record that belongs at seq 12)",
        "seq 12: reordered (holds the record that belongs at seq 10)",
    ]


def test_verify_reads_in_bounded_batches(engine: sa.Engine) -> None:
    fill(engine, 50)
    selects: list[tuple[str, object]] = []

    def spy(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "FROM hub_audit" in statement and "ORDER BY hub_audit.seq" in statement:
            selects.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", spy)
    try:
        assert audit.verify(engine, batch=7).ok
    finally:
        sa.event.remove(engine, "before_cursor_execute", spy)
    assert len(selects) == math.ceil(50 / 7)  # 7 full pages and the last with 1 row
    for statement, params in selects:
        assert "LIMIT" in statement and 7 in tuple(params)  # type: ignore[arg-type]

    # tampering right at the page boundaries is found exactly as with one big page
    _swap_seqs(engine, 7, 8)
    sql(engine, "DELETE FROM hub_audit WHERE seq = 14")
    sql(engine, "UPDATE hub_audit SET subject = 'x' WHERE seq = 15")
    sql(engine, "UPDATE hub_audit SET reason = 'forged' WHERE seq = 50")
    small, big = audit.verify(engine, batch=7), audit.verify(engine)
    assert (
        small.problems
        == big.problems
        == [
            "seq 7 and 8: reordered (each holds the other's record)",
            "seq 14: removed (chain jumps from 13 to 15)",
            "seq 15: changed (hash does not match its content)",
            "seq 50: changed (hash does not match its content)",
        ]
    )


def test_verify_of_an_empty_log_is_ok(engine: sa.Engine) -> None:
    report = audit.verify(engine)
    assert report.ok and report.checked == 0 and report.last_hash == GENESIS


# ---- query ---------------------------------------------------------------------------------


def test_query_filters_and_pages(engine: sa.Engine) -> None:
    fill(engine, 40)
    assert {r["app_id"] for r in audit.query(engine, app_id="approval", limit=100)} == {"approval"}
    ga = audit.query(engine, dataset_codes=["GA-ID"], limit=100)
    assert [r["seq"] for r in ga] == list(range(4, 41, 4))
    assert audit.query(engine, dataset_codes=[]) == []
    since, until = T0 + dt.timedelta(seconds=10), T0 + dt.timedelta(seconds=15)
    assert [r["seq"] for r in audit.query(engine, since=since, until=until)] == [10, 11, 12, 13, 14]
    shanghai = dt.timezone(dt.timedelta(hours=8))
    assert [r["seq"] for r in audit.query(engine, since=since.astimezone(shanghai), limit=2)] == [10, 11]
    denied = audit.query(engine, decision="deny", limit=100)
    assert denied and all(r["decision"] == "deny" and r["reason"] == "no_grant" for r in denied)
    pages, after = [], None
    while page := audit.query(engine, limit=6, after_seq=after):
        pages.append([r["seq"] for r in page])
        after = page[-1]["seq"]
    assert len(pages) == 7 and [s for p in pages for s in p] == list(range(1, 41))
    row = audit.query(engine, limit=1)[0]
    assert row["fields"] == ["uscc", "ent_name"] and row["end_user"] == "张三"
    assert row["at"] == T0 + dt.timedelta(seconds=1)


# ---- the group-commit writer ---------------------------------------------------------------


def test_writer_group_commit_from_16_threads(engine: sa.Engine) -> None:
    results: dict[str, int] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    with AuditWriter(engine, batch_max=32) as writer:

        def work(t: int) -> None:
            start.wait()
            for k in range(25):
                rid = f"t{t}-{k}"
                try:
                    seq = writer.write(rec(t * 25 + k, request_id=rid))
                except BaseException as exc:
                    errors.append(exc)
                    return
                with engine.connect() as conn:  # committed: visible from another connection
                    stored = conn.execute(
                        sa.select(tables.audit.c.request_id).where(tables.audit.c.seq == seq)
                    ).scalar()
                assert stored == rid
                with lock:
                    results[rid] = seq

        threads = [threading.Thread(target=work, args=(t,)) for t in range(16)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert not errors
    assert len(results) == 400 and sorted(results.values()) == list(range(1, 401))
    report = audit.verify(engine)
    assert report.ok, report.problems
    assert report.checked == 400


def test_writer_surfaces_a_db_failure_and_recovers(engine: sa.Engine) -> None:
    writer = AuditWriter(engine)
    try:
        assert writer.write(rec(1)) == 1
        tables.audit.drop(engine)
        with pytest.raises(AuditError, match="audit append failed"):
            writer.write(rec(2))
        tables.audit.create(engine)
        sql(engine, "DELETE FROM hub_audit_datasets")
        sql(engine, "UPDATE hub_audit_head SET seq = 0, hash = :g", g=GENESIS)
        assert writer.write(rec(3)) == 1  # the thread survived the failure
    finally:
        writer.close()
    assert audit.verify(engine).ok


def test_writer_rejects_a_malformed_record_without_touching_others(engine: sa.Engine) -> None:
    with AuditWriter(engine) as writer:
        with pytest.raises(AuditError, match="decision"):
            writer.write(rec(1, decision="perhaps"))
        assert writer.write(rec(2)) == 1


def test_writer_never_returns_before_the_commit(engine: sa.Engine, tmp_path: Path) -> None:
    """While another connection holds SQLite's write lock, write() times out instead of returning."""
    import sqlite3

    writer = AuditWriter(engine, linger_s=0)
    blocker = sqlite3.connect(str(tmp_path / "hub.db"), isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(AuditError, match="timed out"):
            writer.write(rec(1), timeout=0.3)
        assert audit.query(engine) == []
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert writer.write(rec(2)) >= 1
    writer.close()
    assert audit.verify(engine).ok


def test_close_flushes_and_later_writes_fail(engine: sa.Engine) -> None:
    writer = AuditWriter(engine, linger_s=0.05)
    seqs: list[int] = []
    threads = [threading.Thread(target=lambda i=i: seqs.append(writer.write(rec(i)))) for i in range(5)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    writer.close()
    writer.close()
    assert sorted(seqs) == [1, 2, 3, 4, 5]
    with pytest.raises(AuditError, match="closed"):
        writer.write(rec(6))


def _async_writes(writer: AuditWriter, n: int) -> list[int]:
    import asyncio

    async def main() -> list[int]:
        writes = (writer.write_async(rec(i, request_id=f"a-{i}")) for i in range(n))
        return list(await asyncio.gather(*writes))

    return asyncio.run(main())


def test_async_writes_share_commits_and_form_one_chain(engine: sa.Engine) -> None:
    with AuditWriter(engine, batch_max=8) as writer:
        seqs = _async_writes(writer, 40)
        assert writer.write(rec(99)) == 41  # threads and tasks share the writer
    assert sorted(seqs) == list(range(1, 41))
    report = audit.verify(engine)
    assert report.ok and report.checked == 41
    with pytest.raises(AuditError, match="closed"):
        _async_writes(writer, 1)


def test_async_write_refuses_a_malformed_record_and_times_out_uncommitted(
    engine: sa.Engine, tmp_path: Path
) -> None:
    import asyncio
    import sqlite3

    writer = AuditWriter(engine, linger_s=0)
    try:
        with pytest.raises(AuditError, match="decision"):
            asyncio.run(writer.write_async(rec(1, decision="perhaps")))
        blocker = sqlite3.connect(str(tmp_path / "hub.db"), isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(AuditError, match="timed out"):
                asyncio.run(writer.write_async(rec(2), timeout=0.3))
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
    finally:
        writer.close()
    assert audit.verify(engine).ok


# ---- PostgreSQL ----------------------------------------------------------------------------


def _pg_child(url: str, tag: str, go: object) -> None:
    engine = engine_for(url)
    failures: list[BaseException] = []
    plain_append = _PgAppender.append  # what the writer appends with on PostgreSQL

    def counting_append(self: _PgAppender, records: list[AuditRecord]) -> list[int]:
        # the writer retries a failed batch record by record, which would hide a lost race on seq
        try:
            return plain_append(self, records)
        except BaseException as exc:
            failures.append(exc)
            raise

    _PgAppender.append = counting_append  # type: ignore[method-assign]
    go.wait()  # type: ignore[attr-defined]  # a barrier: both processes start writing together
    with AuditWriter(engine, batch_max=16) as writer:
        errors: list[BaseException] = []

        def work(t: int) -> None:
            try:
                for k in range(50):
                    writer.write(rec(k, request_id=f"{tag}-{t}-{k}", app_id=tag))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    if errors or failures:
        raise SystemExit(f"{tag}: {(errors or failures)[0]!r}")


@pytest.mark.services
def test_two_processes_append_one_chain_on_postgresql(hub_pg_url: str) -> None:
    engine = engine_for(hub_pg_url)
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Barrier(2, timeout=120)
    procs = [ctx.Process(target=_pg_child, args=(hub_pg_url, tag, go)) for tag in ("p1", "p2")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0]
    report = audit.verify(engine, batch=50)
    assert report.ok, report.problems
    assert report.checked == 400
    ids = [r["request_id"] for r in audit.query(engine, limit=1000)]
    assert len(set(ids)) == 400
    assert len(audit.query(engine, app_id="p1", limit=1000)) == 200
    engine.dispose()


@pytest.mark.services
def test_postgresql_round_trip_and_tamper_detection(hub_pg_url: str) -> None:
    engine = engine_for(hub_pg_url)
    odd = rec(0, path="/x\x00y" + "é" * 600, end_user="李四\udcff", at=T0)
    audit.append(engine, [odd, *[rec(i) for i in range(1, 30)]])
    assert audit.verify(engine, batch=7).ok
    _swap_seqs(engine, 3, 4)
    sql(engine, "DELETE FROM hub_audit WHERE seq = 10")
    sql(engine, "UPDATE hub_audit SET fields = CAST(:f AS json) WHERE seq = 20", f='["uscc"]')
    assert audit.verify(engine).problems == [
        "seq 3 and 4: reordered (each holds the other's record)",
        "seq 10: removed (chain jumps from 9 to 11)",
        "seq 20: changed (hash does not match its content)",
    ]
    engine.dispose()


@pytest.mark.services
def test_postgresql_writer_copies_batches_and_survives_a_dropped_connection(hub_pg_url: str) -> None:
    engine = engine_for(hub_pg_url)
    with AuditWriter(engine, batch_max=16) as writer:
        assert writer.write(rec(0)) == 1  # creates the head through the general path
        assert sorted(_async_writes(writer, 30)) == list(range(2, 32))
        assert writer._pg is not None and writer._pg._conn is not None
        pid = writer._pg._conn.info.backend_pid
        sql(engine, "SELECT pg_terminate_backend(:pid)", pid=pid)
        assert writer.write(rec(40, path="/x\x00y", fields=None)) == 32  # reconnected once
        assert writer._pg._conn.info.backend_pid != pid
    report = audit.verify(engine)
    assert report.ok, report.problems
    assert report.checked == 32
    last = audit.query(engine, after_seq=31)[0]
    assert last["path"] == "/x\\x00y" and last["fields"] is None
    assert audit.query(engine, after_seq=1, limit=1)[0]["fields"] == ["uscc", "ent_name"]
    engine.dispose()


# ---- CLI -----------------------------------------------------------------------------------


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    from sharehub.settings import get_settings

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("SHAREHUB_DATABASE_URL", url)
    get_settings.cache_clear()
    yield engine_for(url)
    get_settings.cache_clear()


def test_cli_verify_and_list(cli_db: sa.Engine) -> None:
    from sharehub.cli import audit as cli_audit

    fill(cli_db, 12)
    runner = CliRunner()
    res = runner.invoke(cli_audit.app, ["verify"])
    assert res.exit_code == 0, res.output
    assert "audit log intact: 12 records" in res.output

    res = runner.invoke(
        cli_audit.app, ["list", "--app", "portal", "--since", "2025-03-01T08:00:04", "--json"]
    )
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [r["seq"] for r in rows] == [4, 6, 8, 10, 12]
    assert rows[0]["at"].startswith("2025-03-01T08:00:04")

    res = runner.invoke(cli_audit.app, ["list", "--dataset", "GA-ID", "--limit", "2"])
    assert res.exit_code == 0, res.output
    assert "GA-ID" in res.output and "SCJ-LIC" not in res.output

    res = runner.invoke(cli_audit.app, ["list", "--since", "yesterday"])
    assert res.exit_code == 2

    sql(cli_db, "UPDATE hub_audit SET row_count = 1000 WHERE seq = 5")
    sql(cli_db, "DELETE FROM hub_audit WHERE seq = 12")
    res = runner.invoke(cli_audit.app, ["verify"])
    assert res.exit_code == 1
    assert "seq 5: changed (hash does not match its content)" in res.output
    assert "tail removed: head says last seq 12, log ends at 11" in res.output

    res = runner.invoke(cli_audit.app, ["verify", "--json"])
    assert res.exit_code == 1
    assert json.loads(res.stdout)["checked"] == 11
