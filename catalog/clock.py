"""Time helpers shared by the hub DB modules: every timestamp is stored and compared in UTC."""

from __future__ import annotations

import datetime as dt
from typing import overload


def utc_now(now: dt.datetime | None = None) -> dt.datetime:
    """``now`` in UTC (the current time when None); a naive ``now`` is a programming error."""
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(dt.UTC)


@overload
def as_utc(value: dt.datetime) -> dt.datetime: ...
@overload
def as_utc(value: None) -> None: ...
@overload
def as_utc(value: dt.datetime | None) -> dt.datetime | None: ...
def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A timestamp read back from the hub DB, in UTC: SQLite returns naive values for
    ``DateTime(timezone=True)``, and everything the hub writes is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
