"""``compare``: this field against another field of the same row (``field op other``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quality import _gx
from quality.rules.base import BadValue, Column, GxExpectation, RuleKind, fmt

COMPARE_OPS: frozenset[str] = frozenset({"<", "<=", ">", ">=", "==", "!="})
NOT_EQUAL_METRIC = "column_pair_values.sharehub_not_equal"


@dataclass(frozen=True)
class CompareParams:
    """``op``: one of ``< <= > >= == !=``; ``other``: the other field's name."""

    op: str
    other: str

    def __post_init__(self) -> None:
        if self.op not in COMPARE_OPS:
            raise ValueError(f"needs 'op' in {sorted(COMPARE_OPS)}")
        if not isinstance(self.other, str):
            raise ValueError("needs the 'other' field name")


def _differ(a: Any, b: Any) -> Any:
    return a != b


def _compare(c: Column[CompareParams]) -> GxExpectation:
    gxe = _gx.expectations()
    f, other, op = c.field, c.params.other, c.params.op
    pair = {"ignore_row_if": "either_value_is_missing"}
    if op in (">", ">="):
        return gxe.ExpectColumnPairValuesAToBeGreaterThanB, {
            "column_A": f,
            "column_B": other,
            "or_equal": op == ">=",
            **pair,
        }
    if op in ("<", "<="):
        return gxe.ExpectColumnPairValuesAToBeGreaterThanB, {
            "column_A": other,
            "column_B": f,
            "or_equal": op == "<=",
            **pair,
        }
    if op == "==":
        return gxe.ExpectColumnPairValuesToBeEqual, {"column_A": f, "column_B": other, **pair}
    different = _gx.column_pair_map_expectation(
        "ExpectColumnPairValuesToBeDifferent",
        NOT_EQUAL_METRIC,
        _differ,
        "Column A differs from column B on every row where both are present.",
    )
    return different, {"column_A": f, "column_B": other, **pair}


def _explain(bad: BadValue[CompareParams]) -> str:
    p = bad.params
    return f"{fmt(bad.value)} is not {p.op} {p.other} ({fmt(bad.others[p.other])})"


def _reads(params: CompareParams) -> tuple[str, ...]:
    return (params.other,)


COMPARE = RuleKind(
    name="compare",
    params=CompareParams,
    expectation=_compare,
    explain=_explain,
    meaning="this field op the other field (< <= > >= == !=)",
    reads=_reads,
)
KINDS = (COMPARE,)
