"""``not_null`` (a value is present) and ``unique`` (no two rows share the value)."""

from __future__ import annotations

from quality import _gx
from quality.rules.base import BadValue, Column, GxExpectation, NoParams, RuleKind, fmt, rows_text


def _not_null(c: Column[NoParams]) -> GxExpectation:
    return _gx.expectations().ExpectColumnValuesToNotBeNull, {"column": c.field}


def _explain_not_null(bad: BadValue[NoParams]) -> str:
    return "value is missing"


def _unique(c: Column[NoParams]) -> GxExpectation:
    return _gx.expectations().ExpectColumnValuesToBeUnique, {"column": c.field}


def _explain_unique(bad: BadValue[NoParams]) -> str:
    return f"{fmt(bad.value)} is not unique ({rows_text(bad.same_value_rows)})"


NOT_NULL = RuleKind(
    name="not_null",
    params=NoParams,
    expectation=_not_null,
    explain=_explain_not_null,
    meaning="value is present",
)
UNIQUE = RuleKind(
    name="unique",
    params=NoParams,
    expectation=_unique,
    explain=_explain_unique,
    meaning="no two rows share the value",
    needs_every_row=True,
    implied_by_key=True,
)
KINDS = (NOT_NULL, UNIQUE)
