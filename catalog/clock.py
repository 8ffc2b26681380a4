"""Time helpers shared by the hub: every timestamp is stored and compared in UTC, and written as
text in one of three fixed forms (:func:`iso_utc`)."""

from __future__ import annotations

import datetime as dt
from typing import Literal, overload


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


IsoForm = Literal["isoformat", "seconds", "micros"]


def iso_utc(value: dt.datetime, form: IsoForm = "isoformat", *, what: str = "time") -> str:
    """An aware timestamp as UTC text; a naive one is refused (``what`` names it in the error).

    The forms are wire formats that signatures and hashes cover, so each is fixed:

    * ``isoformat``: ``2026-03-01T08:30:00.250000+00:00`` (Python's ``isoformat``, fraction only
      when non-zero) — the times inside signed copies;
    * ``seconds``: ``2026-03-01T08:30:00Z`` — the expiry in a certificate's QR payload;
    * ``micros``: ``2026-03-01T08:30:00.250000Z`` (always six digits) — the audit chain's ``at``.
    """
    if value.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware")
    utc = value.astimezone(dt.UTC)
    if form == "isoformat":
        return utc.isoformat()
    if form == "seconds":
        return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
