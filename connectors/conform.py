"""Cast source batches to a dataset's declared schema, collecting a reject per bad value.

Casting is vectorised (pyarrow.compute); when a column's cast fails, the column is bisected
so only the failing values are cast one by one. A bad value becomes null in the output and a
``Reject`` names its source, row, field and value; the row itself stays (quality decides).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import EXTRA_COLUMN, ROW_COLUMN, SOURCE_COLUMN, Reject
from connectors.normalise import hint, normalise

DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d")
TRUE_WORDS = ("true", "t", "yes", "y", "1", "是", "对")
FALSE_WORDS = ("false", "f", "no", "n", "0", "否", "错")
_ORIGIN = (SOURCE_COLUMN, ROW_COLUMN, EXTRA_COLUMN)
#: the time-zone rule: a declared ``timestamp`` holds Beijing wall-clock time (UTC+8, a fixed
#: offset: China has kept no daylight saving time since 1991). A value with an offset or zone
#: (CSV ``…+08:00`` / ``…Z``, tz-aware Parquet, timestamptz columns) is converted to UTC+8; a
#: value without one is taken as UTC+8 already. Finer than microseconds is truncated.
HUB_TZ = "+08:00"
HUB_TZINFO = dt.timezone(dt.timedelta(hours=8))
_UNITS = {"s": 0, "ms": 1, "us": 2, "ns": 3}
_FLOOR = {"s": "second", "ms": "millisecond", "us": "microsecond"}


@dataclass(frozen=True)
class Conformed:
    """A batch cast to the target schema (+ ``_source``, ``_row``, ``_extra``) and its rejects."""

    batch: pa.RecordBatch
    rejects: list[Reject] = field(default_factory=list)


def type_label(arrow_type: pa.DataType) -> str:
    """A short name for a declared type, as used in messages."""
    if pa.types.is_decimal(arrow_type):
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    return str(arrow_type)


def _reason(target: pa.DataType) -> str:
    if pa.types.is_integer(target):
        return "not a valid integer"
    if pa.types.is_floating(target):
        return "not a valid number"
    if pa.types.is_decimal(target):
        return "not a valid decimal"
    if pa.types.is_boolean(target):
        return "not a valid boolean"
    if pa.types.is_date(target):
        return "not a valid date"
    if pa.types.is_timestamp(target):
        return "not a valid timestamp"
    return f"not a valid {target}"


def _decimal_reason(text: str, target: pa.Decimal128Type) -> str:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return "not a valid decimal"
    if not value.is_finite():
        return "not a valid decimal"
    return f"does not fit {type_label(target)}"


def _parse_date(text: str) -> dt.date | None:
    """Dates the vectorised formats miss: unpadded Y/M/D (2020/1/5), ISO datetimes at midnight."""
    parts = text.replace("/", "-").split("-")
    if len(parts) == 3 and all(p.isdigit() for p in parts) and len(parts[0]) == 4:
        try:
            return dt.date(int(parts[0]), int(parts[1]), int(parts[2]))
        except ValueError:
            return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return value.date() if value.time() == dt.time(0) else None


def _parse_timestamp(text: str, target: pa.TimestampType) -> dt.datetime | None:
    """Timestamps pyarrow's ISO parser refuses: offsets for naive targets, "/" separators, YYYYMMDD."""
    candidate = text.replace("/", "-")
    if len(candidate) == 8 and candidate.isdigit():
        candidate = f"{candidate[:4]}-{candidate[4:6]}-{candidate[6:]}"
    try:
        value = dt.datetime.fromisoformat(candidate)
    except ValueError:
        return None
    if target.tz is None and value.tzinfo is not None:
        return value.astimezone(HUB_TZINFO).replace(tzinfo=None)  # the time-zone rule: UTC+8
    if target.tz is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _bisect_cast(
    array: pa.Array, caster: Callable[[pa.Array], pa.Array], target: pa.DataType
) -> tuple[pa.Array, list[int]]:
    """Cast ``array``; when that fails, split it until only the failing single values remain."""
    pieces: list[pa.Array] = []
    bad: list[int] = []

    def go(offset: int, part: pa.Array) -> None:
        try:
            pieces.append(caster(part))
            return
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            if len(part) == 1:
                pieces.append(pa.nulls(1, target))
                bad.append(offset)
                return
        mid = len(part) // 2
        go(offset, part.slice(0, mid))
        go(offset + mid, part.slice(mid))

    go(0, array)
    return pa.concat_arrays(pieces) if len(pieces) > 1 else pieces[0], bad


def _mask_indices(mask: pa.Array) -> list[int]:
    import numpy as np

    flags = pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
    return [int(i) for i in np.flatnonzero(flags)]


def _patch(array: pa.Array, fixes: dict[int, Any], target: pa.DataType) -> pa.Array:
    if not fixes:
        return array
    mask = [False] * len(array)
    for i in fixes:
        mask[i] = True
    replacements = pa.array([fixes[i] for i in sorted(fixes)], type=target)
    return pc.replace_with_mask(array, pa.array(mask), replacements)


def _byte_set(values: Any) -> Any:
    import numpy as np

    table = np.zeros(256, dtype=bool)
    table[list(values)] = True
    return table


# What utf8_trim_whitespace removes (utf8_is_space, checked over every code point): ASCII 09-0D
# and 1C-20, and U+0085 U+00A0 U+1680 U+2000-200A U+2028 U+2029 U+202F U+205F U+3000, whose UTF-8
# is C2 85 / C2 A0 / E1 9A 80 / E2 80 80-8A,A8,A9,AF / E2 81 9F / E3 80 80.
_ASCII_SPACES = (*range(0x09, 0x0E), *range(0x1C, 0x21))
_WIDE_SPACES = (0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000)


def _already_clean(text: pa.Array) -> bool:
    """True when no value is empty or starts/ends with whitespace (trimming would change nothing).

    Checked on the raw buffers with numpy, a few bytes a value, because trimming copies every
    string: most database text needs no trimming, and this skips the copy. The first and last
    two and three bytes of a value are compared with the UTF-8 of every wide space (in valid
    UTF-8 a match there is the whole first or last character)."""
    import numpy as np

    if not pa.types.is_string(text.type) or len(text) == 0:
        return len(text) == 0
    _, offsets_buf, data_buf = text.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[text.offset : text.offset + len(text) + 1]
    starts, ends = offsets[:-1], offsets[1:]
    if text.null_count:
        valid = pc.is_valid(text).to_numpy(zero_copy_only=False)
        starts, ends = starts[valid], ends[valid]
        if not len(starts):
            return True
    length = ends - starts
    if not length.all():
        return False  # an empty string becomes null
    data = np.frombuffer(data_buf, dtype=np.uint8)
    ascii_space = np.zeros(256, dtype=bool)
    ascii_space[list(_ASCII_SPACES)] = True
    if ascii_space[data[starts]].any() or ascii_space[data[ends - 1]].any():
        return False
    # a wide space is 2 bytes led by C2 or 3 bytes led by E1-E3: only values with such a lead
    # byte where the first or last character would start are compared exactly
    lead = np.zeros(256, dtype=bool)
    wide = [chr(c).encode() for c in _WIDE_SPACES]
    for size in (2, 3):
        lead[:] = False
        lead[[w[0] for w in wide if len(w) == size]] = True
        codes = np.array([int.from_bytes(w, "big") for w in wide if len(w) == size], dtype=np.int32)
        long_enough = length >= size
        for at in (starts, ends - size):
            at = at[long_enough]
            at = at[lead[data[at]]]
            if not len(at):
                continue
            code = np.zeros(len(at), dtype=np.int32)
            for k in range(size):
                code = (code << 8) | data[at + k]
            if np.isin(code, codes).any():
                return False
    return True


def _cast_strings(column: pa.Array, target: pa.DataType) -> tuple[pa.Array, dict[int, str]]:
    """Cast trimmed text to ``target``; returns the array and {index: reason} of bad values."""
    text = column.cast(pa.string())
    # long text (scopes, addresses): checking is cheaper than trimming, which copies every value
    # (short text trims as fast as it is checked)
    long_text = pa.types.is_string(text.type) and len(text) and text.nbytes >= 48 * len(text)
    if (
        (pa.types.is_string(target) or pa.types.is_large_string(target))
        and long_text
        and _already_clean(text)
    ):
        return text.cast(target), {}
    text = pc.utf8_trim_whitespace(text)
    # an empty cell is a missing value (CSV and Excel cannot tell them apart), for text too
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    if pa.types.is_string(target) or pa.types.is_large_string(target):
        return text.cast(target), {}
    if pa.types.is_boolean(target):
        lower = pc.utf8_lower(text)
        is_true = pc.is_in(lower, value_set=pa.array(TRUE_WORDS))
        is_false = pc.is_in(lower, value_set=pa.array(FALSE_WORDS))
        out = pc.if_else(is_true, True, pc.if_else(is_false, False, pa.scalar(None, pa.bool_())))
        bad = pc.and_(pc.is_valid(text), pc.invert(pc.or_(is_true, is_false)))
        return out, dict.fromkeys(_mask_indices(bad), _reason(target))
    if pa.types.is_date(target):
        # strptime normalises impossible dates (1979-02-30 -> 1979-03-02): keep a parse only when
        # formatting it back gives the same text; anything else goes to the strict per-row parser
        parsed = []
        for f in DATE_FORMATS:
            p = pc.strptime(text, format=f, unit="s", error_is_null=True)
            same = pc.equal(pc.strftime(p, format=f), text)
            parsed.append(pc.if_else(same, p, pa.scalar(None, p.type)))
        out = pc.coalesce(*parsed).cast(target)
        bad_idx = _mask_indices(pc.and_(pc.is_valid(text), pc.is_null(out)))
        fixes, reasons = {}, {}
        for i in bad_idx:
            value = _parse_date(str(text[i].as_py()))
            if value is None:
                reasons[i] = _reason(target)
            else:
                fixes[i] = value
        return _patch(out, fixes, target), reasons
    zoned = _zoned_timestamps(text, target) if isinstance(target, pa.TimestampType) else None
    if zoned is not None:  # values with offsets, converted at once (bisecting them one by one is slow)
        text = pc.if_else(pc.is_valid(zoned), pa.scalar(None, pa.string()), text)
    out, bad_idx = _bisect_cast(text, lambda a: pc.cast(a, target), target)
    if zoned is not None:
        out = pc.coalesce(zoned, out)
    fixes, reasons = {}, {}
    for i in bad_idx:
        value_text = str(text[i].as_py())
        if isinstance(target, pa.TimestampType):
            stamp = _parse_timestamp(value_text, target)
            if stamp is not None:
                fixes[i] = stamp
                continue
        if isinstance(target, pa.Decimal128Type):
            reasons[i] = _decimal_reason(value_text, target)
        else:
            reasons[i] = _reason(target)
        why = hint(value_text) if _is_number(target) else None
        if why:
            reasons[i] = f"{reasons[i]}: {why}"
    return _patch(out, fixes, target), reasons


_OFFSET = r"^(?P<local>.+?)(?P<sign>[+-])(?P<hh>[0-9]{2}):?(?P<mm>[0-9]{2})$"


def _zoned_timestamps(text: pa.Array, target: pa.TimestampType) -> pa.Array | None:
    """Text timestamps with an offset (``…+08:00``, ``…Z``) in the declared naive type under the
    time-zone rule, null where a value has none or its local part does not parse (the per-value
    path decides those); None when no value has an offset."""
    if target.tz is not None or not len(text):
        return None
    text = pc.replace_substring_regex(text, r"[Zz]$", "+00:00")
    parts = pc.extract_regex(text, _OFFSET)
    matched = pc.is_valid(parts)
    if not pc.any(matched).as_py():
        return None
    local = pc.if_else(matched, pc.struct_field(parts, "local"), pa.scalar(None, pa.string()))
    stamps, _ = _bisect_cast(local, lambda a: pc.cast(a, target), target)  # unparsed: null, then per value
    hours = pc.cast(pc.struct_field(parts, "hh"), pa.int64())
    minutes = pc.cast(pc.struct_field(parts, "mm"), pa.int64())
    sign = pc.if_else(pc.equal(pc.struct_field(parts, "sign"), "-"), -1, 1)
    offset_minutes = pc.multiply(sign, pc.add(pc.multiply(hours, 60), minutes))
    shift_us = pc.multiply(pc.subtract(8 * 60, offset_minutes), 60_000_000)  # to UTC+8
    unit_us = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 1}[target.unit]
    scale = 1_000 if target.unit == "ns" else 1
    shift = pc.multiply(pc.divide(shift_us, unit_us), scale)
    shifted = pc.add(pc.cast(stamps, pa.int64()), shift)
    return pc.cast(shifted, target)


def _is_number(target: pa.DataType) -> bool:
    return bool(pa.types.is_integer(target) or pa.types.is_floating(target) or pa.types.is_decimal(target))


def _cast_timestamps(column: pa.Array, target: pa.TimestampType) -> pa.Array:
    """Timestamps to the declared type under the time-zone rule (UTC+8 wall clock, µs truncated)."""
    source: pa.TimestampType = column.type
    if source.tz is not None and target.tz is None:
        column = pc.local_timestamp(column.cast(pa.timestamp(source.unit, tz=HUB_TZ)))
    if _UNITS[source.unit] > _UNITS[target.unit]:
        column = pc.floor_temporal(column, unit=_FLOOR[target.unit])
        column = column.cast(pa.timestamp(target.unit, tz=column.type.tz), safe=False)
    return column.cast(target)


def _finite(out: pa.Array, bad: dict[int, str]) -> tuple[pa.Array, dict[int, str]]:
    """NaN and ±Infinity are not values a department means: null, with a reject each."""
    mask = pc.and_(pc.is_valid(out), pc.invert(pc.is_finite(out)))
    idx = _mask_indices(mask)
    if not idx:
        return out, bad
    for i in idx:
        bad[i] = "not a finite number"
    return pc.if_else(mask, pa.scalar(None, out.type), out), bad


def _cast_typed(column: pa.Array, target: pa.DataType) -> tuple[pa.Array, dict[int, str]]:
    if column.type == target:
        return column, {}
    if pa.types.is_timestamp(column.type) and isinstance(target, pa.TimestampType):
        column = _cast_timestamps(column, target)
    try:
        return pc.cast(column, target), {}
    except pa.ArrowNotImplementedError:
        reason = f"cannot convert {column.type} to {type_label(target)}"
        return pa.nulls(len(column), target), dict.fromkeys(_mask_indices(pc.is_valid(column)), reason)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    out, bad_idx = _bisect_cast(column, lambda a: pc.cast(a, target), target)
    return out, dict.fromkeys(bad_idx, _reason(target))


def cast_column(column: pa.Array, target: pa.DataType) -> tuple[pa.Array, dict[int, str]]:
    """Cast one column to ``target``: bad values become null, returned as {index: reason}."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()  # Parquet's dictionary-encoded strings are strings
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        out, bad = _cast_strings(column, target)
    elif pa.types.is_null(column.type):
        return pa.nulls(len(column), target), {}
    else:
        out, bad = _cast_typed(column, target)
    if pa.types.is_floating(target):
        out, bad = _finite(out, bad)
    return out, bad


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _extra_json(batch: pa.RecordBatch, extras: list[str]) -> pa.Array:
    if not extras:
        return pa.nulls(batch.num_rows, pa.string())
    rows = batch.select(extras).to_pylist()
    return pa.array([json.dumps(row, ensure_ascii=False, default=str) for row in rows], type=pa.string())


def conform(
    batch: pa.RecordBatch,
    target: pa.Schema,
    *,
    source_names: Mapping[str, str] | None = None,
    normalize: Mapping[str, Sequence[str]] | None = None,
) -> Conformed:
    """Cast ``batch`` to the declared ``target`` schema.

    ``source_names`` maps a target field to its source column when the names differ. The output
    holds the target fields, then ``_source``, ``_row`` and ``_extra`` (a JSON object of source
    columns not declared, null when there are none). Declared columns missing from the source
    are all null. Text is stripped of surrounding whitespace; an empty string is null
    (for every target type). Each value that cannot be cast is null in the output and reported as a
    ``Reject`` (the row stays). ``normalize`` maps a target field to its declared normalisations
    (``connectors.normalise``), applied to its text before the cast. Timestamps follow the
    time-zone rule (:data:`HUB_TZ`); NaN and ±Infinity are rejected in float fields.
    """
    names = batch.schema.names
    n = batch.num_rows
    mapping = dict(source_names or {})
    sources = (
        batch.column(SOURCE_COLUMN) if SOURCE_COLUMN in names else pa.repeat(pa.scalar("", pa.string()), n)
    )
    rows = batch.column(ROW_COLUMN) if ROW_COLUMN in names else pa.array(range(1, n + 1), pa.int64())
    used: set[str] = set()
    arrays: list[pa.Array] = []
    rejects: list[Reject] = []
    for target_field in target:
        source_name = mapping.get(target_field.name, target_field.name)
        if source_name not in names:
            arrays.append(pa.nulls(n, target_field.type))
            continue
        used.add(source_name)
        column = batch.column(source_name)
        steps = (normalize or {}).get(target_field.name)
        if steps:
            if pa.types.is_dictionary(column.type):
                column = column.dictionary_decode()
            column = normalise(column, steps)
        out, bad = cast_column(column, target_field.type)
        arrays.append(out)
        for i in sorted(bad):
            rejects.append(
                Reject(
                    source=str(sources[i].as_py()),
                    row=int(rows[i].as_py()),
                    field=target_field.name,
                    value=_text(column[i].as_py()),
                    reason=bad[i],
                )
            )
    extras = [c for c in names if c not in used and c not in _ORIGIN]
    arrays += [sources.cast(pa.string()), rows.cast(pa.int64()), _extra_json(batch, extras)]
    fields = [f.with_nullable(True) for f in target] + [
        pa.field(SOURCE_COLUMN, pa.string()),
        pa.field(ROW_COLUMN, pa.int64()),
        pa.field(EXTRA_COLUMN, pa.string()),
    ]
    out_batch = pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields, metadata=target.metadata))
    return Conformed(out_batch, rejects)
