"""What a column rule kind is made of, and the helpers the kinds share.

A :class:`RuleKind` bundles everything quality knows about one kind of field rule:

* ``params``: its parameter model, a dataclass whose ``__post_init__`` refuses bad values
  with a ``ValueError`` whose text completes "<kind> rule on '<field>' …";
* ``expectation``: the Great Expectations expectation that decides which rows break it,
  given the field, its parsed parameters and how the column is held (:class:`Column`);
* ``explain``: the text a department reads in the quarantine / correction list for one bad
  value (:class:`BadValue`), without the leading ``"<field>: "`` (validation adds it).

Nothing here imports Great Expectations; the expectation builders do, when called.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

P = TypeVar("P")

#: a GX expectation class and its keyword arguments (``meta`` is added by the suite builder)
GxExpectation = tuple[Any, dict[str, Any]]

# how the suite builder holds a column in the dataframe GX sees
NUMBER = "number"
STRING = "string"
TEMPORAL = "temporal"  # datetime64[ns] (naive or tz-aware) in pandas
DATE_OBJ = "date_object"  # python dates (outside the datetime64[ns] range)
TS_OBJ = "timestamp_object"  # timestamps outside the datetime64[ns] range
OTHER = "other"

_MAX_VALUE_CHARS = 64
_MAX_OTHER_ROWS = 10


@dataclass(frozen=True)
class ColumnType:
    """How a column is held in the dataframe GX validates (one of the constants above)."""

    kind: str
    tz: str | None = None


@dataclass(frozen=True)
class Column(Generic[P]):
    """What an expectation builder gets: the field, the rule's parsed parameters, the column's type."""

    field: str
    params: P
    type: ColumnType


@dataclass(frozen=True)
class BadValue(Generic[P]):
    """One value that broke a rule, as the explanation sees it.

    ``value`` is the original Arrow value (an int column with nulls still gives ``30``);
    ``others`` the values on the same row of the other fields the rule reads (see
    :attr:`RuleKind.reads`); ``same_value_rows`` is filled for rules that need every row: the
    other bad rows holding the same value, as the department knows them (labels or row ids).
    """

    value: Any
    params: P
    others: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    same_value_rows: Sequence[Any] = ()


@dataclass(frozen=True)
class NoParams:
    """The parameter model of a rule without parameters (a flag such as ``not_null``)."""


def _reads_nothing(params: Any) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True)
class RuleKind(Generic[P]):
    """One kind of column rule: its parameters, its GX expectation, its explanation.

    ``string_values``: the rule checks text, so the column is validated as strings (mobile
    numbers stored as integers). ``needs_every_row``: the rule compares rows with each other
    (``unique``), so chunked validation runs it once over every row at the end.
    ``implied_by_key``: the primary-key check already covers it when the key is this single
    field. ``reads``: the other fields the rule reads, from its parameters (``compare``).
    """

    name: str
    params: type[P]
    expectation: Callable[[Column[P]], GxExpectation]
    explain: Callable[[BadValue[P]], str]
    #: one line for people: what a value must be to pass
    meaning: str
    string_values: bool = False
    needs_every_row: bool = False
    implied_by_key: bool = False
    reads: Callable[[P], tuple[str, ...]] = _reads_nothing

    def __post_init__(self) -> None:
        if not dataclasses.is_dataclass(self.params):
            raise TypeError(f"rule kind {self.name!r}: the parameter model must be a dataclass")

    def parse(self, field: str, params: Mapping[str, Any]) -> P:
        """The parameters as the kind's model; ``ValueError`` naming the kind and field if they don't fit."""
        where = f"{self.name} rule on {field!r}"
        if not isinstance(params, Mapping):
            raise ValueError(f"{where} needs its parameters as a mapping, got {type(params).__name__}")
        fields = dataclasses.fields(self.params)  # type: ignore[arg-type]
        names = [f.name for f in fields]
        unknown = [str(k) for k in params if k not in names]
        if unknown:
            takes = f"it takes {', '.join(names)}" if names else "it takes none"
            raise ValueError(f"{where} has no parameter {', '.join(map(repr, unknown))} ({takes})")
        missing = [
            f.name
            for f in fields
            if f.name not in params
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise ValueError(f"{where} needs the parameter {', '.join(map(repr, missing))}")
        try:
            return self.params(**params)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where} {exc}") from None


# --------------------------------------------------------------------------- message helpers


def fmt(v: Any) -> str:
    """A value as a department reads it in a message (dates in ISO form, long text cut)."""
    if v is None:
        return "null"
    if isinstance(v, _dt.datetime):
        text = v.isoformat(sep=" ")
    elif isinstance(v, _dt.date):
        text = v.isoformat()
    else:
        text = str(v)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 1] + "…"


def rows_text(rows: Sequence[Any]) -> str:
    """``also on row 57`` / ``also on rows 3, 9 and 12 more``."""
    shown = ", ".join(str(r) for r in rows[:_MAX_OTHER_ROWS])
    more = f" and {len(rows) - _MAX_OTHER_ROWS} more" if len(rows) > _MAX_OTHER_ROWS else ""
    return f"also on row{'s' if len(rows) > 1 else ''} {shown}{more}"
