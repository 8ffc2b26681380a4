"""Working days (工作日) and the decision deadline of a sharing application.

A day is a working day when it is Monday to Friday and not a public holiday (法定节假日), or
when it is an extra working day (调休上班日, a weekend day worked to bridge a holiday).

China's public holidays and 调休 working weekends come built in, from the State Council's
notices as the ``chinesecalendar`` package carries them (2004 to its last covered year, 2026
in 1.11). The deployment's own ``holidays`` / ``extra_workdays`` settings are merged on top and
win over the built-in data: a configured extra working day is always a working day, a
configured holiday is a holiday even where the built-in data says 调休. ``builtin_holidays =
false`` turns the built-in data off (a plain Monday-to-Friday week plus the settings). Past
the last covered year the built-in data knows no holidays: a deadline computed into such a
year is logged as a warning (once per year and process) and :meth:`Calendar.beyond_coverage`
lets a page say so beside the date — configure that year's holidays or upgrade the package.

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
import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

_ONE_DAY = dt.timedelta(days=1)
logger = logging.getLogger("sharehub.workdays")
_warned_years: set[int] = set()


@functools.cache
def china_builtin() -> tuple[frozenset[dt.date], frozenset[dt.date], int]:
    """The built-in Chinese calendar: public holidays, 调休 working days, last covered year."""
    import chinese_calendar

    holidays = frozenset(chinese_calendar.holidays)
    workdays = frozenset(chinese_calendar.workdays)
    return holidays, workdays, max(d.year for d in holidays | workdays)


class CalendarSettings(Protocol):
    """What :meth:`Calendar.from_settings` reads (``sharehub.settings.Settings`` fits)."""

    @property
    def holidays(self) -> Iterable[dt.date]: ...

    @property
    def extra_workdays(self) -> Iterable[dt.date]: ...

    @property
    def builtin_holidays(self) -> bool: ...


@dataclass(frozen=True)
class Calendar:
    """Public holidays and extra working days on top of the Monday-to-Friday week.

    ``holidays`` / ``extra_workdays`` are the deployment's own and win; ``builtin_holidays`` /
    ``builtin_workdays`` come from the built-in Chinese calendar (:meth:`china`), covering the
    years up to ``covered_until``. ``Calendar()`` is the plain week."""

    holidays: frozenset[dt.date] = frozenset()
    extra_workdays: frozenset[dt.date] = frozenset()
    builtin_holidays: frozenset[dt.date] = frozenset()
    builtin_workdays: frozenset[dt.date] = frozenset()
    covered_until: int | None = None  # last year of the built-in data; None without it

    @classmethod
    def china(cls, holidays: Iterable[dt.date] = (), extra_workdays: Iterable[dt.date] = ()) -> Calendar:
        """China's public holidays and 调休 built in, with the deployment's own dates on top."""
        b_holidays, b_workdays, last = china_builtin()
        return cls(
            holidays=frozenset(holidays),
            extra_workdays=frozenset(extra_workdays),
            builtin_holidays=b_holidays,
            builtin_workdays=b_workdays,
            covered_until=last,
        )

    def is_working_day(self, d: dt.date) -> bool:
        """Configured extra working day > configured holiday > built-in 调休 working day >
        built-in holiday > Monday to Friday."""
        if d in self.extra_workdays:
            return True
        if d in self.holidays:
            return False
        if d in self.builtin_workdays:
            return True
        return d.weekday() < 5 and d not in self.builtin_holidays

    def beyond_coverage(self, d: dt.date) -> bool:
        """Whether ``d`` lies past the years the built-in holiday data covers."""
        return self.covered_until is not None and d.year > self.covered_until

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
        if self.beyond_coverage(d) and d.year not in _warned_years:
            _warned_years.add(d.year)
            logger.warning(
                "a working-day deadline (%s) runs into %d, past the built-in holiday data "
                "(last year %s): it may ignore that year's public holidays; set "
                "SHAREHUB_HOLIDAYS / SHAREHUB_EXTRA_WORKDAYS or upgrade chinesecalendar",
                d.isoformat(),
                d.year,
                self.covered_until,
            )
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
        """The calendar of the settings: built-in Chinese data (unless ``builtin_holidays`` is
        off) with ``holidays`` and ``extra_workdays`` on top."""
        if getattr(settings, "builtin_holidays", True):
            return cls.china(settings.holidays, settings.extra_workdays)
        return cls(holidays=frozenset(settings.holidays), extra_workdays=frozenset(settings.extra_workdays))
