"""Bounds: ``range`` (inclusive min and/or max, numbers or ISO dates / date(time)s) and
``not_future`` (a date or timestamp not after today / now)."""

from __future__ import annotations

import datetime as _dt
import operator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from quality import _gx
from quality.rules.base import (
    DATE_OBJ,
    NUMBER,
    TEMPORAL,
    TS_OBJ,
    BadValue,
    Column,
    ColumnType,
    GxExpectation,
    NoParams,
    RuleKind,
    fmt,
)


@dataclass(frozen=True)
class RangeParams:
    """``min`` and/or ``max``, inclusive: numbers, or ISO dates / date(time)s."""

    min: Any = None
    max: Any = None

    def __post_init__(self) -> None:
        if self.min is None and self.max is None:
            raise ValueError("needs 'min' and/or 'max'")


def _range(c: Column[RangeParams]) -> GxExpectation:
    lo = _bound(c.params.min, c.type, c.field)
    hi = _bound(c.params.max, c.type, c.field)
    return _gx.expectations().ExpectColumnValuesToBeBetween, {
        "column": c.field,
        "min_value": lo,
        "max_value": hi,
    }


def _bound(value: Any, kind: ColumnType, name: str) -> Any:
    """A range bound in the type GX compares the column with."""
    if value is None:
        return None
    if kind.kind in (TEMPORAL, TS_OBJ):
        if isinstance(value, str):
            value = _dt.datetime.fromisoformat(value)
        elif isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
            value = _dt.datetime.combine(value, _dt.time())
        if not isinstance(value, _dt.datetime):
            raise ValueError(f"range bound {value!r} on {name} must be an ISO date or a date(time)")
        if kind.tz is not None and value.tzinfo is None:
            import pandas as pd

            value = pd.Timestamp(value).tz_localize(kind.tz).to_pydatetime()
        return value
    if kind.kind == DATE_OBJ:
        if isinstance(value, str):
            return _dt.date.fromisoformat(value[:10])
        if isinstance(value, _dt.datetime):
            return value.date()
        return value
    if kind.kind == NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise ValueError(f"range bound {value!r} on numeric field {name} must be a number")
        return float(value) if isinstance(value, Decimal) else value
    raise ValueError(f"range rule on {name} needs a number, date or timestamp column")


def _explain_range(bad: BadValue[RangeParams]) -> str:
    v, lo, hi = bad.value, bad.params.min, bad.params.max

    def outside(op: Any, bound: Any) -> bool:
        try:
            return bound is not None and bool(op(v, _like(bound, v)))
        except TypeError:
            return False

    if outside(operator.lt, lo):
        return f"{fmt(v)} is below the minimum {fmt(lo)}"
    if outside(operator.gt, hi):
        return f"{fmt(v)} is above the maximum {fmt(hi)}"
    return f"{fmt(v)} is outside the range [{fmt(lo)}, {fmt(hi)}]"


def _like(bound: Any, v: Any) -> Any:
    """``bound`` converted to the type of the Arrow value ``v`` for a Python comparison."""
    if isinstance(v, _dt.datetime):
        b = _dt.datetime.fromisoformat(bound) if isinstance(bound, str) else bound
        if isinstance(b, _dt.date) and not isinstance(b, _dt.datetime):
            b = _dt.datetime.combine(b, _dt.time())
        if v.tzinfo is not None and b.tzinfo is None:
            b = b.replace(tzinfo=v.tzinfo)
        return b
    if isinstance(v, _dt.date):
        if isinstance(bound, str):
            return _dt.date.fromisoformat(bound[:10])
        return bound.date() if isinstance(bound, _dt.datetime) else bound
    if isinstance(v, Decimal) and isinstance(bound, int | float):
        return Decimal(str(bound))
    return bound


def _not_future(c: Column[NoParams]) -> GxExpectation:
    return _gx.expectations().ExpectColumnValuesToBeBetween, {
        "column": c.field,
        "max_value": _now_bound(c.type, c.field),
    }


def _now_bound(kind: ColumnType, name: str) -> Any:
    if kind.kind == DATE_OBJ:
        return _dt.date.today()
    if kind.kind in (TEMPORAL, TS_OBJ):
        if kind.tz is not None:
            return _dt.datetime.now(_dt.UTC)
        return _dt.datetime.now()
    raise ValueError(f"not_future rule on {name} needs a date or timestamp column")


def _explain_not_future(bad: BadValue[NoParams]) -> str:
    return f"{fmt(bad.value)} is in the future"


RANGE = RuleKind(
    name="range",
    params=RangeParams,
    expectation=_range,
    explain=_explain_range,
    meaning="min <= value <= max (numbers, or ISO dates / date(time)s)",
)
NOT_FUTURE = RuleKind(
    name="not_future",
    params=NoParams,
    expectation=_not_future,
    explain=_explain_not_future,
    meaning="date / timestamp not after today / now",
)
KINDS = (RANGE, NOT_FUTURE)
