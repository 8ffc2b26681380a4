"""Field and dataset rules that quality turns into a Great Expectations suite.

The rules are plain frozen dataclasses so that the directory (or anything else) can build
them from its own records without knowing Great Expectations.

A column rule is ``(field, kind, params)``. Each kind is a :class:`~quality.rules.base.RuleKind`
in the registry (:mod:`quality.rules.registry`): its parameter model, its GX expectation and
the explanation a department reads. The built-in kinds:

=============  ==========================================  =====================================
kind           params                                      meaning
=============  ==========================================  =====================================
not_null       –                                           value is present
unique         –                                           no two rows share the value
citizen_id     –                                           GB 11643 18-digit ID, real birth date
credit_code    –                                           GB 32100 unified social credit code
mobile         –                                           mainland mobile, 11 digits
enum           ``values``: list of allowed values          value is one of them
range          ``min`` and/or ``max`` (inclusive)          numbers, or ISO dates / date(time)s
regex          ``pattern``                                 value matches (``re.search``)
max_length     ``max``: int                                string length at most ``max``
not_future     –                                           date / timestamp not after today/now
compare        ``op`` (< <= > >= == !=), ``other`` field   this field ``op`` the other field
=============  ==========================================  =====================================

They live in ``presence`` (not_null, unique), ``identifiers`` (citizen_id, credit_code,
mobile), ``values`` (enum, regex, max_length), ``ranges`` (range, not_future) and
``compare``; ``registry`` lists them. A kind's parameters are checked by its model when a
:class:`ColumnRule` is made: an unknown kind or refused parameters raise ``ValueError``
naming the field and the kind.

Every rule but ``not_null`` skips null values: a missing value is only a not_null violation.
Dataset-level checks (primary key, volume change, superseded copies) are not column rule
kinds; they are fields of :class:`DatasetRules` and run in :mod:`quality.validate`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from quality.rules.base import RuleKind
from quality.rules.compare import COMPARE_OPS
from quality.rules.registry import (
    UnknownRuleKind,
    register_rule_kind,
    registered,
    rule_kind,
    rule_kinds,
    unregister_rule_kind,
)

__all__ = [
    "CITIZEN_ID",
    "COMPARE",
    "COMPARE_OPS",
    "CREDIT_CODE",
    "DUPLICATE_KEY_POLICIES",
    "ENUM",
    "MAX_LENGTH",
    "MOBILE",
    "NOT_FUTURE",
    "NOT_NULL",
    "PRIMARY_KEY",
    "RANGE",
    "REGEX",
    "SUPERSEDED",
    "UNIQUE",
    "VOLUME_CHANGE",
    "ColumnRule",
    "DatasetRules",
    "RuleKind",
    "UnknownRuleKind",
    "register_rule_kind",
    "registered",
    "rule_kind",
    "rule_kinds",
    "unregister_rule_kind",
]

# the built-in kinds' names (the registry is the list of what exists)
NOT_NULL = "not_null"
UNIQUE = "unique"
CITIZEN_ID = "citizen_id"
CREDIT_CODE = "credit_code"
MOBILE = "mobile"
ENUM = "enum"
RANGE = "range"
REGEX = "regex"
MAX_LENGTH = "max_length"
NOT_FUTURE = "not_future"
COMPARE = "compare"

#: rule names used in violations for the dataset-level checks
PRIMARY_KEY = "primary_key"
VOLUME_CHANGE = "volume_change"
#: an older copy of a key replaced by the copy in a later file (``duplicate_keys`` latest_file_wins)
SUPERSEDED = "superseded"
#: what duplicate keys do: every copy is a violation, or across files the latest file's copy wins
DUPLICATE_KEY_POLICIES: frozenset[str] = frozenset({"quarantine_all", "latest_file_wins"})


@dataclass(frozen=True)
class ColumnRule:
    """One rule on one field.

    e.g. ``ColumnRule("promised_days", "compare", {"op": "<=", "other": "legal_days"})``.
    """

    field: str
    kind: str
    params: Mapping[str, Any] = dc_field(default_factory=dict)
    _parsed: Any = dc_field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        # an unknown kind or parameters its model refuses: ValueError naming the field and kind
        kind = rule_kind(self.kind, field=self.field)
        object.__setattr__(self, "_parsed", kind.parse(self.field, self.params))

    @property
    def registered_kind(self) -> RuleKind[Any]:
        """The registered kind of this rule."""
        return rule_kind(self.kind, field=self.field)

    @property
    def parsed(self) -> Any:
        """The parameters as the kind's parameter model (checked when the rule was made)."""
        return self._parsed

    def reads(self) -> tuple[str, ...]:
        """Every field the rule reads: its own, then any others (``compare``'s ``other``)."""
        return (self.field, *self.registered_kind.reads(self._parsed))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (see :meth:`from_dict`)."""
        return {"field": self.field, "kind": self.kind, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnRule:
        """Build a rule from ``{"field", "kind", "params"}``."""
        return cls(field=str(data["field"]), kind=str(data["kind"]), params=dict(data.get("params") or {}))


@dataclass(frozen=True)
class DatasetRules:
    """All rules of one dataset.

    ``key``: the primary key (possibly composite), checked for uniqueness when not empty.
    ``max_volume_change``: allowed relative change of the row count against
    ``previous_row_count`` (0.5 = ±50 %); the check runs only when both are set and the
    previous count is positive. ``duplicate_keys``: ``quarantine_all`` (every copy of a
    duplicated key is a violation) or ``latest_file_wins`` (when the copies come from several
    files and the latest file holds exactly one, that copy is good and the others are
    ``superseded``; see :func:`quality.validate.validate_chunks`).
    """

    key: Sequence[str] = ()
    columns: Sequence[ColumnRule] = ()
    max_volume_change: float | None = None
    previous_row_count: int | None = None
    duplicate_keys: str = "quarantine_all"

    def __post_init__(self) -> None:
        if self.max_volume_change is not None and self.max_volume_change < 0:
            raise ValueError("max_volume_change must be >= 0")
        if self.duplicate_keys not in DUPLICATE_KEY_POLICIES:
            raise ValueError(f"duplicate_keys must be one of {sorted(DUPLICATE_KEY_POLICIES)}")

    def fields(self) -> list[str]:
        """Every field the rules mention, in first-mention order."""
        seen: dict[str, None] = dict.fromkeys(self.key)
        for rule in self.columns:
            seen.update(dict.fromkeys(rule.reads()))
        return list(seen)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (see :meth:`from_dict`)."""
        return {
            "key": list(self.key),
            "columns": [r.to_dict() for r in self.columns],
            "max_volume_change": self.max_volume_change,
            "previous_row_count": self.previous_row_count,
            "duplicate_keys": self.duplicate_keys,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetRules:
        """Build rules from the :meth:`to_dict` form."""
        mvc = data.get("max_volume_change")
        prev = data.get("previous_row_count")
        return cls(
            key=[str(k) for k in data.get("key") or []],
            columns=[ColumnRule.from_dict(c) for c in data.get("columns") or []],
            max_volume_change=None if mvc is None else float(mvc),
            previous_row_count=None if prev is None else int(prev),
            duplicate_keys=str(data.get("duplicate_keys") or "quarantine_all"),
        )
