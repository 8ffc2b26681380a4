"""SQL connector on SQLite (always) and the local PostgreSQL / MariaDB (services marker)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest
import sqlalchemy as sa

from connectors.base import ConnectorError
from connectors.registry import open_connector
from connectors.sql import SqlConnector

T0 = dt.datetime(2024, 3, 1, 8, 0, 0)


def make_table(url: str, name: str = "企业登记") -> sa.Table:
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    table = sa.Table(
        name,
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("名称", sa.String(100)),
        sa.Column("注册资本", sa.Numeric(12, 2)),
        sa.Column("成立日期", sa.Date),
        sa.Column("updated_at", sa.DateTime),
        sa.Column("score", sa.Float),
    )
    meta.create_all(engine)
    with engine.begin() as c:
        c.execute(
            table.insert(),
            [
                {
                    "id": 1,
                    "名称": "北京某某科技有限公司",
                    "注册资本": Decimal("1000.50"),
                    "成立日期": dt.date(2020, 1, 5),
                    "updated_at": T0,
                    "score": 1.5,
                },
                {
                    "id": 2,
                    "名称": None,
                    "注册资本": None,
                    "成立日期": None,
                    "updated_at": T0 + dt.timedelta(hours=1),
                    "score": None,
                },
                {
                    "id": 3,
                    "名称": "上海\"引号'公司",
                    "注册资本": Decimal("-2.05"),
                    "成立日期": dt.date(1999, 12, 31),
                    "updated_at": T0 + dt.timedelta(hours=2),
                    "score": 0.1,
                },
            ],
        )
    engine.dispose()
    return table


def insert(url: str, table: sa.Table, rows: list[dict]) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.execute(table.insert(), rows)
    engine.dispose()


def read(conn) -> pa.Table:
    batches = list(conn.read_batches())
    return pa.Table.from_batches(batches) if batches else pa.table({})


def check_full_and_incremental(url: str, **kw) -> None:
    table = make_table(url)
    conn = SqlConnector(url, table="企业登记", cursor="updated_at", batch_size=2, **kw)
    batches = list(conn.read_batches())
    assert [b.num_rows for b in batches] == [2, 1]
    out = pa.Table.from_batches(batches).sort_by("id")
    assert out.schema.field("id").type == pa.int64()
    assert out.schema.field("注册资本").type == pa.decimal128(12, 2)
    assert out.schema.field("成立日期").type == pa.date32()
    assert out.schema.field("updated_at").type == pa.timestamp("us")
    assert out.schema.field("score").type == pa.float64()
    assert out.column("名称").to_pylist() == ["北京某某科技有限公司", None, "上海\"引号'公司"]
    assert out.column("注册资本").to_pylist() == [Decimal("1000.50"), None, Decimal("-2.05")]
    assert out.column("成立日期").to_pylist() == [dt.date(2020, 1, 5), None, dt.date(1999, 12, 31)]
    assert out.column("_source").to_pylist() == ["企业登记"] * 3
    assert sorted(out.column("_row").to_pylist()) == [1, 2, 3]
    assert conn.new_watermark == T0 + dt.timedelta(hours=2)

    # closed start: the row at the watermark is read again
    inc = SqlConnector(url, table="企业登记", cursor="updated_at", watermark=conn.new_watermark, **kw)
    assert read(inc).column("id").to_pylist() == [3]
    assert inc.new_watermark == T0 + dt.timedelta(hours=2)

    # a late row (timestamp before the watermark) is caught by the lookback
    insert(
        url,
        table,
        [
            {"id": 4, "名称": "迟到", "updated_at": T0 + dt.timedelta(minutes=90)},
            {"id": 5, "名称": "新", "updated_at": T0 + dt.timedelta(hours=3)},
        ],
    )
    plain = SqlConnector(
        url, table="企业登记", cursor="updated_at", watermark=T0 + dt.timedelta(hours=2), **kw
    )
    assert sorted(read(plain).column("id").to_pylist()) == [3, 5]
    late = SqlConnector(
        url,
        table="企业登记",
        cursor="updated_at",
        watermark=T0 + dt.timedelta(hours=2),
        lookback=dt.timedelta(minutes=45),
        **kw,
    )
    assert sorted(read(late).column("id").to_pylist()) == [3, 4, 5]
    assert late.new_watermark == T0 + dt.timedelta(hours=3)

    # nothing new: no rows, no watermark
    none = SqlConnector(url, table="企业登记", cursor="updated_at", watermark=T0 + dt.timedelta(days=1), **kw)
    assert list(none.read_batches()) == [] and none.new_watermark is None

    # a user query wrapped as a subquery for the incremental filter, with a column subset
    q = SqlConnector(
        url,
        query='SELECT id, updated_at FROM "企业登记" WHERE id <> 1'
        if not url.startswith("mysql")
        else "SELECT id, updated_at FROM `企业登记` WHERE id <> 1",
        columns=["id"],
        cursor="updated_at",
        watermark=T0 + dt.timedelta(hours=2),
        **kw,
    )
    out = read(q)
    assert out.column_names == ["id", "_source", "_row"]
    assert sorted(out.column("id").to_pylist()) == [3, 5]
    assert set(out.column("_source").to_pylist()) == {"query"}


def test_sqlite_full_and_incremental(tmp_path):
    check_full_and_incremental(f"sqlite:///{tmp_path / 'dept.db'}")


def test_sqlite_query_types_from_values_and_all_null_is_string(tmp_path):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.execute(sa.text("CREATE TABLE t (a INTEGER, b TEXT, c REAL, d TEXT)"))
        c.execute(sa.text("INSERT INTO t VALUES (1, 'x', 1.5, NULL), (2, '时间 10:30', NULL, NULL)"))
    engine.dispose()
    out = read(SqlConnector(url, query="SELECT a, b, c, d FROM t WHERE b <> 'a:b' ORDER BY a;"))
    assert out.schema.types[:4] == [pa.int64(), pa.string(), pa.float64(), pa.string()]
    assert out.column("b").to_pylist() == ["x", "时间 10:30"]
    assert out.column("_row").to_pylist() == [1, 2]


def test_sql_errors_name_the_table(tmp_path):
    url = f"sqlite:///{tmp_path / 'e.db'}"
    make_table(url, "t1")
    with pytest.raises(ConnectorError, match=r"^nope: no such table$"):
        list(SqlConnector(url, table="nope").read_batches())
    with pytest.raises(ConnectorError, match=r"^t1: no such column"):
        list(SqlConnector(url, table="t1", columns=["id", "zz"]).read_batches())
    with pytest.raises(ConnectorError, match="needs cursor"):
        SqlConnector(url, table="t1", watermark=1)
    with pytest.raises(ConnectorError, match="unknown connector kind 'ftp'"):
        open_connector("ftp")
    assert isinstance(open_connector("sql", url=url, table="t1"), SqlConnector)


@pytest.mark.services
def test_mariadb_full_and_incremental(mariadb_url):
    check_full_and_incremental(mariadb_url)


@pytest.mark.services
def test_postgresql_generic_path(pg_url):
    check_full_and_incremental(pg_url, copy_fast_path=False)


@pytest.mark.services
def test_postgresql_copy_path(pg_url):
    check_full_and_incremental(pg_url)


@pytest.mark.services
def test_postgresql_copy_equals_generic(pg_url):
    engine = sa.create_engine(pg_url)
    with engine.begin() as c:
        c.execute(
            sa.text(
                'CREATE TABLE "Dept Data" (id bigint primary key, small smallint, name text, '
                "code varchar(18), ch char(3), amount numeric(14,4), loose numeric, f4 real, "
                "f8 double precision, ok boolean, "
                "day date, ts timestamp, tstz timestamptz, uid uuid)"
            )
        )
        c.execute(
            sa.text(
                'INSERT INTO "Dept Data" SELECT g, (g % 100)::smallint, '
                "CASE WHEN g % 7 = 0 THEN NULL WHEN g % 5 = 0 THEN '' "
                "ELSE '名称,\"含逗号\"' || chr(10) || g END, "
                "lpad(g::text, 18, '9'), 'ab', g * 1.2345, g / 7.0, g / 3.0, g / 9.0, g % 2 = 0, "
                "date '2024-01-01' + g, timestamp '2024-01-01 00:00:00.123456' + g * interval '1 minute', "
                "timestamptz '2024-01-01 08:00:00+08' + g * interval '1 second', "
                "md5(g::text)::uuid FROM generate_series(1, 2500) g"
            )
        )
        c.execute(sa.text('INSERT INTO "Dept Data" (id) VALUES (0)'))
    engine.dispose()
    fast = SqlConnector(pg_url, table="Dept Data", cursor="tstz", batch_size=1000)
    slow = SqlConnector(pg_url, table="Dept Data", cursor="tstz", batch_size=1000, copy_fast_path=False)
    a, b = read(fast), read(slow)
    assert fast.used_copy and not slow.used_copy
    assert a.num_rows == 2501
    assert a.schema.field("tstz").type == pa.timestamp("us", tz="UTC")
    assert a.schema.field("loose").type == pa.string()
    assert a.schema == b.schema
    assert a.equals(b)
    assert fast.new_watermark == slow.new_watermark
    assert fast.new_watermark == dt.datetime(2024, 1, 1, 0, 41, 40, tzinfo=dt.UTC)

    wm = dt.datetime(2024, 1, 1, 0, 40, 0, tzinfo=dt.UTC)
    inc_fast = SqlConnector(pg_url, table="Dept Data", cursor="tstz", watermark=wm)
    inc_slow = SqlConnector(pg_url, table="Dept Data", cursor="tstz", watermark=wm, copy_fast_path=False)
    a, b = read(inc_fast), read(inc_slow)
    assert inc_fast.used_copy
    assert a.num_rows == 101 and a.equals(b)

    query = "SELECT id, name, amount, day FROM \"Dept Data\" WHERE name LIKE '%含逗号%' AND id < 100"
    qa = read(SqlConnector(pg_url, query=query, cursor="day", watermark=dt.date(2024, 2, 1)))
    qb = read(
        SqlConnector(pg_url, query=query, cursor="day", watermark=dt.date(2024, 2, 1), copy_fast_path=False)
    )
    assert qa.num_rows > 0 and qa.equals(qb)
    assert qa.schema.field("amount").type == pa.decimal128(14, 4)


@pytest.mark.services
def test_postgresql_bulk_path_string_watermarks_and_driver_types(pg_url):
    """ADBC's own types (int4, real, numeric text with NaN, uuid, bytea) come out as the generic
    path's; a watermark stored as text (a decimal, a code) is cast to the cursor column's type;
    the watermark is bound through ``set_config``, never written into the query."""
    from connectors.postgres import bulk_supported

    engine = sa.create_engine(pg_url)
    with engine.begin() as c:
        c.execute(
            sa.text(
                "CREATE TABLE t (id int, n numeric(10,2), loose numeric, code varchar(5), u uuid, "
                "b bytea, f real)"
            )
        )
        c.execute(
            sa.text(
                "INSERT INTO t SELECT g, g * 1.5, CASE WHEN g = 4 THEN 'NaN'::numeric ELSE g / 3.0 END, "
                "lpad(g::text, 5, '0'), CASE WHEN g % 3 = 0 THEN NULL ELSE md5(g::text)::uuid END, "
                "CASE WHEN g % 2 = 0 THEN NULL ELSE '\\x00ff'::bytea END, g / 3.0 "
                "FROM generate_series(1, 10) g"
            )
        )
    for cursor, watermark, ids in (
        ("n", "7.50", [5, 6, 7, 8, 9, 10]),
        ("n", Decimal("7.5"), [5, 6, 7, 8, 9, 10]),
        ("code", "00008", [8, 9, 10]),
        ("id", 9, [9, 10]),
    ):
        fast = SqlConnector(pg_url, table="t", cursor=cursor, watermark=watermark, batch_size=4)
        slow = SqlConnector(pg_url, table="t", cursor=cursor, watermark=watermark, copy_fast_path=False)
        a, b = read(fast), read(slow)
        assert fast.used_copy, (cursor, watermark)
        assert sorted(a.column("id").to_pylist()) == ids
        assert a.equals(b), (a.to_pylist(), b.to_pylist())
        assert fast.new_watermark == slow.new_watermark
    assert a.schema.field("u").type == pa.string() and a.schema.field("b").type == pa.binary()
    assert a.schema.field("f").type == pa.float64() and a.column("f").to_pylist()[0] == 3.0
    full = read(SqlConnector(pg_url, table="t"))
    assert full.column("loose").to_pylist()[3] == "NaN"
    assert full.column("u").to_pylist()[0] == "c4ca4238-a0b9-2382-0dcc-509a6f75849b"

    conn = SqlConnector(pg_url, table="t", cursor="code", watermark="00008")
    with engine.connect() as c:
        layout = bulk_supported(engine, conn.plan(c))
    assert layout is not None and "00008" not in layout.query and "current_setting" in layout.query
    engine.dispose()


@pytest.mark.services
def test_postgresql_bulk_reads_narrow_numerics_as_unscaled_integers(pg_url):
    """numeric(p,s) with p <= 18 travels as its unscaled int8 and equals the generic path's
    decimals (signs, nulls, the extremes of the precision, scale 0); wider ones stay text; a NaN
    in such a column fails the read as the decimal cast of its text did."""
    from connectors.postgres import bulk_supported

    engine = sa.create_engine(pg_url)
    with engine.begin() as c:
        c.execute(
            sa.text(
                'CREATE TABLE nums (id int, "Amount" numeric(18,2), whole numeric(10,0), '
                "wide numeric(30,6), tiny numeric(3,3))"
            )
        )
        c.execute(
            sa.text(
                "INSERT INTO nums VALUES "
                "(1, 9999999999999999.99, 9999999999, 123456789012345678901234.5, 0.999), "
                "(2, -9999999999999999.99, -1, -1.000001, -0.001), (3, NULL, NULL, NULL, NULL), "
                "(4, 0, 0, 0, 0), (5, -0.01, 42, 0.5, 0.5)"
            )
        )
    fast = SqlConnector(pg_url, table="nums", cursor="Amount", watermark=Decimal("-1"))
    slow = SqlConnector(pg_url, table="nums", cursor="Amount", watermark=Decimal("-1"), copy_fast_path=False)
    a, b = read(fast), read(slow)
    assert fast.used_copy
    assert a.equals(b), (a.to_pylist(), b.to_pylist())
    assert sorted(a.column("id").to_pylist()) == [1, 4, 5]
    full = read(SqlConnector(pg_url, table="nums"))
    assert full.equals(read(SqlConnector(pg_url, table="nums", copy_fast_path=False)))
    assert full.schema.field("Amount").type == pa.decimal128(18, 2)
    assert full.column("Amount").to_pylist()[1] == Decimal("-9999999999999999.99")
    with engine.connect() as c:
        layout = bulk_supported(engine, SqlConnector(pg_url, table="nums").plan(c))
    assert layout is not None
    assert '"Amount" * 100)::int8' in layout.query and 'whole" * 1)::int8' in layout.query
    assert 'wide" *' not in layout.query
    with engine.begin() as c:
        c.execute(sa.text("INSERT INTO nums (id, \"Amount\") VALUES (6, 'NaN')"))
    with pytest.raises(ConnectorError):
        read(SqlConnector(pg_url, table="nums"))
    engine.dispose()


@pytest.mark.services
def test_postgresql_bulk_read_stopped_early_leaves_no_error(pg_url):
    conn = SqlConnector(pg_url, query="SELECT g FROM generate_series(1, 200000) g", batch_size=1000)
    batches = conn.read_batches()
    assert next(batches).num_rows == 1000
    batches.close()
    assert conn.used_copy
