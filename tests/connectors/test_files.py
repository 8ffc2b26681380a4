"""File connector: CSV encodings, rejects, taken-once, xlsx, JSON lines, Parquet, S3."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.base import ConnectorError, Reject
from connectors.files import FileConnector, TakenFile
from connectors.registry import open_connector

HEADER_CN = "统一社会信用代码,企业名称,成立日期\n"
ROWS_CN = (
    "91110000100000000A,北京某某科技有限公司,2020-01-05\n91310000200000000B,上海某某贸易有限公司,2021/03/15\n"
)


def read_all(conn) -> pa.Table:
    batches = list(conn.read_batches())
    if not batches:
        return pa.table({})
    return pa.Table.from_batches(batches)


def write(path, data: bytes) -> None:
    path.write_bytes(data)


@pytest.mark.parametrize(
    ("encoded", "declared"),
    [
        ((HEADER_CN + ROWS_CN).encode("utf-8"), None),
        (b"\xef\xbb\xbf" + (HEADER_CN + ROWS_CN).encode("utf-8"), None),
        ((HEADER_CN + ROWS_CN).encode("gb18030"), None),
        ((HEADER_CN + ROWS_CN).encode("gbk"), "GBK"),
        ((HEADER_CN + ROWS_CN).encode("gb18030"), "gb18030"),
        (b"\xef\xbb\xbf" + (HEADER_CN + ROWS_CN).encode("utf-8"), "utf-8"),
    ],
    ids=["utf8", "utf8-bom", "gb18030-detected", "gbk-declared", "gb18030-declared", "bom-declared-utf8"],
)
def test_csv_encodings(tmp_path, encoded, declared):
    write(tmp_path / "企业.csv", encoded)
    conn = FileConnector(str(tmp_path), "*.csv", "csv", encoding=declared)
    table = read_all(conn)
    assert table.column_names == ["统一社会信用代码", "企业名称", "成立日期", "_source", "_row"]
    assert table.column("企业名称").to_pylist() == ["北京某某科技有限公司", "上海某某贸易有限公司"]
    assert table.column("成立日期").to_pylist() == ["2020-01-05", "2021/03/15"]
    assert table.column("_source").to_pylist() == ["企业.csv", "企业.csv"]
    assert table.column("_row").to_pylist() == [2, 3]
    assert table.schema.field("_row").type == pa.int64()
    assert all(t == pa.string() for t in table.schema.types[:3])
    assert conn.rejects == []
    assert conn.taken == [TakenFile("企业.csv", hashlib.sha256(encoded).hexdigest(), 2)]


def test_csv_line_not_in_the_declared_encoding_is_one_reject_naming_line_and_byte(tmp_path):
    data = ("id,name\n1,ok\n2,fine\n3,张三\n4,again\n").encode("gb18030")
    write(tmp_path / "people.csv", data)
    conn = FileConnector(str(tmp_path), "*.csv", "csv", encoding="utf-8")
    table = read_all(conn)
    assert table.column("id").to_pylist() == ["1", "2", "4"]
    assert table.column("_row").to_pylist() == [2, 3, 5]
    (reject,) = conn.rejects
    assert (reject.source, reject.row, reject.kind) == ("people.csv", 4, "read")
    assert reject.reason == (
        "line 4: not valid UTF-8 (declared encoding): cannot decode byte 0xd5 at character 3"
    )


def test_csv_ragged_row_is_a_reject_and_the_rest_goes_on(tmp_path):
    lines = (
        ["a,b,c"]
        + [f"{i},x{i},y{i}" for i in range(2, 57)]
        + ["57,short"]
        + ["58,x,y", '59,"multi', 'line",z', "61,x,y"]
    )
    write(tmp_path / "r.csv", ("\n".join(lines) + "\n").encode())
    conn = FileConnector(str(tmp_path), "r.csv", "csv")
    table = read_all(conn)
    assert conn.rejects == [Reject("r.csv", 57, None, "57,short", "line 57: expected 3 fields, found 2")]
    rows = table.column("_row").to_pylist()
    assert rows[:3] == [2, 3, 4]
    assert rows[-3:] == [58, 59, 61]  # physical lines: the quoted value spans lines 59-60
    assert table.column("b").to_pylist()[-2] == "multi\nline"
    assert table.num_rows == 58


def test_csv_ragged_rows_across_small_batches_keep_line_numbers(tmp_path):
    lines = ["a,b"] + [f"{i},v" if i % 1000 else f"{i}" for i in range(2, 5002)]
    write(tmp_path / "big.csv", ("\r\n".join(lines) + "\r\n\r\n").encode())
    conn = FileConnector(str(tmp_path), "big.csv", "csv", batch_size=700)
    batches = list(conn.read_batches())
    assert max(b.num_rows for b in batches) <= 700
    table = pa.Table.from_batches(batches)
    assert [r.row for r in conn.rejects] == [1000, 2000, 3000, 4000, 5000]
    assert conn.rejects[0].reason == "line 1000: expected 2 fields, found 1"
    # every kept row's number is the number written in its first field
    assert table.column("_row").to_pylist() == [int(v) for v in table.column("a").to_pylist()]
    assert conn.taken[0].rows == 4995


def test_csv_empty_file_is_refused_alone_and_header_only_is_empty(tmp_path):
    write(tmp_path / "a_empty.csv", b"")
    write(tmp_path / "a_good.csv", b"x\n1\n")
    conn = FileConnector(str(tmp_path), "a_*.csv", "csv")
    assert read_all(conn).column("x").to_pylist() == ["1"]
    assert conn.rejects == [Reject("a_empty.csv", 0, None, None, "a_empty.csv: file is empty", rule="file")]
    assert [t.name for t in conn.taken] == ["a_good.csv"]  # the empty file is read again next time
    write(tmp_path / "b_header.csv", "编号,名称\n".encode())
    conn = FileConnector(str(tmp_path), "b_header.csv", "csv")
    assert list(conn.read_batches()) == []
    assert conn.taken[0].rows == 0


def test_csv_values_are_strings_not_inferred(tmp_path):
    write(tmp_path / "t.csv", b"id,amount,flag\n007,1.50,true\n,,\n9, x ,\n")
    table = read_all(FileConnector(str(tmp_path), "*.csv", "csv"))
    assert table.column("id").to_pylist() == ["007", "9"]  # the blank-valued row carries no data
    assert table.column("amount").to_pylist() == ["1.50", " x "]
    assert table.column("_row").to_pylist() == [2, 4]


def test_files_taken_once_and_changed_file_taken_again(tmp_path):
    write(tmp_path / "d1.csv", b"a\n1\n")
    write(tmp_path / "d2.csv", b"a\n2\n3\n")
    write(tmp_path / "other.txt", b"x")
    first = FileConnector(str(tmp_path), "d*.csv", "csv")
    assert read_all(first).column("_source").to_pylist() == ["d1.csv", "d2.csv", "d2.csv"]
    seen = {t.name: t.checksum for t in first.taken}
    assert [t.rows for t in first.taken] == [1, 2]

    again = FileConnector(str(tmp_path), "d*.csv", "csv", seen=seen)
    assert list(again.read_batches()) == []
    assert again.skipped == ["d1.csv", "d2.csv"] and again.taken == []

    write(tmp_path / "d2.csv", b"a\n2\n3\n4\n")
    write(tmp_path / "d3.csv", b"a\n5\n")
    changed = FileConnector(str(tmp_path), "d*.csv", "csv", seen=seen)
    assert read_all(changed).column("a").to_pylist() == ["2", "3", "4", "5"]
    assert changed.skipped == ["d1.csv"]
    assert [t.name for t in changed.taken] == ["d2.csv", "d3.csv"]


def test_missing_location_is_a_connector_error(tmp_path):
    with pytest.raises(ConnectorError, match="cannot list files"):
        list(FileConnector(str(tmp_path / "nope"), "*.csv", "csv").read_batches())


def test_xlsx(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "企业"
    ws.append(["编号", "名称", "成立日期", "注册资本", "更新时间"])
    ws.append([1, "某某公司", dt.date(2020, 1, 5), 1000.5, dt.datetime(2024, 1, 2, 3, 4, 5)])
    ws.append([None, None, None, None, None])
    ws.append([3, "另一公司", dt.date(2021, 2, 3), 200, None])
    ws.append([4, "x", None, None, None, "extra"])
    ws.append([])
    ws.append([])
    wb.create_sheet("other").append(["z"])
    wb.save(tmp_path / "企业.xlsx")
    conn = FileConnector(str(tmp_path), "*.xlsx", "xlsx", sheet="企业", batch_size=1)
    batches = list(conn.read_batches())
    table = pa.Table.from_batches(batches)
    assert table.to_pylist() == [
        {
            "编号": "1",
            "名称": "某某公司",
            "成立日期": "2020-01-05",
            "注册资本": "1000.5",
            "更新时间": "2024-01-02T03:04:05",
            "_source": "企业.xlsx",
            "_row": 2,
        },
        {
            "编号": "3",
            "名称": "另一公司",
            "成立日期": "2021-02-03",
            "注册资本": "200",
            "更新时间": None,
            "_source": "企业.xlsx",
            "_row": 4,
        },
    ]
    assert conn.rejects == [Reject("企业.xlsx", 5, None, "4,x,,,,extra", "row 5: expected 5 fields, found 6")]
    nope = FileConnector(str(tmp_path), "*.xlsx", "xlsx", sheet="nope")
    assert list(nope.read_batches()) == []
    assert "企业.xlsx: no sheet named 'nope'" in nope.rejects[0].reason and nope.rejects[0].kind == "file"


def test_jsonl_bad_lines_are_rejects(tmp_path):
    lines = [
        json.dumps({"id": 1, "name": "张三", "tags": ["a", "b"], "ok": True}, ensure_ascii=False),
        "[1, 2]",
        "",
        "{broken",
        json.dumps({"id": 2, "name": None, "extra": {"k": 1.5}}),
    ]
    write(tmp_path / "p.jsonl", ("\n".join(lines) + "\n").encode())
    conn = FileConnector(str(tmp_path), "*.jsonl", "jsonl")
    table = read_all(conn)
    assert table.to_pylist() == [
        {
            "id": "1",
            "name": "张三",
            "tags": '["a", "b"]',
            "ok": "true",
            "extra": None,
            "_source": "p.jsonl",
            "_row": 1,
        },
        {
            "id": "2",
            "name": None,
            "tags": None,
            "ok": None,
            "extra": '{"k": 1.5}',
            "_source": "p.jsonl",
            "_row": 5,
        },
    ]
    assert conn.rejects == [
        Reject("p.jsonl", 2, None, "[1, 2]", "line 2: not a JSON object"),
        Reject(
            "p.jsonl",
            4,
            None,
            "{broken",
            "line 4: invalid JSON: Expecting property name enclosed in double quotes",
        ),
    ]


def test_parquet_native_types(tmp_path):
    table = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "amount": pa.array([1.5, None, 3.0]),
            "day": pa.array([dt.date(2024, 1, 1), None, dt.date(2024, 1, 3)]),
        }
    )
    pq.write_table(table, tmp_path / "x.parquet")
    conn = open_connector("file", location=str(tmp_path), pattern="*.parquet", format="parquet", batch_size=2)
    batches = list(conn.read_batches())
    assert [b.num_rows for b in batches] == [2, 1]
    out = pa.Table.from_batches(batches)
    assert out.schema.field("day").type == pa.date32()
    assert out.column("_row").to_pylist() == [1, 2, 3]
    assert out.drop_columns(["_source", "_row"]).equals(table)


@pytest.mark.s3
def test_files_under_an_s3_prefix(s3_endpoint, tmp_path):
    import boto3

    bucket = s3_endpoint.new_bucket()
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint.url,
        aws_access_key_id=s3_endpoint.access_key,
        aws_secret_access_key=s3_endpoint.secret_key,
        region_name=s3_endpoint.region,
    )
    client.put_object(Bucket=bucket, Key="drops/2024/b.csv", Body=(HEADER_CN + ROWS_CN).encode("gb18030"))
    client.put_object(Bucket=bucket, Key="drops/2024/a.csv", Body=b"\xef\xbb\xbf" + HEADER_CN.encode())
    client.put_object(Bucket=bucket, Key="drops/2024/c.txt", Body=b"ignored")
    pq.write_table(pa.table({"n": [1, 2]}), tmp_path / "n.parquet")
    client.put_object(Bucket=bucket, Key="drops/2024/n.parquet", Body=(tmp_path / "n.parquet").read_bytes())
    s3 = {
        "endpoint": s3_endpoint.url,
        "access_key": s3_endpoint.access_key,
        "secret_key": s3_endpoint.secret_key,
        "region": s3_endpoint.region,
    }
    conn = FileConnector(f"s3://{bucket}/drops/2024", "*.csv", "csv", s3=s3)
    table = read_all(conn)
    assert table.column("企业名称").to_pylist() == ["北京某某科技有限公司", "上海某某贸易有限公司"]
    assert [(t.name, t.rows) for t in conn.taken] == [("a.csv", 0), ("b.csv", 2)]
    seen = {t.name: t.checksum for t in conn.taken}
    again = FileConnector(f"s3://{bucket}/drops/2024/", "*.csv", "csv", s3=s3, seen=seen)
    assert list(again.read_batches()) == [] and again.skipped == ["a.csv", "b.csv"]
    parquet = FileConnector(f"s3://{bucket}/drops/2024", "*.parquet", "parquet", s3=s3)
    assert read_all(parquet).column("n").to_pylist() == [1, 2]


@pytest.mark.parametrize("fmt,name", [("jsonl", "e.jsonl"), ("xlsx", "e.xlsx"), ("parquet", "e.parquet")])
def test_empty_file_is_refused_in_every_format(tmp_path, fmt, name):
    from connectors.files import FileConnector

    (tmp_path / name).write_bytes(b"")
    conn = FileConnector(str(tmp_path), "e.*", fmt)
    assert list(conn.read_batches()) == []
    assert [(r.source, r.reason, r.kind) for r in conn.rejects] == [(name, f"{name}: file is empty", "file")]
    assert conn.taken == []


def _with_cached_formula(path, cell: str, formula: str, cached: str) -> None:
    """Rewrite ``path`` so ``cell`` holds ``formula`` and a cached value, as Excel saves it."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    sheet = "xl/worksheets/sheet1.xml"
    xml = parts[sheet].decode()
    start = xml.index(f'<c r="{cell}"')
    end = xml.index("</c>", start) + len("</c>")
    parts[sheet] = (xml[:start] + f'<c r="{cell}"><f>{formula}</f><v>{cached}</v></c>' + xml[end:]).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for n, data in parts.items():
            z.writestr(n, data)


def test_xlsx_calamine_reads_like_openpyxl_from_c5_with_dates_and_a_cached_formula(tmp_path):
    """Data that starts at C5 under a title (rows numbered from the sheet's row 1), date, time,
    datetime and duration cells, integers shown as integers, an empty cell, a formula's cached
    value: calamine's text equals openpyxl's, and the rows keep their sheet numbers."""
    import io

    openpyxl = pytest.importorskip("openpyxl")
    from connectors.excel import _needs_openpyxl, _read_openpyxl, read_xlsx

    wb = openpyxl.Workbook()
    ws = wb.active
    ws["C2"] = "2026年户籍人口信息表"
    header = ["编号", "日期", "时间", "时刻", "时长", "金额", "标志", "合计"]
    rows = [
        [
            1,
            dt.date(2020, 1, 5),
            dt.datetime(2024, 1, 2, 3, 4, 5),
            dt.time(10, 30),
            dt.timedelta(hours=25),
            2.0,
            True,
            0,
        ],
        [2, dt.datetime(2021, 2, 3), None, None, None, 1000.5, False, 0],
        [None] * 8,
        [
            123456789012345,
            dt.date(1999, 12, 31),
            dt.datetime(2024, 1, 1, 0, 0, 1),
            dt.time(0, 0),
            None,
            -0.1,
            None,
            0,
        ],
    ]
    for j, text in enumerate(header):
        ws.cell(row=5, column=3 + j, value=text)
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            if value is not None:
                ws.cell(row=6 + i, column=3 + j, value=value)
    path = tmp_path / "c5.xlsx"
    wb.save(path)
    _with_cached_formula(path, "J6", "SUM(H6:H6)", "2")
    data = path.read_bytes()
    assert not _needs_openpyxl(io.BytesIO(data))

    def read(fn):
        rejects: list = []
        batches = list(
            fn(
                io.BytesIO(data),
                name="c5.xlsx",
                sheet=None,
                rejects=rejects,
                batch_size=2,
                columns={h: h for h in header},
            )
        )
        return pa.Table.from_batches(batches).to_pylist(), rejects

    new, new_rejects = read(read_xlsx)
    old, old_rejects = read(_read_openpyxl)
    assert new == old and new_rejects == old_rejects == []
    assert [r["_row"] for r in new] == [6, 7, 9]
    first = {k: v for k, v in new[0].items() if k in header}
    assert first == {
        "编号": "1",
        "日期": "2020-01-05",
        "时间": "2024-01-02T03:04:05",
        "时刻": "10:30:00",
        "时长": "1 day, 1:00:00",
        "金额": "2",
        "标志": "true",
        "合计": "2",
    }
    assert new[1]["日期"] == "2021-02-03" and new[2]["编号"] == "123456789012345"


def test_xlsx_long_integers_and_uncached_formulas_go_to_openpyxl(tmp_path):
    """A 16+ digit integer stored as a number (an 18-digit ID: not exact as a double) and a
    formula without a cached value (its reject quotes the formula) are read by openpyxl."""
    import io

    openpyxl = pytest.importorskip("openpyxl")
    from connectors.excel import _needs_openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["身份证号", "名称"])
    ws.append([1, "甲"])
    wb.save(tmp_path / "ids.xlsx")
    # openpyxl itself writes it as a double; other writers keep every digit
    _with_cached_formula(tmp_path / "ids.xlsx", "A2", "", "")
    xml_path = "xl/worksheets/sheet1.xml"
    import zipfile

    with zipfile.ZipFile(tmp_path / "ids.xlsx") as z:
        parts = {n: z.read(n) for n in z.namelist()}
    parts[xml_path] = parts[xml_path].replace(b"<f></f><v></v>", b"<v>110101199001011237</v>")
    with zipfile.ZipFile(tmp_path / "ids.xlsx", "w") as z:
        for n, data in parts.items():
            z.writestr(n, data)
    assert _needs_openpyxl(io.BytesIO((tmp_path / "ids.xlsx").read_bytes()))
    conn = FileConnector(str(tmp_path), "ids.xlsx", "xlsx")
    assert pa.Table.from_batches(list(conn.read_batches())).column("身份证号").to_pylist() == [
        "110101199001011237"
    ]

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["编号", "合计"])
    ws.append([1, "=1+2.5"])
    wb.save(tmp_path / "f.xlsx")
    assert _needs_openpyxl(io.BytesIO((tmp_path / "f.xlsx").read_bytes()))
    conn = FileConnector(str(tmp_path), "f.xlsx", "xlsx")
    list(conn.read_batches())
    assert [(r.row, r.field, r.value, r.kind) for r in conn.rejects] == [(2, "合计", "=1+2.5", "formula")]
