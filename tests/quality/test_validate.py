"""quality.validate: a real GX suite from the rules, per-row violations, split."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from quality import ColumnRule, DatasetRules, ValidationOutcome, split, validate

GOOD_ID = "11010519491231002X"
GOOD_CODE = "91350100M000100Y43"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def run(table: pa.Table, *rules: ColumnRule, key=(), **kw) -> ValidationOutcome:
    return validate(table, DatasetRules(key=list(key), columns=list(rules), **kw), suite_name="t")


def messages(outcome: ValidationOutcome) -> dict[int, list[str]]:
    return {rid: [v.message for v in vs] for rid, vs in sorted(outcome.violations.items())}


def test_importing_quality_does_not_import_great_expectations():
    code = (
        "import quality, quality.validate, quality.report, quality.rules, sys; "
        "assert 'great_expectations' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_rules_reject_bad_params():
    with pytest.raises(ValueError):
        ColumnRule("a", "nope")
    with pytest.raises(ValueError):
        ColumnRule("a", "compare", {"op": "<>", "other": "b"})
    with pytest.raises(ValueError):
        ColumnRule("a", "range", {})
    rules = DatasetRules(
        key=["a"], columns=[ColumnRule("b", "enum", {"values": [1, 2]})], max_volume_change=0.2
    )
    assert DatasetRules.from_dict(json.loads(json.dumps(rules.to_dict()))) == rules


def test_missing_field_is_an_error():
    with pytest.raises(ValueError, match="fields not in the table: nope"):
        run(pa.table({"a": [1]}), ColumnRule("nope", "not_null"))


def test_each_column_rule_kind_names_exact_rows_and_reasons():
    table = pa.table(
        {
            "_row": [10, 11, 12, 13],
            "cid": [GOOD_ID, "110105194912310025", "110105194902300021", "123"],
            "uscc": [GOOD_CODE, "91350100M000100Y44", GOOD_CODE[:-1], GOOD_CODE],
            "mobile": ["13800138000", "12800138000", "13800138000", "1380013800"],
            "status": ["A", "B", "Z", "A"],
            "age": [30, 200, -1, 18],
            "code": ["AB12", "ab12", "AB12", "AB1"],
            "name": ["张三", "李四", "王五五五五", "赵六"],
            "email": ["a@x.cn", "b@x.cn", "a@x.cn", "c@x.cn"],
        }
    )
    out = run(
        table,
        ColumnRule("cid", "citizen_id"),
        ColumnRule("uscc", "credit_code"),
        ColumnRule("mobile", "mobile"),
        ColumnRule("status", "enum", {"values": ["A", "B"]}),
        ColumnRule("age", "range", {"min": 0, "max": 150}),
        ColumnRule("code", "regex", {"pattern": r"^[A-Z]{2}\d{2}$"}),
        ColumnRule("name", "max_length", {"max": 4}),
        ColumnRule("email", "unique"),
    )
    assert not out.success
    assert (
        messages(out)
        == {
            11: [
                "cid: check character is 5, expected X",
                "uscc: check character is 4, expected 3",
                "mobile: 12800138000 is not an 11-digit mainland mobile number",
                "age: 200 is above the maximum 150",
                r"code: ab12 does not match the pattern ^[A-Z]{2}\d{2}$",
            ],
            12: [
                "cid: birth date 19490230 is not a real date",
                "uscc: must be 18 characters of the GB 32100 alphabet (no I, O, S, V, Z)",
                "status: Z is not one of the allowed values (A, B)",
                "age: -1 is below the minimum 0",
                "name: length 5 is over the maximum 4",
                "email: a@x.cn is not unique (also on row 10)",
            ],
            13: [
                "cid: must be 17 digits followed by a digit or X",
                "mobile: 1380013800 is not an 11-digit mainland mobile number",
                r"code: AB1 does not match the pattern ^[A-Z]{2}\d{2}$",
            ],
            10: ["email: a@x.cn is not unique (also on row 12)"],
        }
        | {}
    )  # dict equality ignores order
    assert out.row_count == 4
    assert out.bad_row_count == 4
    v = out.violations[12][0]
    assert (v.field, v.rule) == ("cid", "citizen_id")
    by_rule = {e.rule: e for e in out.expectations}
    assert by_rule["citizen_id"].unexpected_count == 3
    assert by_rule["citizen_id"].sample_rows == (11, 12, 13)
    assert by_rule["enum"].unexpected_percent == pytest.approx(25.0)


def test_the_suite_is_a_real_gx_suite():
    table = pa.table({"k1": [1, 1], "k2": ["a", "b"], "d": [dt.date(2020, 1, 1), None], "n": [1, 2]})
    rules = [
        ColumnRule("k2", "not_null"),
        ColumnRule("k2", "citizen_id"),
        ColumnRule("k2", "credit_code"),
        ColumnRule("k2", "mobile"),
        ColumnRule("k2", "enum", {"values": ["a"]}),
        ColumnRule("k2", "max_length", {"max": 3}),
        ColumnRule("d", "not_future"),
        ColumnRule("n", "compare", {"op": "<", "other": "k1"}),
        ColumnRule("n", "compare", {"op": "!=", "other": "k1"}),
        ColumnRule("n", "compare", {"op": "==", "other": "k1"}),
        ColumnRule("n", "unique"),
    ]
    out = run(table, *rules, key=["k1", "k2"], max_volume_change=0.5, previous_row_count=2)
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult

    assert isinstance(out.gx_result, ExpectationSuiteValidationResult)
    types = [r.expectation_config.type for r in out.gx_result.results]
    assert sorted(types) == sorted(
        [
            "expect_compound_columns_to_be_unique",
            "expect_column_values_to_not_be_null",
            "expect_column_values_to_be_valid_citizen_id",
            "expect_column_values_to_be_valid_credit_code",
            "expect_column_values_to_match_regex",
            "expect_column_values_to_be_in_set",
            "expect_column_value_lengths_to_be_between",
            "expect_column_values_to_be_between",
            "expect_column_pair_values_a_to_be_greater_than_b",
            "expect_column_pair_values_to_be_different",
            "expect_column_pair_values_to_be_equal",
            "expect_column_values_to_be_unique",
            "expect_table_row_count_to_be_between",
        ]
    )
    # ExpectationResults follow the rules: key first, then column rules, then the volume check
    ours = [e.expectation_type for e in out.expectations]
    assert ours[0] == "expect_compound_columns_to_be_unique"
    assert ours[1] == "expect_column_values_to_not_be_null"
    assert ours[-1] == "expect_table_row_count_to_be_between"
    assert [e.rule for e in out.expectations][8:11] == ["compare"] * 3
    stored = out.to_json()
    json.dumps(stored)  # JSON-able
    gx_types = {x["expectation_type"] for x in stored["gx_result"]["expectations"]}
    assert "expect_column_values_to_be_valid_citizen_id" in gx_types
    assert stored["success"] is False


def test_nulls_only_break_not_null():
    table = pa.table(
        {
            "cid": pa.array([None, GOOD_ID], pa.string()),
            "n": pa.array([None, 5], pa.int64()),
            "m": pa.array([3, None], pa.int64()),
            "d": pa.array([None, dt.date(2020, 1, 1)], pa.date32()),
            "s": pa.array([None, "A"], pa.string()),
        }
    )
    rules = [
        ColumnRule("cid", "citizen_id"),
        ColumnRule("cid", "credit_code"),
        ColumnRule("cid", "mobile"),
        ColumnRule("s", "enum", {"values": ["A"]}),
        ColumnRule("s", "regex", {"pattern": "^A$"}),
        ColumnRule("s", "max_length", {"max": 1}),
        ColumnRule("s", "unique"),
        ColumnRule("n", "range", {"min": 0, "max": 10}),
        ColumnRule("n", "compare", {"op": "<=", "other": "m"}),
        ColumnRule("d", "not_future"),
        ColumnRule("d", "range", {"min": "2000-01-01"}),
    ]
    out = run(table, *rules)
    # only the non-null row is checked (a valid citizen ID is not a credit code or a mobile)
    assert messages(out) == {
        1: [
            "cid: check character is X, expected B",
            f"cid: {GOOD_ID} is not an 11-digit mainland mobile number",
        ]
    }
    out = run(table, ColumnRule("n", "not_null"), ColumnRule("s", "not_null"), ColumnRule("d", "not_null"))
    assert messages(out) == {0: ["n: value is missing", "s: value is missing", "d: value is missing"]}
    assert all(v.rule == "not_null" for vs in out.violations.values() for v in vs)


def test_single_primary_key_duplicates_name_the_other_rows():
    table = pa.table({"_row": [1, 2, 3, 4], "uscc": ["A", "B", "A", "A"]})
    out = run(table, ColumnRule("uscc", "unique"), key=["uscc"])
    assert messages(out) == {
        1: ["uscc: duplicate primary key (also on rows 3, 4)"],
        3: ["uscc: duplicate primary key (also on rows 1, 4)"],
        4: ["uscc: duplicate primary key (also on rows 1, 3)"],
    }
    assert [e.expectation_type for e in out.expectations] == ["expect_column_values_to_be_unique"]
    assert out.violations[1][0].rule == "primary_key"


def test_composite_key_duplicates_name_the_other_rows():
    table = pa.table(
        {
            "_row": [5, 6, 7, 8, 9],
            "org": ["X", "X", "Y", "X", "Y"],
            "year": [2023, 2024, 2024, 2023, 2023],
        }
    )
    out = run(table, key=["org", "year"])
    assert [e.expectation_type for e in out.expectations] == ["expect_compound_columns_to_be_unique"]
    assert messages(out) == {
        5: ["org, year: duplicate primary key (also on row 8)"],
        8: ["org, year: duplicate primary key (also on row 5)"],
    }
    assert out.violations[5][0].field == "org,year"
    assert out.expectations[0].column == "org,year"


@pytest.mark.parametrize(
    ("n", "prev", "limit", "ok"),
    [(10, 10, 0.0, True), (12, 10, 0.2, True), (8, 10, 0.2, True), (13, 10, 0.2, False), (7, 10, 0.2, False)],
)
def test_volume_change(n, prev, limit, ok):
    table = pa.table({"a": list(range(n))})
    out = run(table, max_volume_change=limit, previous_row_count=prev)
    assert out.success is ok
    check = out.dataset_checks["volume_change"]
    assert check["success"] is ok
    assert check["previous_row_count"] == prev
    assert check["change"] == pytest.approx((n - prev) / prev)
    assert out.violations == {}  # not a row problem
    assert out.expectations[0].expectation_type == "expect_table_row_count_to_be_between"


def test_volume_change_skipped_without_previous_count():
    out = run(pa.table({"a": [1]}), max_volume_change=0.1, previous_row_count=None)
    assert out.dataset_checks == {}
    assert out.expectations == []
    assert out.success


@pytest.mark.parametrize(
    ("op", "bad"),
    [("<", [1, 2]), ("<=", [2]), (">", [0, 1]), (">=", [0]), ("==", [0, 2]), ("!=", [1])],
)
def test_compare_integers(op, bad):
    table = pa.table({"promised_days": [10, 20, 30, 5], "legal_days": [20, 20, 20, None]})
    out = run(table, ColumnRule("promised_days", "compare", {"op": op, "other": "legal_days"}))
    values = {0: 10, 1: 20, 2: 30}
    assert messages(out) == {r: [f"promised_days: {values[r]} is not {op} legal_days (20)"] for r in bad}


def test_compare_dates_and_timestamps():
    table = pa.table(
        {
            "start": pa.array([dt.date(2024, 1, 1), dt.date(2024, 3, 1)], pa.date32()),
            "end": pa.array([dt.date(2024, 2, 1), dt.date(2024, 2, 1)], pa.date32()),
            "t1": pa.array([dt.datetime(2024, 1, 1, 8), dt.datetime(2024, 1, 1, 9)], pa.timestamp("us")),
            "t2": pa.array([dt.datetime(2024, 1, 1, 9), dt.datetime(2024, 1, 1, 8, 30)], pa.timestamp("us")),
        }
    )
    out = run(
        table,
        ColumnRule("start", "compare", {"op": "<=", "other": "end"}),
        ColumnRule("t1", "compare", {"op": "<", "other": "t2"}),
    )
    assert messages(out) == {
        1: [
            "start: 2024-03-01 is not <= end (2024-02-01)",
            "t1: 2024-01-01 09:00:00 is not < t2 (2024-01-01 08:30:00)",
        ]
    }


def test_not_future_dates_and_timestamps():
    today = dt.date.today()
    next_year = today + dt.timedelta(days=365)
    now = dt.datetime.now(dt.UTC)
    table = pa.table(
        {
            "reg_date": pa.array([today, next_year, dt.date(2000, 1, 1)], pa.date32()),
            "ts": pa.array(
                [now - dt.timedelta(hours=1), now, now + dt.timedelta(days=2)], pa.timestamp("us", tz="UTC")
            ),
            "local": pa.array([dt.datetime(2020, 1, 1), None, dt.datetime(2999, 1, 1)], pa.timestamp("s")),
        }
    )
    out = run(
        table,
        ColumnRule("reg_date", "not_future"),
        ColumnRule("ts", "not_future"),
        ColumnRule("local", "not_future"),
    )
    future_ts = (now + dt.timedelta(days=2)).isoformat(sep=" ")
    assert messages(out) == {
        1: [f"reg_date: {next_year.isoformat()} is in the future"],
        2: [f"ts: {future_ts} is in the future", "local: 2999-01-01 00:00:00 is in the future"],
    }


def test_dates_out_of_nanosecond_range_still_work():
    table = pa.table({"valid_to": pa.array([dt.date(2020, 1, 1), dt.date(9999, 12, 31)], pa.date32())})
    out = run(table, ColumnRule("valid_to", "range", {"max": "2100-12-31"}))
    assert messages(out) == {1: ["valid_to: 9999-12-31 is above the maximum 2100-12-31"]}


def test_range_on_dates_timestamps_and_decimals():
    table = pa.table(
        {
            "d": pa.array([dt.date(1999, 12, 31), dt.date(2000, 1, 1), dt.date(2010, 1, 1)], pa.date32()),
            "ts": pa.array(
                [
                    dt.datetime(2024, 1, 1, tzinfo=SHANGHAI),
                    dt.datetime(2024, 6, 1, tzinfo=SHANGHAI),
                    dt.datetime(2023, 12, 31, 23, tzinfo=SHANGHAI),
                ],
                pa.timestamp("ms", tz="Asia/Shanghai"),
            ),
            "amount": pa.array([Decimal("10.00"), Decimal("10.01"), Decimal("-0.01")], pa.decimal128(10, 2)),
        }
    )
    out = run(
        table,
        ColumnRule("d", "range", {"min": "2000-01-01", "max": dt.date(2009, 12, 31)}),
        ColumnRule("ts", "range", {"min": "2024-01-01T00:00:00+08:00", "max": "2024-05-31"}),
        ColumnRule("amount", "range", {"min": 0, "max": 10}),
    )
    msgs = messages(out)
    assert msgs[0] == ["d: 1999-12-31 is below the minimum 2000-01-01"]
    assert msgs[1] == [
        "ts: 2024-06-01 00:00:00+08:00 is above the maximum 2024-05-31",
        "amount: 10.01 is above the maximum 10",
    ]
    assert msgs[2] == [
        "d: 2010-01-01 is above the maximum 2009-12-31",
        "ts: 2023-12-31 23:00:00+08:00 is below the minimum 2024-01-01T00:00:00+08:00",
        "amount: -0.01 is below the minimum 0",
    ]


def test_integer_mobile_column_is_checked_as_text():
    table = pa.table({"mobile": pa.array([13800138000, 2800138000], pa.int64())})
    out = run(table, ColumnRule("mobile", "mobile"))
    assert messages(out) == {1: ["mobile: 2800138000 is not an 11-digit mainland mobile number"]}


def test_row_positions_when_there_is_no_row_id_column_and_split():
    table = pa.table({"id": ["a", "b", "c", "d"], "status": ["A", "X", None, "A"], "n": [1, 2, 3, 400]})
    out = run(
        table,
        ColumnRule("status", "enum", {"values": ["A"]}),
        ColumnRule("status", "not_null"),
        ColumnRule("n", "range", {"max": 100}),
    )
    assert out.row_id_is_position
    good, bad = split(table, out)
    assert good.column_names == ["id", "status", "n"]
    assert good.column("id").to_pylist() == ["a"]
    assert bad.column("id").to_pylist() == ["b", "c", "d"]
    reasons = [json.loads(r) for r in bad.column("_reasons").to_pylist()]
    assert reasons == [
        [{"field": "status", "rule": "enum", "message": "status: X is not one of the allowed values (A)"}],
        [{"field": "status", "rule": "not_null", "message": "status: value is missing"}],
        [{"field": "n", "rule": "range", "message": "n: 400 is above the maximum 100"}],
    ]


def test_split_with_row_id_column_keeps_order_and_schema():
    table = pa.table({"_row": [7, 3, 9], "cid": ["x", GOOD_ID, "中文"]})
    out = run(table, ColumnRule("cid", "citizen_id"))
    good, bad = split(table, out)
    assert good.to_pylist() == [{"_row": 3, "cid": GOOD_ID}]
    assert bad.column("_row").to_pylist() == [7, 9]
    assert bad.schema.field("_reasons").type == pa.string()
    assert "中文" not in bad.column("_reasons")[1].as_py()  # the message explains, no need to echo
    assert json.loads(bad.column("_reasons")[0].as_py())[0]["rule"] == "citizen_id"


def test_all_good():
    table = pa.table({"cid": [GOOD_ID], "uscc": [GOOD_CODE]})
    out = run(table, ColumnRule("cid", "citizen_id"), ColumnRule("uscc", "credit_code"), key=["cid"])
    assert out.success
    assert out.violations == {}
    assert out.bad_row_count == 0
    good, bad = split(table, out)
    assert (good.num_rows, bad.num_rows) == (1, 0)
    stored = out.to_json()
    assert stored["sample_violations"] == []
    assert all(e["success"] for e in stored["expectations"])


def test_row_label_names_other_rows_in_messages():
    import pyarrow as pa

    from quality import validate as run_validate
    from quality.rules import DatasetRules

    table = pa.table(
        {"_rid": [0, 1, 2], "k": ["a", "b", "a"], "where": ["7 of x.csv", "8 of x.csv", "3 of y.csv"]}
    )
    out = run_validate(table, DatasetRules(key=["k"]), row_id="_rid", suite_name="t", row_label="where")
    assert [v.message for v in out.violations[0]] == ["k: duplicate primary key (also on row 3 of y.csv)"]
    assert [v.message for v in out.violations[2]] == ["k: duplicate primary key (also on row 7 of x.csv)"]


def _mixed_table(n: int) -> pa.Table:
    """Rows with every kind of problem spread over the table, and keys duplicated far apart."""
    ids = list(range(1000, 1000 + n))
    keys = [f"k{i}" for i in range(n)]
    keys[n - 1] = keys[3]  # first and last chunk share a key
    keys[n // 2] = keys[n // 2 + 1]  # and two neighbours
    return pa.table(
        {
            "_rid": ids,
            "_label": [str(i + 1) for i in range(n)],
            "k": keys,
            "code": [GOOD_CODE if i % 7 else "91350100M000100Y44" for i in range(n)],
            "state": ["a" if i % 11 else "z" for i in range(n)],
            "amount": [i if i % 13 else -1 for i in range(n)],
            "extra": [None if i % 17 == 0 else "x" for i in range(n)],
        }
    )


def _rules(prev: int | None = None) -> DatasetRules:
    return DatasetRules(
        key=["k"],
        columns=[
            ColumnRule("code", "credit_code"),
            ColumnRule("state", "enum", {"values": ["a", "b"]}),
            ColumnRule("amount", "range", {"min": 0}),
            ColumnRule("extra", "not_null"),
            ColumnRule("extra", "unique"),
        ],
        max_volume_change=0.1,
        previous_row_count=prev,
    )


def test_validate_chunks_finds_what_one_pass_finds():
    """Chunked validation (row rules per chunk, keys once) gives the whole table's outcome."""
    from quality.validate import validate_chunks

    table = _mixed_table(300)
    rules = _rules(prev=200)
    whole = validate(table, rules, row_id="_rid", suite_name="t", row_label="_label")
    seen: list[tuple[int, list[int]]] = []
    chunks = [table.slice(0, 64), table.slice(64, 64), table.slice(128, 100), table.slice(228)]
    chunked = validate_chunks(
        iter(chunks),
        rules,
        row_id="_rid",
        suite_name="t",
        row_label="_label",
        on_chunk=lambda chunk, bad: seen.append((chunk.num_rows, bad)),
    )
    # the same findings per row (key findings come last, after the row rules)
    assert {r: sorted(m) for r, m in messages(chunked).items()} == {
        r: sorted(m) for r, m in messages(whole).items()
    }
    assert chunked.row_count == 300 and chunked.bad_row_count == whole.bad_row_count
    # duplicates across chunks name each other (found only in the final key pass)
    assert any("also on row 300" in m for m in messages(chunked)[1003])
    assert chunked.dataset_checks["volume_change"]["success"] is False  # 300 rows vs 200 allowed +-10 %
    by_rule = {(e.rule, e.column): e.unexpected_count for e in chunked.expectations}
    assert by_rule == {(e.rule, e.column): e.unexpected_count for e in whole.expectations}
    # each chunk reported its own row-rule failures (not the key duplicates)
    assert [n for n, _ in seen] == [64, 64, 100, 72]
    reported = {rid for _, bad in seen for rid in bad}
    row_rule_bad = {
        rid
        for rid, vs in whole.violations.items()
        if any(v.rule not in ("primary_key", "unique") for v in vs)
    }
    assert reported == row_rule_bad
    stored = chunked.to_json()
    assert len(stored["gx_result"]["parts"]) == 5  # four chunks and the key pass


def test_equality_codes_group_exactly_equal_values():
    from quality.validate import _equality_codes

    values = pa.array(["b", None, "a", "b", "c", None, "a", "b"])
    codes = _equality_codes(values).to_pylist()
    assert codes[1] is None and codes[5] is None
    groups: dict[int, set[str]] = {}
    for v, c in zip(values.to_pylist(), codes, strict=True):
        if v is not None:
            groups.setdefault(c, set()).add(v)
    assert all(len(g) == 1 for g in groups.values()) and len(groups) == 3
    assert codes[0] == codes[3] == codes[7] and codes[2] == codes[6] and codes[4] not in (codes[0], codes[2])
    assert _equality_codes(pa.array([], pa.string())).to_pylist() == []
