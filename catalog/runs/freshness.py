"""Freshness: is a dataset updated as often as its directory entry promises (更新周期)?

A dataset meets its update cycle when its last successful sync is no older than the cycle's
length plus half of it (a daily dataset synced 30 hours ago is on time, 40 hours ago is late).
A dataset that never synced does not meet it. The next scheduled sync comes from the
dataset's ``schedule`` (cron or an Airflow preset such as ``@daily``), in the hub's local time.
The supervision scorecard counts the same answer per department.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

#: the longest a dataset of each update cycle may go without a successful sync, before grace
CYCLE_LENGTH: dict[str, dt.timedelta] = {
    "realtime": dt.timedelta(hours=1),
    "hourly": dt.timedelta(hours=1),
    "daily": dt.timedelta(days=1),
    "weekly": dt.timedelta(days=7),
    "monthly": dt.timedelta(days=31),
    "quarterly": dt.timedelta(days=92),
    "yearly": dt.timedelta(days=366),
}
GRACE = 0.5
LOCAL_TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Freshness:
    """A dataset's freshness at one moment."""

    last_success: dt.datetime | None
    next_run: dt.datetime | None  # None: manual only, or a schedule the hub cannot read
    on_time: bool
    due_by: dt.datetime | None  # when the dataset becomes late (None: never synced)


def next_run(schedule: str | None, after: dt.datetime) -> dt.datetime | None:
    """The next time ``schedule`` fires after ``after`` (UTC), or None for manual datasets."""
    if not schedule:
        return None
    from croniter import croniter

    try:
        it = croniter(schedule, after.astimezone(LOCAL_TZ))
        nxt = it.get_next(dt.datetime)
    except (ValueError, KeyError):
        return None
    assert isinstance(nxt, dt.datetime)
    return nxt.astimezone(dt.UTC)


def freshness(
    update_cycle: str, schedule: str | None, last_success: dt.datetime | None, now: dt.datetime
) -> Freshness:
    """Whether the dataset meets ``update_cycle`` at ``now``, and when it syncs next."""
    length = CYCLE_LENGTH.get(update_cycle, CYCLE_LENGTH["daily"])
    due_by = last_success + length * (1 + GRACE) if last_success is not None else None
    return Freshness(
        last_success=last_success,
        next_run=next_run(schedule, now),
        on_time=due_by is not None and now <= due_by,
        due_by=due_by,
    )
