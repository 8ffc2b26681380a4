"""conform (casts, rejects, _extra, missing columns) and compare_schema (drift)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa
import pytest

from connectors.base import Reject
from connectors.conform import conform
from connectors.drift import Drift, compare_schema

TARGET = pa.schema(
    [
        ("credit_code", pa.string()),
        ("name", pa.string()),
        ("staff", pa.int64()),
        ("capital", pa.decimal128(12, 2)),
        ("ratio", pa.float64()),
        ("listed", pa.bool_()),
        ("founded", pa.date32()),
        ("updated", pa.timestamp("us")),
        ("note", pa.string()),
    ]
)
NAMES = {"credit_code": "统一社会信用代码", "name": "企业名称"}


def source_batch() -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "统一社会信用代码": [" 91110000100000000A ", "x", "y"],
            "企业名称": ["某某公司", "", None],
            "staff": ["12", "abc", " "],
            "capital": ["1000.5", "1.234", "12x"],
            "ratio": ["0.5", "1e3", "half"],
            "listed": ["是", "FALSE", "maybe"],
            "founded": ["2023-01-05", "2023-13-45", "20230105"],
            "updated": ["2024-01-05 10:00:00", "2024-01-05T10:00:00+08:00", "yesterday"],
            "电话": ["010-1234", None, "021"],
            "_source": ["d.csv"] * 3,
            "_row": pa.array([2, 3, 4], pa.int64()),
        }
    )


def test_conform_casts_and_rejects():
    result = conform(source_batch(), TARGET, source_names=NAMES)
    out = result.batch
    assert out.schema.names == [*TARGET.names, "_source", "_row", "_extra"]
    assert out.schema.types[: len(TARGET)] == TARGET.types
    assert out.column("credit_code").to_pylist() == ["91110000100000000A", "x", "y"]
    assert out.column("name").to_pylist() == ["某某公司", None, None]  # an empty cell is missing
    assert out.column("staff").to_pylist() == [12, None, None]
    assert out.column("capital").to_pylist() == [Decimal("1000.50"), None, None]
    assert out.column("ratio").to_pylist() == [0.5, 1000.0, None]
    assert out.column("listed").to_pylist() == [True, False, None]
    assert out.column("founded").to_pylist() == [dt.date(2023, 1, 5), None, dt.date(2023, 1, 5)]
    assert out.column("updated").to_pylist() == [
        dt.datetime(2024, 1, 5, 10),
        dt.datetime(2024, 1, 5, 10),
        None,
    ]
    assert out.column("note").to_pylist() == [None, None, None]
    assert out.column("_row").to_pylist() == [2, 3, 4]
    assert [json.loads(v) for v in out.column("_extra").to_pylist()] == [
        {"电话": "010-1234"},
        {"电话": None},
        {"电话": "021"},
    ]
    assert result.rejects == [
        Reject("d.csv", 3, "staff", "abc", "not a valid integer"),
        Reject("d.csv", 3, "capital", "1.234", "does not fit decimal(12,2)"),
        Reject("d.csv", 4, "capital", "12x", "not a valid decimal"),
        Reject("d.csv", 4, "ratio", "half", "not a valid number"),
        Reject("d.csv", 4, "listed", "maybe", "not a valid boolean"),
        Reject("d.csv", 3, "founded", "2023-13-45", "not a valid date"),
        Reject("d.csv", 4, "updated", "yesterday", "not a valid timestamp"),
    ]


def test_conform_vectorised_fallback_finds_the_one_bad_value_in_a_big_column():
    values = [str(i) for i in range(10_000)]
    values[7777] = "7x77"
    batch = pa.RecordBatch.from_pydict(
        {"n": values, "_source": ["big.csv"] * 10_000, "_row": pa.array(range(2, 10_002), pa.int64())}
    )
    result = conform(batch, pa.schema([("n", pa.int64())]))
    assert result.rejects == [Reject("big.csv", 7779, "n", "7x77", "not a valid integer")]
    col = result.batch.column("n")
    assert col.null_count == 1 and col[7776].as_py() == 7776 and col[7778].as_py() == 7778
    assert result.batch.column("_extra").null_count == 10_000


def test_conform_typed_source():
    batch = pa.RecordBatch.from_pydict(
        {
            "id": pa.array([1, 2], pa.int32()),
            "amount": pa.array([1.5, 2.0]),
            "day": pa.array([dt.date(2024, 1, 1), None]),
            "_source": ["t", "t"],
            "_row": pa.array([1, 2], pa.int64()),
        }
    )
    target = pa.schema(
        [("id", pa.int64()), ("amount", pa.int64()), ("day", pa.date32()), ("label", pa.string())]
    )
    result = conform(batch, target)
    assert result.batch.column("id").to_pylist() == [1, 2]
    assert result.batch.column("amount").to_pylist() == [None, 2]
    assert result.batch.column("label").to_pylist() == [None, None]
    assert result.rejects == [Reject("t", 1, "amount", "1.5", "not a valid integer")]


def test_compare_schema_names_only():
    drift = compare_schema(
        ["统一社会信用代码", "企业名称", "staff", "电话", "_source", "_row"], TARGET, source_names=NAMES
    )
    assert drift.added == ["电话"]
    assert drift.missing == ["capital", "ratio", "listed", "founded", "updated", "note"]
    assert drift.retyped == []
    assert not drift.empty
    assert drift.describe() == (
        "schema drift: added columns: 电话; missing columns: capital, ratio, listed, founded, updated, note"
    )


def test_compare_schema_typed_retyped():
    target = pa.schema(
        [
            ("id", pa.int64()),
            ("amount", pa.decimal128(12, 2)),
            ("day", pa.date32()),
            ("ts", pa.timestamp("us")),
        ]
    )
    source = {"id": pa.string(), "amount": pa.decimal128(10, 2), "day": pa.date32(), "ts": pa.date32()}
    drift = compare_schema(source, target)
    assert drift == Drift(added=[], missing=[], retyped=[("id", "int64", "string")])
    assert drift.describe() == "schema drift: retyped columns: id (declared int64, found string)"
    assert compare_schema({"id": pa.int32()}, pa.schema([("id", pa.int64())])).empty
    assert Drift().describe() == "no schema drift"


def test_impossible_dates_are_rejected_not_normalised():
    from connectors.conform import cast_column

    out, bad = cast_column(pa.array(["1979-02-30", "2020/1/5", "20200105", "2023-13-01"]), pa.date32())
    assert out.to_pylist() == [None, dt.date(2020, 1, 5), dt.date(2020, 1, 5), None]
    assert bad == {0: "not a valid date", 3: "not a valid date"}


@pytest.mark.parametrize(
    "values",
    [
        ["甲公司", "乙", None, "abc"],
        ["甲公司 ", "乙"],
        [" 甲公司", "乙"],
        ["甲公司\u3000", "乙"],
        ["\u00a0甲", "乙"],
        ["甲\u2003", "x"],
        ["a\t", "b"],
        ["", "b"],
        ["甲。", "乙、"],
        ["\x1c甲", "乙"],  # ASCII 1C-1F are whitespace to utf8_trim_whitespace too
        ["甲", "乙\u3000"],
        ["\u2028甲", "乙"],
        [None, None],
    ],
)
def test_string_fast_path_agrees_with_trimming(values: list[str | None]) -> None:
    """Text that needs no trimming skips the copy; the result is the same either way."""
    import pyarrow.compute as pc

    from connectors.conform import _already_clean, cast_column

    arr = pa.array(values, pa.string())
    long = pa.array(
        [None if v is None else v + "经营范围" * 20 if v.strip() == v and v else v for v in values],
        pa.string(),
    )
    for a in (arr, long):  # the check on the buffers says "clean" exactly when trimming changes nothing
        t = pc.utf8_trim_whitespace(a)
        assert _already_clean(a) == (
            pc.if_else(pc.equal(t, ""), pa.scalar(None, pa.string()), t).to_pylist() == a.to_pylist()
        )
    out, bad = cast_column(arr, pa.string())
    trimmed = pc.utf8_trim_whitespace(arr)
    expected = pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)
    assert out.to_pylist() == expected.to_pylist() and bad == {}
    sliced = pa.array(["x ", *values], pa.string()).slice(1)
    assert cast_column(sliced, pa.string())[0].to_pylist() == expected.to_pylist()
