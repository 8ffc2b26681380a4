"""Rules on a value itself: ``enum`` (one of a list), ``regex`` (matches a pattern),
``max_length`` (text not longer than a limit)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from quality import _gx
from quality.rules.base import BadValue, Column, GxExpectation, RuleKind, fmt

#: allowed values shown in an ``enum`` message
_SHOWN_VALUES = 20


@dataclass(frozen=True)
class EnumParams:
    """``values``: the allowed values (a non-empty list)."""

    values: Sequence[Any]

    def __post_init__(self) -> None:
        v = self.values
        if not isinstance(v, Sequence) or isinstance(v, str) or not v:
            raise ValueError("needs a non-empty list 'values'")


def _enum(c: Column[EnumParams]) -> GxExpectation:
    return _gx.expectations().ExpectColumnValuesToBeInSet, {
        "column": c.field,
        "value_set": list(c.params.values),
    }


def _explain_enum(bad: BadValue[EnumParams]) -> str:
    allowed = ", ".join(fmt(a) for a in list(bad.params.values)[:_SHOWN_VALUES])
    return f"{fmt(bad.value)} is not one of the allowed values ({allowed})"


@dataclass(frozen=True)
class RegexParams:
    """``pattern``: a Python regular expression the value must match (``re.search``)."""

    pattern: str

    def __post_init__(self) -> None:
        if not isinstance(self.pattern, str):
            raise ValueError("needs a string 'pattern'")
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"has an invalid 'pattern': {exc}") from None


def _regex(c: Column[RegexParams]) -> GxExpectation:
    return _gx.expectations().ExpectColumnValuesToMatchRegex, {"column": c.field, "regex": c.params.pattern}


def _explain_regex(bad: BadValue[RegexParams]) -> str:
    return f"{fmt(bad.value)} does not match the pattern {bad.params.pattern}"


@dataclass(frozen=True)
class MaxLengthParams:
    """``max``: the longest text allowed, in characters."""

    max: int

    def __post_init__(self) -> None:
        limit = self.max
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise ValueError("needs a non-negative int 'max'")


def _max_length(c: Column[MaxLengthParams]) -> GxExpectation:
    return _gx.expectations().ExpectColumnValueLengthsToBeBetween, {
        "column": c.field,
        "max_value": int(c.params.max),
    }


def _explain_max_length(bad: BadValue[MaxLengthParams]) -> str:
    return f"length {len(str(bad.value))} is over the maximum {bad.params.max}"


ENUM = RuleKind(
    name="enum",
    params=EnumParams,
    expectation=_enum,
    explain=_explain_enum,
    meaning="value is one of the listed values",
)
REGEX = RuleKind(
    name="regex",
    params=RegexParams,
    expectation=_regex,
    explain=_explain_regex,
    meaning="value matches the pattern (re.search)",
    string_values=True,
)
MAX_LENGTH = RuleKind(
    name="max_length",
    params=MaxLengthParams,
    expectation=_max_length,
    explain=_explain_max_length,
    meaning="string length at most max",
    string_values=True,
)
KINDS = (ENUM, REGEX, MAX_LENGTH)
