"""Column values as JSON: the one place that says how dates, times and decimals are written.

Dates, times and timestamps become ISO 8601 text (``isoformat``) and decimals their exact
string, so no value loses digits in a float. Everything else is returned unchanged; callers
with stricter needs (the canonical JSON of signatures, the backup's bytes) add their rule on top.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping
from typing import Any

__all__ = ["json_value", "key_text", "spreadsheet_text"]


def json_value(v: Any) -> Any:
    """``v`` in a form ``json.dumps`` takes without losing information (see the module docstring)."""
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return str(v)
    return v


def key_text(values: Mapping[str, Any]) -> str:
    """The canonical text of a record's key: JSON of the key fields sorted by name, values as
    :func:`json_value` gives them, no spaces, non-ASCII kept (``{"uscc":"9133..."}``). The
    correction list and data objections name records this way, so the two can be matched."""
    import json

    return json.dumps(
        {k: json_value(values[k]) for k in sorted(values)}, ensure_ascii=False, separators=(",", ":")
    )


#: a cell starting with one of these is run as a formula by Excel, WPS and LibreOffice
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(value: Any) -> Any:
    """A value for a CSV cell: text a spreadsheet would run as a formula gets a leading
    apostrophe (CSV injection); anything else is returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value
