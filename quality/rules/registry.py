"""The registry of column rule kinds: kind name -> :class:`~quality.rules.base.RuleKind`.

Adding a kind is one module defining its ``RuleKind`` (parameter model, GX expectation,
explanation) and one entry in ``_BUILT_IN`` below (or a :func:`register_rule_kind` call in
the module that adds it). The suite builder, the explanations and the parameter checks of
:class:`~quality.rules.ColumnRule` all go through this registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from quality.rules import compare, identifiers, presence, ranges, values
from quality.rules.base import RuleKind

_BUILT_IN: tuple[RuleKind[Any], ...] = (
    *presence.KINDS,  # not_null, unique
    *identifiers.KINDS,  # citizen_id, credit_code, mobile
    *values.KINDS,  # enum, regex, max_length
    *ranges.KINDS,  # range, not_future
    *compare.KINDS,  # compare
)
_REGISTRY: dict[str, RuleKind[Any]] = {k.name: k for k in _BUILT_IN}


class UnknownRuleKind(ValueError):
    """A rule names a kind nobody registered."""


def register_rule_kind(kind: RuleKind[Any]) -> None:
    """Register ``kind``; a name already taken is an error (unregister it first)."""
    if not isinstance(kind, RuleKind):
        raise TypeError(f"expected a RuleKind, got {type(kind).__name__}")
    if kind.name in _REGISTRY:
        raise ValueError(f"rule kind {kind.name!r} is already registered")
    _REGISTRY[kind.name] = kind


def unregister_rule_kind(name: str) -> None:
    """Remove a registered kind (tests registering a kind of their own clean up with this)."""
    if name not in _REGISTRY:
        raise UnknownRuleKind(f"rule kind {name!r} is not registered")
    del _REGISTRY[name]


@contextmanager
def registered(kind: RuleKind[Any]) -> Iterator[RuleKind[Any]]:
    """``with registered(kind):`` the kind is known inside the block only."""
    register_rule_kind(kind)
    try:
        yield kind
    finally:
        unregister_rule_kind(kind.name)


def rule_kind(name: str, *, field: str | None = None) -> RuleKind[Any]:
    """The registered kind ``name``; :class:`UnknownRuleKind` (a ``ValueError``) names it, the
    field when given, and the known kinds."""
    try:
        return _REGISTRY[name]
    except KeyError:
        where = f" on field {field!r}" if field is not None else ""
        raise UnknownRuleKind(
            f"unknown rule kind {name!r}{where}; known kinds: {', '.join(rule_kinds())}"
        ) from None


def rule_kinds() -> list[str]:
    """The registered kind names, sorted."""
    return sorted(_REGISTRY)
