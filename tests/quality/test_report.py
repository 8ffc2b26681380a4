"""quality.report: one self-contained HTML page per dataset."""

from __future__ import annotations

import re

import pyarrow as pa

from quality import ColumnRule, DatasetRules, render_report, validate


def _runs():
    table = pa.table(
        {
            "uscc": ["91350100M000100Y43", "91350100M000100Y4", "91350100M000100Y43"],
            "status": ["存续", "<script>alert(1)</script>", "<img src=x onerror=alert(2)>"],
        }
    )
    rules = DatasetRules(
        key=["uscc"],
        columns=[
            ColumnRule("uscc", "credit_code"),
            ColumnRule("status", "enum", {"values": ["存续", "注销"]}),
        ],
        max_volume_change=0.5,
        previous_row_count=3,
    )
    out = validate(table, rules, suite_name="ds_001")
    ok = validate(table.slice(0, 1), rules, suite_name="ds_001")
    return [
        {"run_id": "run-2", "finished_at": "2026-01-02T03:00:00", "outcome": out.to_json()},
        {"run_id": "run-1", "finished_at": "2026-01-01T03:00:00", **ok.to_json()},
    ]


def test_report_is_self_contained_escaped_utf8_html():
    html = render_report("310000-SCJ-001", "企业登记信息 <b>", _runs())
    assert html.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in html
    assert "企业登记信息 &lt;b&gt;" in html
    assert "310000-SCJ-001" in html
    # a failed expectation with its count and the sample bad rows' reasons
    assert "expect_column_values_to_be_valid_credit_code" in html
    assert 'badge fail">failed</span>' in html
    assert "uscc: must be 18 characters of the GB 32100 alphabet" in html
    assert "status: &lt;img src=x onerror=alert(2)&gt; is not one of the allowed values (存续, 注销)" in html
    assert "uscc: duplicate primary key (also on row 2)" in html
    # nothing from the data gets through unescaped, and no external assets
    assert "<script>" not in html
    assert "<img" not in html
    assert "status: &lt;script&gt;alert(1)&lt;/script&gt; is not one of the allowed values" in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert "volume_change" in html
    # both runs, newest first
    assert html.index("run-2") < html.index("run-1")


def test_report_without_runs():
    html = render_report("X", "空", [])
    assert "No validation runs yet." in html
