"""Canonical JSON: the exact bytes that the hub signs — RFC 8785 (JCS), by the ``rfc8785`` package.

``canonical_json`` writes UTF-8 with object members ordered by the UTF-16 code units of their
names, no insignificant whitespace, strings escaped as ECMAScript's ``JSON.stringify`` does and
numbers in ECMAScript's shortest round-trip form, so any JCS implementation in another language
reproduces the bytes. Before that, dates and datetimes become ISO 8601 strings, ``Decimal``
values strings (as :func:`catalog.values.json_value` writes them) and tuples arrays.
Refused: non-finite floats and integers outside ±2**53 (``ValueError``: a JCS verifier
elsewhere would re-serialise them differently), object keys that are not strings and other
types (``TypeError``).
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import rfc8785

__all__ = ["canonical_json"]


def canonical_json(obj: Any) -> bytes:
    """The canonical (RFC 8785) UTF-8 JSON bytes of ``obj``."""
    return rfc8785.dumps(_plain(obj))


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"canonical JSON needs string object keys, got {type(key).__name__}")
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")
