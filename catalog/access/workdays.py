"""Working days (工作日) and the decision deadline of a sharing application.

A day is a working day when it is Monday to Friday and not a public holiday (法定节假日), or
when it is listed as an extra working day (调休上班日, a weekend day worked to bridge a
holiday); an extra working day wins over everything else.

Deadline rule: an application submitted on day S with a limit of N working days must be
decided by ``add_working_days(S, N)``: the N-th working day *after* S. S itself never counts,
whether or not it is a working day (submitted on a Friday with N = 1: the deadline is the
next working day, normally Monday). The deadline is the **last** day on which the owner may
still decide in time; the application is overdue from the following calendar day on
(``today > deadline``). Dates are calendar dates in the hub's local time (Asia/Shanghai);
turning a timestamp into such a date is the caller's job.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

_ONE_DAY = dt.timedelta(days=1)


class CalendarSettings(Protocol):
    """What :meth:`Calendar.from_settings` reads (``sharehub.settings.Settings`` fits)."""

    @property
    def holidays(self) -> Iterable[dt.date]: ...

    @property
    def extra_workdays(self) -> Iterable[dt.date]: ...


@dataclass(frozen=True)
class Calendar:
    """Public holidays and extra working days on top of the Monday-to-Friday week."""

    holidays: frozenset[dt.date] = frozenset()
    extra_workdays: frozenset[dt.date] = frozenset()

    def is_working_day(self, d: dt.date) -> bool:
        """Mon–Fri and not a holiday, or any day listed in ``extra_workdays`` (调休上班)."""
        if d in self.extra_workdays:
            return True
        return d.weekday() < 5 and d not in self.holidays

    def add_working_days(self, start: dt.date, n: int) -> dt.date:
        """The n-th working day after ``start`` (``start`` itself never counts); n >= 1."""
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        d = start
        left = n
        while left:
            d += _ONE_DAY
            if self.is_working_day(d):
                left -= 1
        return d

    def working_days_between(self, a: dt.date, b: dt.date) -> int:
        """How many working days lie in the half-open interval (a, b]; 0 when b <= a."""
        count = 0
        d = a + _ONE_DAY
        while d <= b:
            count += self.is_working_day(d)
            d += _ONE_DAY
        return count

    @classmethod
    def from_settings(cls, settings: CalendarSettings) -> Calendar:
        """The calendar from ``Settings.holidays`` and ``Settings.extra_workdays``."""
        return cls(holidays=frozenset(settings.holidays), extra_workdays=frozenset(settings.extra_workdays))
