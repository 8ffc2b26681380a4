"""Validate an Arrow table against :class:`~quality.rules.DatasetRules` with Great Expectations.

``validate`` builds a GX Core ExpectationSuite from the rules, runs it on the table (as a
pandas dataframe batch of a shared ephemeral context) with result format COMPLETE and the
row-id column as ``unexpected_index_column_names``, and turns each failing expectation's
unexpected rows into per-row :class:`Violation` s. GX decides *which* rows break a rule; the
messages (*why*) come from a pure-Python pass over those rows only, on the original Arrow
values (so an int column with nulls still prints ``30``, not ``30.0``).

``split`` then separates good rows from bad rows (with a ``_reasons`` JSON column), which is
the quarantine / correction list that goes back to the department.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from quality.rules import PRIMARY_KEY, SUPERSEDED, VOLUME_CHANGE, DatasetRules
from quality.rules.base import (
    DATE_OBJ,
    NUMBER,
    OTHER,
    STRING,
    TEMPORAL,
    TS_OBJ,
    BadValue,
    Column,
    ColumnType,
    RuleKind,
    rows_text,
)
from quality.rules.identifiers import MOBILE_PATTERN as MOBILE_PATTERN

REASONS_COLUMN = "_reasons"
#: sample bad rows kept per expectation in ``to_json`` / the report
SAMPLE_ROWS = 20
_META_KEY = "sharehub_check"


@dataclass(frozen=True)
class Violation:
    """One broken rule on one row. ``field`` is None for row-less checks."""

    field: str | None
    rule: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "rule": self.rule, "message": self.message}


@dataclass(frozen=True)
class ExpectationResult:
    """The outcome of one GX expectation of the suite."""

    expectation_type: str
    column: str | None
    success: bool
    unexpected_count: int
    unexpected_percent: float | None
    details: dict[str, Any] = field(default_factory=dict)
    rule: str = ""
    sample_rows: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "expectation_type": self.expectation_type,
            "column": self.column,
            "rule": self.rule,
            "success": self.success,
            "unexpected_count": self.unexpected_count,
            "unexpected_percent": self.unexpected_percent,
            "details": _jsonable(self.details),
            "sample_rows": list(self.sample_rows),
        }


@dataclass
class ValidationOutcome:
    """Everything one validation found; ``to_json()`` is what gets stored per run."""

    suite_name: str
    success: bool
    row_count: int
    bad_row_count: int
    violations: dict[int, list[Violation]]
    expectations: list[ExpectationResult]
    dataset_checks: dict[str, dict[str, Any]]
    row_id: str = "_row"
    #: True when the table had no row-id column and row ids are row positions
    row_id_is_position: bool = False
    #: the GX ``ExpectationSuiteValidationResult`` (its unexpected lists trimmed to SAMPLE_ROWS),
    #: or a list of them when the rows were validated in chunks (one per chunk, then the keys)
    gx_result: Any = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-able summary: counts, expectations, dataset checks, sample bad rows and GX's result."""
        sample_ids: dict[int, None] = {}
        for exp in self.expectations:
            sample_ids.update(dict.fromkeys(exp.sample_rows))
        samples = [
            {"row": rid, "violations": [v.to_dict() for v in self.violations.get(rid, [])]}
            for rid in sorted(sample_ids)
        ]
        return {
            "suite_name": self.suite_name,
            "success": self.success,
            "row_count": self.row_count,
            "bad_row_count": self.bad_row_count,
            "violation_count": sum(len(v) for v in self.violations.values()),
            "row_id": self.row_id,
            "expectations": [e.to_dict() for e in self.expectations],
            "dataset_checks": _jsonable(self.dataset_checks),
            "sample_violations": samples,
            "gx_result": _describe(self.gx_result),
        }


def _describe(gx_result: Any) -> Any:
    if gx_result is None:
        return None
    if isinstance(gx_result, list):
        return {"parts": [r.describe_dict() for r in gx_result]}
    return gx_result.describe_dict()


@dataclass(frozen=True)
class _Check:
    """What one expectation of the suite stands for."""

    rule: str
    fields: tuple[str, ...]
    params: Mapping[str, Any]
    column: str | None
    #: the registered kind of a column rule (None for the dataset-level checks)
    kind: RuleKind[Any] | None = None
    #: the parameters as the kind's model
    parsed: Any = None

    @property
    def needs_every_row(self) -> bool:
        if self.kind is not None:
            return self.kind.needs_every_row
        return self.rule in (PRIMARY_KEY, VOLUME_CHANGE)


# --------------------------------------------------------------------------- public API


def validate(
    table: pa.Table,
    rules: DatasetRules,
    *,
    row_id: str = "_row",
    suite_name: str,
    row_label: str | None = None,
) -> ValidationOutcome:
    """Validate ``table`` with a GX suite built from ``rules``.

    ``row_id`` names an integer column that identifies rows in the violations; when the
    table has no such column, row positions (0-based) are used. Every field the rules
    mention must exist in the table (``ValueError`` otherwise). ``row_label`` optionally names
    a text column that messages use to point at other rows (e.g. "also on row 57" when the
    row id is an internal number but the department knows the file's line numbers).
    """
    _require_fields(table, rules)
    is_position = row_id not in table.column_names
    ids = _ids(table, row_id, is_position)
    part = _run_part(table, rules, _ALL, ids, row_id=row_id, suite_name=suite_name, row_label=row_label)
    return ValidationOutcome(
        suite_name=suite_name,
        success=part.success,
        row_count=table.num_rows,
        bad_row_count=len(part.violations),
        violations=dict(part.violations),
        expectations=part.results,
        dataset_checks=part.dataset_checks,
        row_id=row_id,
        row_id_is_position=is_position,
        gx_result=part.gx_result,
    )


def validate_chunks(
    chunks: Iterable[pa.Table],
    rules: DatasetRules,
    *,
    row_id: str,
    suite_name: str,
    row_label: str | None = None,
    on_chunk: Callable[[pa.Table, list[int]], None] | None = None,
    source_column: str | None = None,
) -> ValidationOutcome:
    """Validate a stream of tables as one batch, in memory bounded by one chunk.

    Row rules run per chunk (one GX validation each); the rules that need every row at once
    (primary key and ``unique`` columns, volume change) run once at the end on a table of only
    the key columns, the row id and the label. ``on_chunk(chunk, bad_ids)`` is called after
    each chunk with the ids of its rows that broke a row rule, so the caller can keep those
    rows (rows that only break a uniqueness rule are known at the end, in the outcome).
    ``row_id`` must be a column of every chunk. The outcome is the same as :func:`validate`'s
    on the concatenated chunks, except that ``gx_result`` holds one GX result per part.

    With ``rules.duplicate_keys == "latest_file_wins"``, ``source_column`` names the file each
    row came from; row ids must grow in the order the files were read.
    """
    latest_wins = rules.duplicate_keys == "latest_file_wins" and source_column is not None
    extra = [source_column] if latest_wins and source_column else []
    keep = list(
        dict.fromkeys([*_global_fields(rules), row_id, *([row_label] if row_label else []), *extra])
    )
    kept: list[pa.Table] = []
    merged = _Merged()
    rows = 0
    for chunk in chunks:
        if not chunk.num_rows:
            continue
        _require_fields(chunk, rules)
        rows += chunk.num_rows
        ids = _ids(chunk, row_id, False)
        part = _run_part(chunk, rules, _ROWS, ids, row_id=row_id, suite_name=suite_name, row_label=row_label)
        merged.add(part)
        kept.append(chunk.select(keep))
        if on_chunk is not None:
            on_chunk(chunk, sorted(part.violations))
    if kept:
        keys = pa.concat_tables(kept).combine_chunks()
        del kept
        part = _run_part(
            keys,
            rules,
            _GLOBAL,
            _ids(keys, row_id, False),
            row_id=row_id,
            suite_name=suite_name,
            row_label=row_label,
        )
        if latest_wins and source_column:
            _latest_file_wins(keys, part.violations, rules, row_id, source_column, row_label)
        merged.add(part)
    return ValidationOutcome(
        suite_name=suite_name,
        success=merged.success,
        row_count=rows,
        bad_row_count=len(merged.violations),
        violations=dict(merged.violations),
        expectations=merged.expectations(),
        dataset_checks=merged.dataset_checks,
        row_id=row_id,
        row_id_is_position=False,
        gx_result=merged.gx_results[0] if len(merged.gx_results) == 1 else merged.gx_results,
    )


def _latest_file_wins(
    keys: pa.Table,
    violations: dict[int, list[Violation]],
    rules: DatasetRules,
    row_id: str,
    source: str,
    row_label: str | None,
) -> None:
    """Turn duplicate-key violations into one winner per key and ``superseded`` older copies.

    Files are read in name order, so the copy with the largest row id is in the latest file.
    When that file holds exactly one copy, it is good and each other copy is ``superseded``;
    when it holds several, the department must choose: every copy stays a duplicate."""
    dup = [rid for rid, vs in violations.items() if any(v.rule == PRIMARY_KEY for v in vs)]
    if not dup:
        return
    key = list(rules.key)
    label = row_label or row_id
    sub = keys.filter(pc.is_in(keys.column(row_id), pa.array(dup, pa.int64())))
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in sub.select(list(dict.fromkeys([*key, row_id, source, label]))).to_pylist():
        groups[tuple(row[k] for k in key)].append(row)
    fields = ", ".join(key)
    for copies in groups.values():
        latest = max(copies, key=lambda r: int(r[row_id]))[source]
        in_latest = [r for r in copies if r[source] == latest]
        if len(in_latest) != 1:
            continue
        winner = in_latest[0]
        for row in copies:
            rid = int(row[row_id])
            kept = [v for v in violations[rid] if v.rule != PRIMARY_KEY]
            if row is not winner:
                kept.append(
                    Violation(
                        ",".join(key),
                        SUPERSEDED,
                        f"{fields}: superseded by row {winner[label]} (duplicate_keys: latest_file_wins)",
                    )
                )
            if kept:
                violations[rid] = kept
            else:
                del violations[rid]


# which rules a GX run covers: all of them, the per-row ones, the ones that need every row
_ALL, _ROWS, _GLOBAL = "all", "rows", "global"


def _global_fields(rules: DatasetRules) -> list[str]:
    fields = list(rules.key)
    fields += [r.field for r in rules.columns if r.registered_kind.needs_every_row]
    return list(dict.fromkeys(fields))


def _require_fields(table: pa.Table, rules: DatasetRules) -> None:
    missing = [f for f in rules.fields() if f not in table.column_names]
    if missing:
        raise ValueError(f"fields not in the table: {', '.join(missing)}")


def _ids(table: pa.Table, row_id: str, is_position: bool) -> pa.Array:
    if is_position:
        return pa.array(range(table.num_rows), pa.int64())
    return pc.cast(table.column(row_id), pa.int64()).combine_chunks()


@dataclass
class _Part:
    """What one GX run over one table found."""

    success: bool
    violations: dict[int, list[Violation]]
    results: list[ExpectationResult]
    checks: list[_Check]
    dataset_checks: dict[str, dict[str, Any]]
    gx_result: Any
    element_counts: list[int]


@dataclass
class _Merged:
    """Results of several parts, merged per check (counts summed, samples kept in order)."""

    success: bool = True
    violations: dict[int, list[Violation]] = field(default_factory=lambda: defaultdict(list))
    dataset_checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    gx_results: list[Any] = field(default_factory=list)
    _by_check: dict[str, tuple[ExpectationResult, int, int]] = field(default_factory=dict)

    def add(self, part: _Part) -> None:
        self.success = self.success and part.success
        for rid, vs in part.violations.items():
            self.violations[rid].extend(vs)
        self.dataset_checks.update(part.dataset_checks)
        self.gx_results.append(part.gx_result)
        for res, check, elements in zip(part.results, part.checks, part.element_counts, strict=True):
            marker = json.dumps([check.rule, check.fields, _jsonable(dict(check.params))], sort_keys=True)
            if marker not in self._by_check:
                self._by_check[marker] = (res, res.unexpected_count, elements)
                continue
            first, count, total = self._by_check[marker]
            count += res.unexpected_count
            total += elements
            samples = (first.sample_rows + res.sample_rows)[:SAMPLE_ROWS]
            merged = ExpectationResult(
                expectation_type=first.expectation_type,
                column=first.column,
                success=first.success and res.success,
                unexpected_count=count,
                unexpected_percent=(100.0 * count / total) if total else None,
                details=first.details,
                rule=first.rule,
                sample_rows=samples,
            )
            self._by_check[marker] = (merged, count, total)

    def expectations(self) -> list[ExpectationResult]:
        return [res for res, _count, _total in self._by_check.values()]


def _run_part(
    table: pa.Table,
    rules: DatasetRules,
    part: str,
    ids: pa.Array,
    *,
    row_id: str,
    suite_name: str,
    row_label: str | None,
) -> _Part:
    df, kinds = _to_pandas(table, rules, row_id, ids, only=_global_fields(rules) if part == _GLOBAL else None)
    checks, expectations = _build_suite(rules, kinds, part)

    import great_expectations as gx

    from quality import _gx

    with _gx.lock():
        batch_definition = _gx.batch_definition()  # the suite needs an active context
        suite = gx.ExpectationSuite(name=suite_name)
        for exp in expectations:
            suite.add_expectation(exp)
    result_format = {
        "result_format": "COMPLETE",
        "unexpected_index_column_names": [row_id],
        "return_unexpected_index_query": False,
        # with the row id as the dataframe's named index this makes GX return the ids as one
        # list instead of looking every unexpected row up (slow for many bad rows)
        "exclude_unexpected_values": True,
    }
    with _gx.lock():
        batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
        gx_result = batch.validate(suite, result_format=result_format)
    del df

    violations: dict[int, list[Violation]] = defaultdict(list)
    results: list[ExpectationResult] = []
    ordered_checks: list[_Check] = []
    element_counts: list[int] = []
    dataset_checks: dict[str, dict[str, Any]] = {}
    for res in sorted(gx_result.results, key=lambda r: int(r.expectation_config.meta[_META_KEY])):
        config = res.expectation_config
        check = checks[int(config.meta[_META_KEY])]
        r = res.result or {}
        bad_ids = _unexpected_ids(r.get("unexpected_index_list"), row_id)
        details: dict[str, Any] = {k: v for k, v in config.kwargs.items() if k not in ("column", "batch_id")}
        if res.exception_info and res.exception_info.get("raised_exception"):
            details["exception"] = res.exception_info.get("exception_message")
        if check.rule == VOLUME_CHANGE:
            volume = _volume_check(rules, table.num_rows, bool(res.success))
            dataset_checks[VOLUME_CHANGE] = volume
            details.update(volume)
        elif bad_ids:
            # positions and labels of the bad rows only (a dict of every row costs ~0.3 s a million)
            where = pc.index_in(pa.array(bad_ids, pa.int64()), value_set=ids)
            positions = dict(zip(bad_ids, where.to_pylist(), strict=True))
            labels = (
                dict(zip(bad_ids, table.column(row_label).take(where).to_pylist(), strict=True))
                if row_label
                else None
            )
            for rid, violation in _explain(check, table, bad_ids, positions, labels):
                violations[rid].append(violation)
        results.append(
            ExpectationResult(
                expectation_type=config.type,
                column=check.column,
                success=bool(res.success),
                unexpected_count=int(r.get("unexpected_count") or 0),
                unexpected_percent=_float_or_none(r.get("unexpected_percent")),
                details=details,
                rule=check.rule,
                sample_rows=tuple(bad_ids[:SAMPLE_ROWS]),
            )
        )
        ordered_checks.append(check)
        element_counts.append(int(r.get("element_count") or 0) - int(r.get("missing_count") or 0))
        _trim(r)
    return _Part(
        success=bool(gx_result.success),
        violations=violations,
        results=results,
        checks=ordered_checks,
        dataset_checks=dataset_checks,
        gx_result=gx_result,
        element_counts=element_counts,
    )


def split(table: pa.Table, outcome: ValidationOutcome) -> tuple[pa.Table, pa.Table]:
    """Split the validated ``table`` into (good rows, bad rows + ``_reasons``).

    ``_reasons`` is a JSON list of ``{field, rule, message}`` per bad row.
    """
    if outcome.row_id_is_position:
        ids = pa.array(range(table.num_rows), pa.int64())
    else:
        ids = pc.cast(table.column(outcome.row_id), pa.int64()).combine_chunks()
    bad_set = pa.array(sorted(outcome.violations), pa.int64())
    is_bad = pc.fill_null(pc.is_in(ids, value_set=bad_set), False)
    good = table.filter(pc.invert(is_bad))
    bad = table.filter(is_bad)
    bad_ids = ids.filter(is_bad).to_pylist()
    reasons = [
        json.dumps([v.to_dict() for v in outcome.violations[int(i)]], ensure_ascii=False) for i in bad_ids
    ]
    return good, bad.append_column(REASONS_COLUMN, pa.array(reasons, pa.string()))


# --------------------------------------------------------------------------- Arrow -> pandas


def _to_pandas(
    table: pa.Table, rules: DatasetRules, row_id: str, ids: pa.Array, *, only: Sequence[str] | None = None
) -> tuple[Any, dict[str, ColumnType]]:
    """The columns the rules need, converted so that GX's pandas metrics stay vectorised.

    Dates and timestamps become datetime64[ns] (when in range), decimals float64, and
    columns under string rules (mobile numbers stored as integers) strings. With ``only`` (the
    uniqueness pass over every row of a run) non-integer columns become equality codes.
    """
    string_fields = {r.field for r in rules.columns if r.registered_kind.string_values}
    arrays: dict[str, pa.Array | pa.ChunkedArray] = {}
    kinds: dict[str, ColumnType] = {}
    for name in only if only is not None else rules.fields():
        col = table.column(name)
        t = col.type
        kind = ColumnType(OTHER)
        if pa.types.is_timestamp(t) or pa.types.is_date(t):
            tz = t.tz if pa.types.is_timestamp(t) else None
            try:
                col = pc.cast(col, pa.timestamp("ns", tz=tz))
                kind = ColumnType(TEMPORAL, tz)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                kind = ColumnType(DATE_OBJ if pa.types.is_date(t) else TS_OBJ, tz)
        elif pa.types.is_decimal(t):
            col = pc.cast(col, pa.float64(), safe=False)
            kind = ColumnType(NUMBER)
        elif pa.types.is_integer(t) or pa.types.is_floating(t):
            kind = ColumnType(NUMBER)
        elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
            kind = ColumnType(STRING)
        if name in string_fields and kind.kind != STRING:
            col = pc.cast(col, pa.string())
            kind = ColumnType(STRING)
        if only is not None and not pa.types.is_integer(col.type):
            # the key pass checks uniqueness only: equal values get equal codes, and
            # integer codes cost pandas a fraction of the memory and time of millions of strings
            col = _equality_codes(col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col)
            kind = ColumnType(NUMBER)
        arrays[name] = col
        kinds[name] = kind
    df = pa.table(arrays).to_pandas()
    df.index = ids.to_pandas()
    df.index.name = row_id
    return df, kinds


def _equality_codes(values: pa.Array) -> pa.Array:
    """int64 codes with equal codes exactly for equal values (nulls stay null).

    Sorting finds the groups: five times faster than ``dictionary_encode`` on millions of
    distinct keys, and without its hash table (+290 MB at five million credit codes)."""
    import numpy as np

    order = pc.sort_indices(values, null_placement="at_end")
    ordered = values.take(order)
    n_valid = len(values) - values.null_count
    new_group = np.ones(n_valid, dtype=np.int64)
    if n_valid > 1:
        head = ordered.slice(0, n_valid - 1)
        tail = ordered.slice(1, n_valid - 1)
        new_group[1:] = np.asarray(pc.not_equal(tail, head).to_numpy(zero_copy_only=False), dtype=np.int64)
    del ordered
    codes = np.empty(len(values), dtype=np.int64)
    positions = order.to_numpy()
    codes[positions[:n_valid]] = np.cumsum(new_group)
    mask = np.zeros(len(values), dtype=bool)
    mask[positions[n_valid:]] = True
    return pa.array(codes, pa.int64(), mask=mask if values.null_count else None)


# --------------------------------------------------------------------------- suite


def _build_suite(
    rules: DatasetRules, kinds: Mapping[str, ColumnType], part: str = _ALL
) -> tuple[list[_Check], list[Any]]:
    """The suite's expectations and what each stands for: the primary key, then one per
    column rule (its registered kind builds it), then the volume check."""
    from quality import _gx

    gxe = _gx.expectations()
    checks: list[_Check] = []
    expectations: list[Any] = []

    def add(check: _Check, cls: Any, **kwargs: Any) -> None:
        if part == _ALL or (part == _GLOBAL) == check.needs_every_row:
            expectations.append(cls(meta={_META_KEY: len(checks)}, **kwargs))
            checks.append(check)

    key = tuple(rules.key)
    if len(key) == 1:
        add(_Check(PRIMARY_KEY, key, {}, key[0]), gxe.ExpectColumnValuesToBeUnique, column=key[0])
    elif len(key) > 1:
        add(
            _Check(PRIMARY_KEY, key, {}, ",".join(key)),
            gxe.ExpectCompoundColumnsToBeUnique,
            column_list=list(key),
        )

    seen: set[str] = set()
    for rule in rules.columns:
        kind = rule.registered_kind
        if part != _ALL and (part == _GLOBAL) != kind.needs_every_row:
            continue
        marker = json.dumps([rule.field, rule.kind, _jsonable(dict(rule.params))], sort_keys=True)
        if marker in seen or (kind.implied_by_key and key == (rule.field,)):
            continue
        seen.add(marker)
        check = _Check(rule.kind, rule.reads(), rule.params, rule.field, kind, rule.parsed)
        cls, kwargs = kind.expectation(
            Column(rule.field, rule.parsed, kinds.get(rule.field, ColumnType(OTHER)))
        )
        add(check, cls, **kwargs)

    if rules.max_volume_change is not None and rules.previous_row_count:
        prev = rules.previous_row_count
        x = rules.max_volume_change
        lo_rows = max(0, math.ceil(prev * (1 - x) - 1e-9))
        hi_rows = math.floor(prev * (1 + x) + 1e-9)
        add(
            _Check(VOLUME_CHANGE, (), {}, None),
            gxe.ExpectTableRowCountToBeBetween,
            min_value=lo_rows,
            max_value=hi_rows,
        )
    return checks, expectations


def _volume_check(rules: DatasetRules, n: int, success: bool) -> dict[str, Any]:
    prev = int(rules.previous_row_count or 0)
    return {
        "check": VOLUME_CHANGE,
        "success": success,
        "row_count": n,
        "previous_row_count": prev,
        "change": (n - prev) / prev if prev else None,
        "max_volume_change": rules.max_volume_change,
    }


# --------------------------------------------------------------------------- messages


def _explain(
    check: _Check,
    table: pa.Table,
    bad_ids: Sequence[int],
    positions: Mapping[int, int],
    labels: Mapping[int, Any] | None = None,
) -> Iterable[tuple[int, Violation]]:
    """Say why each of ``bad_ids`` broke ``check`` (from the original Arrow values).

    The primary key is explained here; a column rule by its registered kind."""
    idx = pa.array([positions[i] for i in bad_ids], pa.int64())
    values = {f: table.column(f).take(idx).to_pylist() for f in check.fields}
    rule = check.rule
    kind = check.kind
    if check.needs_every_row:
        groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        keys = list(zip(*(values[f] for f in check.fields), strict=True))
        for rid, k in zip(bad_ids, keys, strict=True):
            groups[k].append(rid)
        label = ", ".join(check.fields)
        for n, (rid, k) in enumerate(zip(bad_ids, keys, strict=True)):
            others = [r if labels is None else labels[r] for r in groups[k] if r != rid]
            if kind is None:  # the primary key
                msg = f"duplicate primary key ({rows_text(others)})"
            else:
                row = {f: values[f][n] for f in check.fields}
                msg = kind.explain(BadValue(k[0], check.parsed, row, others))
            yield rid, Violation(check.column, rule, f"{label}: {msg}")
        return

    if kind is None:  # pragma: no cover - every dataset-level check with rows is handled above
        raise ValueError(f"no explanation for the {rule} check")
    f = check.fields[0]
    for n, (rid, v) in enumerate(zip(bad_ids, values[f], strict=True)):
        row = {name: values[name][n] for name in check.fields}
        msg = kind.explain(BadValue(v, check.parsed, row))
        yield rid, Violation(f, rule, f"{f}: {msg}")


# --------------------------------------------------------------------------- helpers


def _unexpected_ids(index_list: Any, row_id: str) -> list[int]:
    """Row ids out of GX's ``unexpected_index_list`` (``[{row_id: [ids]}]`` or one dict per row)."""
    ids: list[int] = []
    for item in index_list or []:
        value = item[row_id] if isinstance(item, Mapping) else item
        if isinstance(value, list | tuple):
            ids.extend(int(v) for v in value)
        else:
            ids.append(int(value))
    return ids


def _float_or_none(v: Any) -> float | None:
    return None if v is None else float(v)


def _trim(result: dict[str, Any]) -> None:
    """Cut GX's complete unexpected lists down to samples so the stored result stays small."""
    for k, v in list(result.items()):
        if isinstance(v, list) and len(v) > SAMPLE_ROWS:
            result[k] = v[:SAMPLE_ROWS]
            result[f"{k}_truncated"] = True


def _jsonable(value: Any) -> Any:
    """Plain JSON types for rule params / details (dates as ISO text, numpy scalars as Python)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    item = getattr(value, "item", None)
    if callable(item):
        return _jsonable(item())
    return str(value)
