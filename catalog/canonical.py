"""Canonical JSON: the exact bytes that the hub signs.

``canonical_json`` writes UTF-8 with object members sorted, no insignificant whitespace and
non-ASCII characters as themselves. Dates and datetimes become ISO 8601 strings and
``Decimal`` values strings (as ``catalog.certificates.jsonable`` stores them).

For the values we sign — strings, integers within ±2**53, booleans, null and nested
objects/arrays of them — the output is byte for byte the JSON Canonicalization Scheme of
RFC 8785 (JCS): members are ordered by the UTF-16 code units of their names, strings are
escaped as ECMAScript's ``JSON.stringify`` does (``\\"``, ``\\\\``, ``\\b \\f \\n \\r \\t``,
other control characters as lower-case ``\\u00xx``, nothing else), and finite floats are
written in ECMAScript's shortest round-trip form (``1.0`` -> ``1``, ``1e21`` -> ``1e+21``), so
any JCS implementation in another language reproduces the bytes. Non-finite floats (NaN,
infinities) have no JSON form and are refused with ``ValueError``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from typing import Any

__all__ = ["canonical_json"]


def canonical_json(obj: Any) -> bytes:
    """The canonical (RFC 8785 compatible) UTF-8 JSON bytes of ``obj``."""
    parts: list[str] = []
    _write(obj, parts)
    return "".join(parts).encode("utf-8")


def _utf16_key(name: str) -> bytes:
    # RFC 8785 §3.2.3 orders names by UTF-16 code units, which differs from code-point order
    # only for characters beyond the BMP against U+E000..U+FFFF.
    return name.encode("utf-16-be", "surrogatepass")


def _write(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, float):
        out.append(_es_number(value))
    elif isinstance(value, decimal.Decimal):
        out.append(json.dumps(str(value)))
    elif isinstance(value, dt.datetime | dt.date | dt.time):
        out.append(json.dumps(value.isoformat()))
    elif isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"canonical JSON needs string object keys, got {type(key).__name__}")
        out.append("{")
        for i, key in enumerate(sorted(value, key=_utf16_key)):
            if i:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _write(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} has no canonical JSON form")


def _es_number(x: float) -> str:
    """ECMAScript Number::toString for a finite double (RFC 8785 §3.2.2.3)."""
    if not math.isfinite(x):
        raise ValueError(f"{x!r} is not a finite number; it has no JSON form")
    if x == 0:
        return "0"  # also -0.0
    if x < 0:
        return "-" + _es_number(-x)
    # repr() gives the shortest digits that round-trip, as ECMAScript requires
    _sign, digits_t, exp = decimal.Decimal(repr(x)).as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digits_t)).rstrip("0") or "0"
    exp += len(digits_t) - len(digits)
    k = len(digits)
    n = exp + k  # x = 0.digits * 10**n
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    e = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{mantissa}e{'+' if e > 0 else '-'}{abs(e)}"
