"""lake on a local folder warehouse with a SQLite catalog (the embedded default).

The ``scenario_*`` helpers are reused by the S3 and PostgreSQL tests.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
from decimal import Decimal

import pyarrow as pa
import pytest

from lake import CURATED, QUARANTINE, RAW, Lake, LakeError, WriteResult, open_lake
from lake.properties import RUN_ID

PEOPLE = pa.schema(
    [
        pa.field("id", pa.int64()),
        pa.field("name", pa.string()),
        pa.field("score", pa.float64()),
    ]
)


def people(rows: list[tuple[int, str | None, float | None]]) -> pa.Table:
    return pa.table(
        {"id": [r[0] for r in rows], "name": [r[1] for r in rows], "score": [r[2] for r in rows]},
        schema=PEOPLE,
    )


def by_id(t: pa.Table) -> list[dict]:
    return sorted(t.to_pylist(), key=lambda r: r["id"])


@pytest.fixture
def lake(tmp_path) -> Lake:
    lk = open_lake(f"sqlite:///{tmp_path / 'hub.db'}", (tmp_path / "lake").as_uri())
    yield lk
    lk.close()


# --- scenarios, shared with the S3 / PostgreSQL tests -------------------------------------------------


def scenario_raw_append(lake: Lake) -> None:
    lake.ensure_table(RAW, "SCJ-YYZZ.001", PEOPLE)
    assert lake.table_exists(RAW, "SCJ-YYZZ.001")
    assert lake.current_snapshot_id(RAW, "SCJ-YYZZ.001") is None
    assert lake.read(RAW, "SCJ-YYZZ.001").num_rows == 0

    s1 = lake.append(RAW, "SCJ-YYZZ.001", people([(1, "甲", 1.0), (2, "乙", 2.0)]), run_id="run-1")
    batches = people([(3, "丙", 3.0), (4, "丁", None), (5, None, 5.5)]).to_batches(max_chunksize=2)
    s2 = lake.append(RAW, "SCJ-YYZZ.001", iter(batches), run_id="run-2")
    assert s1 and s2 and s1 != s2
    assert lake.current_snapshot_id(RAW, "SCJ-YYZZ.001") == s2
    assert lake.snapshot_for_run(RAW, "SCJ-YYZZ.001", "run-1") == s1
    assert lake.snapshot_for_run(RAW, "SCJ-YYZZ.001", "run-2") == s2
    assert lake.snapshot_for_run(RAW, "SCJ-YYZZ.001", "nope") is None
    assert lake.read(RAW, "SCJ-YYZZ.001", snapshot_id=s1).num_rows == 2
    assert lake.read(RAW, "SCJ-YYZZ.001").num_rows == 5
    assert sum(b.num_rows for b in lake.read_batches(RAW, "SCJ-YYZZ.001", snapshot_id=s2)) == 5

    snaps = lake.snapshots(RAW, "SCJ-YYZZ.001")
    assert [s.run_id for s in snaps] == ["run-1", "run-2"]
    assert [s.operation for s in snaps] == ["append", "append"]
    assert snaps[1].summary[RUN_ID] == "run-2"
    assert snaps[1].committed_at.tzinfo is not None

    got = lake.read(RAW, "SCJ-YYZZ.001", row_filter="id >= 4", columns=["id", "name"])
    assert got.column_names == ["id", "name"]
    assert by_id(got) == [{"id": 4, "name": "丁"}, {"id": 5, "name": None}]


def scenario_upsert(lake: Lake) -> None:
    code = "ga.hj-001"
    lake.ensure_table(CURATED, code, PEOPLE, key=["id"])
    # first run on an empty table
    r1 = lake.upsert(code, people([(1, "a", 1.0), (2, "b", None), (3, "c", 3.0)]), key=["id"], run_id="r1")
    assert (r1.inserted, r1.updated, r1.deleted) == (3, 0, 0)
    # 1 unchanged, 2 updated (null -> value), 3 unchanged, 4 new
    r2 = lake.upsert(
        code, people([(1, "a", 1.0), (2, "b", 2.0), (3, "c", 3.0), (4, "d", 4.0)]), key=["id"], run_id="r2"
    )
    assert (r2.inserted, r2.updated) == (1, 1)
    # nothing changed: still one snapshot for the run, no rows rewritten
    r3 = lake.upsert(code, people([(1, "a", 1.0), (4, "d", 4.0)]), key=["id"], run_id="r3")
    assert (r3.inserted, r3.updated) == (0, 0)
    # value -> null counts as a change
    r4 = lake.upsert(code, people([(3, None, 3.0)]), key=["id"], run_id="r4")
    assert (r4.inserted, r4.updated) == (0, 1)

    assert len({r1.snapshot_id, r2.snapshot_id, r3.snapshot_id, r4.snapshot_id}) == 4
    for run, res in [("r1", r1), ("r2", r2), ("r3", r3), ("r4", r4)]:
        assert lake.snapshot_for_run(CURATED, code, run) == res.snapshot_id
    assert lake.current_snapshot_id(CURATED, code) == r4.snapshot_id
    # one snapshot per run
    assert [s.run_id for s in lake.snapshots(CURATED, code)] == ["r1", "r2", "r3", "r4"]

    # time travel: each run's published state stays readable
    assert by_id(lake.read(CURATED, code, snapshot_id=r1.snapshot_id)) == [
        {"id": 1, "name": "a", "score": 1.0},
        {"id": 2, "name": "b", "score": None},
        {"id": 3, "name": "c", "score": 3.0},
    ]
    assert lake.read(CURATED, code, snapshot_id=r2.snapshot_id).num_rows == 4
    assert by_id(lake.read(CURATED, code)) == [
        {"id": 1, "name": "a", "score": 1.0},
        {"id": 2, "name": "b", "score": 2.0},
        {"id": 3, "name": None, "score": 3.0},
        {"id": 4, "name": "d", "score": 4.0},
    ]

    with pytest.raises(LakeError, match="duplicate keys"):
        lake.upsert(code, people([(1, "x", 1.0), (1, "y", 1.0)]), key=["id"], run_id="bad")
    with pytest.raises(LakeError, match="null"):
        lake.upsert(
            code,
            pa.table({"id": pa.array([None], pa.int64()), "name": ["x"], "score": [1.0]}),
            key=["id"],
            run_id="bad",
        )
    assert lake.current_snapshot_id(CURATED, code) == r4.snapshot_id


def scenario_composite_key(lake: Lake) -> None:
    schema = pa.schema([("dept", pa.string()), ("no", pa.int32()), ("v", pa.string())])
    lake.ensure_table(CURATED, "cert", schema, key=["dept", "no"])

    def t(rows):
        return pa.table(
            {"dept": [r[0] for r in rows], "no": [r[1] for r in rows], "v": [r[2] for r in rows]},
            schema=schema,
        )

    r1 = lake.upsert(
        "cert", t([("A", 1, "x"), ("A", 2, "y"), ("B", 1, "z")]), key=["dept", "no"], run_id="c1"
    )
    assert (r1.inserted, r1.updated) == (3, 0)
    r2 = lake.upsert(
        "cert", t([("A", 1, "x"), ("A", 2, "Y"), ("B", 2, "w")]), key=["dept", "no"], run_id="c2"
    )
    assert (r2.inserted, r2.updated) == (1, 1)
    rows = sorted(lake.read(CURATED, "cert").to_pylist(), key=lambda r: (r["dept"], r["no"]))
    assert rows == [
        {"dept": "A", "no": 1, "v": "x"},
        {"dept": "A", "no": 2, "v": "Y"},
        {"dept": "B", "no": 1, "v": "z"},
        {"dept": "B", "no": 2, "v": "w"},
    ]
    assert lake.read(CURATED, "cert").schema == schema


def scenario_overwrite(lake: Lake) -> None:
    lake.ensure_table(CURATED, "full", PEOPLE, key=["id"])
    first = lake.overwrite("full", people([(1, "a", 1.0), (2, "b", 2.0)]), run_id="o1")
    assert first == WriteResult(first.snapshot_id, inserted=2, updated=0, deleted=0)
    second = lake.overwrite("full", people([(7, "g", 7.0)]), run_id="o2")
    assert (second.inserted, second.deleted) == (1, 2)
    assert by_id(lake.read(CURATED, "full")) == [{"id": 7, "name": "g", "score": 7.0}]
    assert (
        lake.snapshot_for_run(CURATED, "full", "o2")
        == second.snapshot_id
        == lake.current_snapshot_id(CURATED, "full")
    )
    assert lake.read(CURATED, "full", snapshot_id=first.snapshot_id).num_rows == 2
    # the overwrite of a non-empty table is delete + append in one commit; both carry the run id
    assert [s.run_id for s in lake.snapshots(CURATED, "full")][-1] == "o2"


def scenario_schema_evolution(lake: Lake) -> None:
    lake.ensure_table(RAW, "evo", PEOPLE)
    s1 = lake.append(RAW, "evo", people([(1, "a", 1.0)]), run_id="e1")
    wider = PEOPLE.append(pa.field("issued", pa.date32()))
    lake.ensure_table(RAW, "evo", wider)
    lake.ensure_table(RAW, "evo", wider)  # idempotent
    lake.append(
        RAW,
        "evo",
        pa.table({"id": [2], "name": ["b"], "score": [2.0], "issued": [dt.date(2024, 5, 1)]}, schema=wider),
        run_id="e2",
    )
    # old writers that do not know the new column still work
    lake.append(RAW, "evo", people([(3, "c", 3.0)]), run_id="e3")
    got = lake.read(RAW, "evo")
    assert got.schema == wider
    assert by_id(got) == [
        {"id": 1, "name": "a", "score": 1.0, "issued": None},
        {"id": 2, "name": "b", "score": 2.0, "issued": dt.date(2024, 5, 1)},
        {"id": 3, "name": "c", "score": 3.0, "issued": None},
    ]
    assert lake.read(RAW, "evo", snapshot_id=s1).num_rows == 1
    with pytest.raises(LakeError, match="schema conflict"):
        lake.ensure_table(RAW, "evo", pa.schema([("id", pa.string())]))
    with pytest.raises(LakeError, match="not in the table"):
        lake.append(RAW, "evo", pa.table({"id": [1], "unknown": ["x"]}), run_id="e4")


TYPES = pa.schema(
    [
        pa.field("code", pa.string()),
        pa.field("big", pa.large_string()),
        pa.field("n", pa.int64()),
        pa.field("small", pa.int32()),
        pa.field("x", pa.float64()),
        pa.field("amount", pa.decimal128(18, 2)),
        pa.field("day", pa.date32()),
        pa.field("at_ns", pa.timestamp("ns")),
        pa.field("at_tz", pa.timestamp("us", tz="Asia/Shanghai")),
        pa.field("ok", pa.bool_()),
    ]
)


def types_table() -> pa.Table:
    return pa.table(
        {
            "code": ["91110000600037341L", None],
            "big": ["市场监督管理局 营业执照", None],
            "n": [2**40, None],
            "small": [-7, None],
            "x": [3.25, None],
            "amount": [Decimal("1234567.89"), None],
            "day": [dt.date(1990, 3, 7), None],
            "at_ns": pa.array([1_700_000_000_123_456_789, None], pa.timestamp("ns")),
            "at_tz": pa.array(
                [dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC), None], pa.timestamp("us", tz="UTC")
            ).cast(pa.timestamp("us", tz="Asia/Shanghai")),
            "ok": [True, None],
        },
        schema=TYPES,
    )


def scenario_types(lake: Lake) -> None:
    lake.ensure_table(QUARANTINE, "types", TYPES)
    lake.append(QUARANTINE, "types", types_table(), run_id="t1")
    got = lake.read(QUARANTINE, "types")
    assert got.schema == TYPES
    rows = got.to_pylist()
    want = types_table().to_pylist()
    # nanoseconds are truncated to Iceberg's microseconds
    want[0]["at_ns"] = types_table().column("at_ns").cast(pa.timestamp("us"), safe=False)[0].as_py()
    assert sorted(rows, key=lambda r: r["code"] or "") == sorted(want, key=lambda r: r["code"] or "")
    assert rows[0]["at_tz"].utcoffset() == dt.timedelta(hours=8) or rows[1]["at_tz"] is None


def scenario_full_cycle(lake: Lake) -> None:
    """The smaller end-to-end path used on S3 / PostgreSQL."""
    scenario_raw_append(lake)
    scenario_upsert(lake)
    scenario_overwrite(lake)
    scenario_types(lake)


# --- tests ---------------------------------------------------------------------------------------------


def test_zones_created_and_table_names(lake: Lake) -> None:
    assert {ns[0] for ns in lake.catalog.list_namespaces()} >= {"raw", "curated", "quarantine"}
    assert lake.table_name(CURATED, "SCJ-YYZZ.001") == "curated.scj_yyzz_001"
    with pytest.raises(LakeError, match="unknown zone"):
        lake.table_name("gold", "x")
    with pytest.raises(LakeError, match=r"unknown table curated\.nothing"):
        lake.read(CURATED, "nothing")
    assert not lake.table_exists(RAW, "nothing")


def test_raw_append(lake: Lake) -> None:
    scenario_raw_append(lake)


def test_upsert(lake: Lake) -> None:
    scenario_upsert(lake)


def test_upsert_composite_key(lake: Lake) -> None:
    scenario_composite_key(lake)


def test_overwrite(lake: Lake) -> None:
    scenario_overwrite(lake)


def test_schema_evolution(lake: Lake) -> None:
    scenario_schema_evolution(lake)


def test_types_round_trip(lake: Lake) -> None:
    scenario_types(lake)


def test_unknown_snapshot(lake: Lake) -> None:
    lake.ensure_table(RAW, "t", PEOPLE)
    with pytest.raises(LakeError, match="snapshot 42 does not exist"):
        lake.read(RAW, "t", snapshot_id=42)


def test_reopen_sees_same_tables(tmp_path) -> None:
    uri, wh = f"sqlite:///{tmp_path / 'hub.db'}", (tmp_path / "lake").as_uri()
    with open_lake(uri, wh) as a:
        a.ensure_table(RAW, "t", PEOPLE)
        sid = a.append(RAW, "t", people([(1, "a", 1.0)]), run_id="r")
    with open_lake(uri, wh) as b:
        assert b.snapshot_for_run(RAW, "t", "r") == sid
        assert b.read(RAW, "t").num_rows == 1


def _open_in_child(uri: str, wh: str, errors: str) -> None:
    try:
        with open_lake(uri, wh) as lk:
            lk.ensure_table(RAW, "shared", PEOPLE)
    except BaseException:
        import traceback

        with open(errors, "a", encoding="utf-8") as f:  # the parent's assertion shows it
            f.write(traceback.format_exc())
        raise


def test_concurrent_open_from_processes(tmp_path) -> None:
    uri, wh = f"sqlite:///{tmp_path / 'hub.db'}", (tmp_path / "lake").as_uri()
    ctx = multiprocessing.get_context("spawn")
    errors = tmp_path / "child-errors.txt"
    procs = [ctx.Process(target=_open_in_child, args=(uri, wh, str(errors))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0], errors.read_text() if errors.exists() else "no traceback"
    with open_lake(uri, wh) as lk:
        assert lk.table_exists(RAW, "shared")


def test_zone_created_between_check_and_insert(tmp_path, monkeypatch) -> None:
    """The race behind a CI failure, made deterministic: another process creates the zone after
    this one saw it missing, so the insert meets the real unique key (an IntegrityError from
    pyiceberg's SQL catalog, not NamespaceAlreadyExistsError). Opening must still succeed."""
    from pyiceberg.catalog.sql import SqlCatalog

    uri, wh = f"sqlite:///{tmp_path / 'hub.db'}", (tmp_path / "lake").as_uri()
    with open_lake(uri, wh):
        pass  # the zones exist now
    real = SqlCatalog.namespace_exists
    seen: list[object] = []

    def missing_once(self, identifier):  # the check of the losing process, before the winner
        if not seen:
            seen.append(identifier)
            return False
        return real(self, identifier)

    monkeypatch.setattr(SqlCatalog, "namespace_exists", missing_once)
    with open_lake(uri, wh) as lk:
        lk.ensure_table(RAW, "t", PEOPLE)
    assert seen, "the patched check was not reached: the test no longer reproduces the race"


def test_bad_warehouse(tmp_path) -> None:
    with pytest.raises(LakeError, match="unsupported warehouse"):
        open_lake(f"sqlite:///{tmp_path / 'hub.db'}", "gs://x/y")


def test_upsert_rewrites_only_touched_files(lake: Lake) -> None:
    lake.ensure_table(
        CURATED, "many", PEOPLE, key=["id"], properties={"write.target-file-size-bytes": "20000"}
    )
    n = 5000
    r1 = lake.upsert("many", people([(i, f"n{i}", float(i)) for i in range(n)]), key=["id"], run_id="m1")
    summary1 = lake.snapshots(CURATED, "many")[-1].summary
    files = int(summary1["total-data-files"])
    assert files > 3
    change = people([(10, "changed", 10.0), (11, "n11", 11.0), (n + 1, "new", 1.0)])
    r2 = lake.upsert("many", change, key=["id"], run_id="m2")
    assert (r1.inserted, r2.inserted, r2.updated) == (n, 1, 1)
    summary2 = lake.snapshots(CURATED, "many")[-1].summary
    assert summary2["deleted-data-files"] == "1"  # only the file holding id 10 is rewritten
    expected = {i: f"n{i}" for i in range(n)} | {10: "changed", n + 1: "new"}
    got = lake.read(CURATED, "many", columns=["id", "name"])
    assert dict(zip(got.column("id").to_pylist(), got.column("name").to_pylist(), strict=True)) == expected
    assert got.num_rows == n + 1


def test_retry_is_bounded_and_skips_permanent_errors() -> None:
    from lake.retry import with_retry

    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise OSError("AWS Error NETWORK_CONNECTION: connection reset by peer")
        return "ok"

    assert with_retry(flaky, what="t", base_delay=0.001) == "ok"
    assert len(calls) == 3

    def denied():
        calls.append(1)
        raise OSError("AWS Error ACCESS_DENIED during PutObject operation: 403")

    calls.clear()
    with pytest.raises(OSError, match="ACCESS_DENIED"):
        with_retry(denied, what="t", base_delay=0.001)
    assert len(calls) == 1

    def always_down():
        calls.append(1)
        raise OSError("HTTP response code 503")

    calls.clear()
    with pytest.raises(OSError):
        with_retry(always_down, what="t", attempts=3, base_delay=0.001)
    assert len(calls) == 3


def test_streamed_overwrite_replaces_every_row(tmp_path) -> None:
    """A full resync streamed as record batches leaves only the new rows (files written one by one)."""
    import pyarrow as pa

    from lake import CURATED, open_lake

    lake = open_lake(f"sqlite:///{tmp_path / 'hub.db'}", (tmp_path / "lake").as_uri())
    schema = pa.schema([pa.field("k", pa.string()), pa.field("v", pa.int64())])
    lake.ensure_table(CURATED, "T-1", schema, key=["k"])
    lake.overwrite("T-1", pa.table({"k": ["a", "b"], "v": [1, 2]}, schema=schema), run_id="r1")
    batches = pa.table({"k": ["b", "c", "d"], "v": [20, 30, 40]}, schema=schema).to_batches(max_chunksize=1)
    result = lake.overwrite("T-1", iter(batches), run_id="r2")
    assert (result.inserted, result.deleted) == (3, 2)
    rows = sorted(lake.read(CURATED, "T-1").to_pylist(), key=lambda r: r["k"])
    assert rows == [{"k": "b", "v": 20}, {"k": "c", "v": 30}, {"k": "d", "v": 40}]
    assert lake.snapshot_for_run(CURATED, "T-1", "r2") == result.snapshot_id
