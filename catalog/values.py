"""Column values as JSON: the one place that says how dates, times and decimals are written.

Dates, times and timestamps become ISO 8601 text (``isoformat``) and decimals their exact
string, so no value loses digits in a float. Everything else is returned unchanged; callers
with stricter needs (the canonical JSON of signatures, the backup's bytes) add their rule on top.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

__all__ = ["json_value"]


def json_value(v: Any) -> Any:
    """``v`` in a form ``json.dumps`` takes without losing information (see the module docstring)."""
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return str(v)
    return v
