"""Schema drift: source columns compared with a dataset's declared schema."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pyarrow as pa

from connectors.base import EXTRA_COLUMN, ROW_COLUMN, SOURCE_COLUMN
from connectors.conform import type_label

_ORIGIN = (SOURCE_COLUMN, ROW_COLUMN, EXTRA_COLUMN)


@dataclass(frozen=True)
class Drift:
    """Columns added to the source, declared columns missing, and declared columns retyped.

    ``retyped`` holds ``(field, declared type, source type)``.
    """

    added: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    retyped: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when the source matches the declared schema."""
        return not (self.added or self.missing or self.retyped)

    def describe(self) -> str:
        """A message naming each drifted column (or "no schema drift")."""
        if self.empty:
            return "no schema drift"
        parts = []
        if self.added:
            parts.append("added columns: " + ", ".join(self.added))
        if self.missing:
            parts.append("missing columns: " + ", ".join(self.missing))
        if self.retyped:
            parts.append(
                "retyped columns: "
                + ", ".join(
                    f"{name} (declared {declared}, found {found})" for name, declared, found in self.retyped
                )
            )
        return "schema drift: " + "; ".join(parts)


def _family(arrow_type: pa.DataType) -> str:
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type  # dictionary encoding is storage, not a type
    if pa.types.is_null(arrow_type):
        return "null"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_integer(arrow_type):
        return "int"
    if pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_decimal(arrow_type):
        return "decimal"
    if (
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or pa.types.is_string_view(arrow_type)
    ):
        return "string"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    return str(arrow_type)


# which source type families each declared family accepts without a retype
_ACCEPTS = {
    "int": {"int"},
    "float": {"int", "float", "decimal"},
    "decimal": {"int", "decimal"},
    "string": {"string"},
    "bool": {"bool"},
    "date": {"date"},
    "timestamp": {"timestamp", "date"},
}


def compatible(source: pa.DataType, declared: pa.DataType) -> bool:
    """Whether a typed source column can feed a declared type without a retype."""
    found, want = _family(source), _family(declared)
    if found == "null":
        return True
    return found in _ACCEPTS.get(want, {want})


def compare_schema(
    source_columns: Mapping[str, pa.DataType] | list[str],
    target: pa.Schema,
    *,
    source_names: Mapping[str, str] | None = None,
) -> Drift:
    """Compare source columns (names, or names -> Arrow types for typed sources) with ``target``.

    ``source_names`` maps a target field to its source column when the names differ. The
    ``_source``/``_row``/``_extra`` columns are ignored. Retypes are only reported for typed
    sources (SQL, Parquet).
    """
    mapping = dict(source_names or {})
    present = list(source_columns)
    typed = source_columns if isinstance(source_columns, Mapping) else None
    wanted = {mapping.get(f.name, f.name): f for f in target}
    missing = [f.name for f in target if mapping.get(f.name, f.name) not in present]
    added = [c for c in present if c not in wanted and c not in _ORIGIN]
    retyped: list[tuple[str, str, str]] = []
    if typed is not None:
        for column, declared in wanted.items():
            if column in typed and not compatible(typed[column], declared.type):
                retyped.append((declared.name, type_label(declared.type), type_label(typed[column])))
    return Drift(added, missing, retyped)
