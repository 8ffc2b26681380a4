"""Working-day calendar: weekends, public holidays, 调休 days, deadlines."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from catalog.access.workdays import Calendar
from sharehub.settings import Settings

D = dt.date.fromisoformat

# National Day 2025: 1–8 October off; Sunday 28 September and Saturday 11 October worked (调休).
NATIONAL_DAY_2025 = Calendar(
    holidays=frozenset(D(f"2025-10-0{i}") for i in range(1, 9)),
    extra_workdays=frozenset({D("2025-09-28"), D("2025-10-11")}),
)


def test_plain_week() -> None:
    cal = Calendar()
    assert cal.is_working_day(D("2025-09-26"))  # Friday
    assert not cal.is_working_day(D("2025-09-27"))  # Saturday
    assert not cal.is_working_day(D("2025-09-28"))  # Sunday
    assert cal.is_working_day(D("2025-09-29"))  # Monday


def test_holidays_and_extra_workdays() -> None:
    cal = NATIONAL_DAY_2025
    assert not cal.is_working_day(D("2025-10-01"))  # Wednesday, holiday
    assert not cal.is_working_day(D("2025-10-08"))  # Wednesday, holiday
    assert cal.is_working_day(D("2025-09-28"))  # Sunday, 调休上班
    assert cal.is_working_day(D("2025-10-11"))  # Saturday, 调休上班
    assert not cal.is_working_day(D("2025-10-12"))  # plain Sunday
    both = Calendar(holidays=frozenset({D("2025-10-11")}), extra_workdays=frozenset({D("2025-10-11")}))
    assert both.is_working_day(D("2025-10-11"))  # an extra working day wins


def test_start_never_counts_friday_to_monday() -> None:
    cal = Calendar()
    assert cal.add_working_days(D("2025-09-26"), 1) == D("2025-09-29")  # Friday -> Monday
    assert cal.add_working_days(D("2025-09-27"), 1) == D("2025-09-29")  # Saturday -> Monday
    assert cal.add_working_days(D("2025-09-29"), 1) == D("2025-09-30")  # Monday -> Tuesday
    assert cal.add_working_days(D("2025-09-26"), 5) == D("2025-10-03")  # a full week across a weekend
    assert cal.add_working_days(D("2025-09-26"), 10) == D("2025-10-10")


def test_deadline_across_national_day() -> None:
    cal = NATIONAL_DAY_2025
    # Friday + 1 lands on the 调休 Sunday
    assert cal.add_working_days(D("2025-09-26"), 1) == D("2025-09-28")
    # 30 Sep, 9, 10, 11 (Sat, worked), 13, 14, 15, 16, 17, 20 Oct
    assert cal.add_working_days(D("2025-09-29"), 10) == D("2025-10-20")
    assert cal.add_working_days(D("2025-09-30"), 1) == D("2025-10-09")  # the week off is skipped


def test_working_days_between_half_open() -> None:
    cal = NATIONAL_DAY_2025
    assert cal.working_days_between(D("2025-09-26"), D("2025-09-29")) == 2  # Sun (调休) and Mon
    assert cal.working_days_between(D("2025-09-29"), D("2025-09-29")) == 0
    assert cal.working_days_between(D("2025-09-29"), D("2025-09-26")) == 0
    assert cal.working_days_between(D("2025-09-30"), D("2025-10-08")) == 0
    assert Calendar().working_days_between(D("2025-09-26"), D("2025-09-29")) == 1  # (Fri, Mon]


@pytest.mark.parametrize("cal", [Calendar(), NATIONAL_DAY_2025])
def test_add_and_between_agree(cal: Calendar) -> None:
    start = D("2025-09-20")
    for offset in range(30):
        s = start + dt.timedelta(days=offset)
        for n in (1, 2, 5, 10):
            deadline = cal.add_working_days(s, n)
            assert cal.is_working_day(deadline)
            assert cal.working_days_between(s, deadline) == n
            assert cal.working_days_between(s, deadline - dt.timedelta(days=1)) == n - 1


def test_n_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Calendar().add_working_days(D("2025-09-26"), 0)


def test_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(holidays=[D("2025-10-01")], extra_workdays=[D("2025-10-11")], builtin_holidays=False)
    cal = Calendar.from_settings(settings)
    assert cal == Calendar(frozenset({D("2025-10-01")}), frozenset({D("2025-10-11")}))

    monkeypatch.setenv("SHAREHUB_BUILTIN_HOLIDAYS", "false")
    plain = Calendar.from_settings(Settings())
    assert plain == Calendar() and plain.covered_until is None  # the env var turns the built-in data off
    assert plain.add_working_days(D("2025-09-26"), 10) == D("2025-10-10")  # the old plain-week answer

    monkeypatch.setenv("SHAREHUB_HOLIDAYS", json.dumps(["2025-10-01", "2025-10-02"]))
    monkeypatch.setenv("SHAREHUB_EXTRA_WORKDAYS", json.dumps(["2025-09-28"]))
    from_env = Calendar.from_settings(Settings())
    assert from_env.holidays == frozenset({D("2025-10-01"), D("2025-10-02")})
    assert from_env.covered_until is None and not from_env.builtin_holidays
    assert from_env.add_working_days(D("2025-09-26"), 1) == D("2025-09-28")
    # Sun 28 Sep (configured), 29, 30 Sep, 3, 6, 7, 8, 9, 10, 13 Oct: only 1-2 Oct off, no built-in week
    assert from_env.add_working_days(D("2025-09-26"), 10) == D("2025-10-13")


# ---- China's calendar, built in -----------------------------------------------------------


def test_china_national_day_2025_out_of_the_box() -> None:
    """The issue's case: submitted Fri 2025-09-26, 10 working days. National Day and Mid-Autumn
    2025: Oct 1-8 off, Sun Sep 28 and Sat Oct 11 worked (State Council notice of 2024-11-12)."""
    cal = Calendar.from_settings(Settings())
    assert cal.is_working_day(D("2025-09-28")) and cal.is_working_day(D("2025-10-11"))
    assert not any(cal.is_working_day(D(f"2025-10-0{d}")) for d in range(1, 9))
    assert cal.add_working_days(D("2025-09-26"), 10) == D("2025-10-16")
    assert Calendar().add_working_days(D("2025-09-26"), 10) == D("2025-10-10")  # the plain week


def test_china_spring_festival_2026() -> None:
    """Spring Festival 2026: Feb 15-23 off, Sat Feb 14 and Sat Feb 28 worked."""
    cal = Calendar.china()
    assert cal.is_working_day(D("2026-02-14")) and cal.is_working_day(D("2026-02-28"))
    assert not any(cal.is_working_day(D(f"2026-02-{d}")) for d in range(15, 24))
    # Thu Feb 12 + 3 working days: Fri 13, Sat 14 (worked), then Tue 24 after the holiday
    assert cal.add_working_days(D("2026-02-12"), 3) == D("2026-02-24")


def test_configured_dates_win_over_the_built_in_data() -> None:
    cal = Calendar.china(holidays=[D("2025-09-28")], extra_workdays=[D("2025-10-03")])
    assert not cal.is_working_day(D("2025-09-28"))  # built-in 调休, configured off
    assert cal.is_working_day(D("2025-10-03"))  # built-in holiday, configured worked
    assert Calendar.from_settings(Settings(builtin_holidays=False)).is_working_day(D("2025-10-01"))


def test_deadlines_past_the_covered_years_warn(caplog: pytest.LogCaptureFixture, monkeypatch) -> None:
    from catalog.access import workdays

    monkeypatch.setattr(workdays, "_warned_years", set())  # once per process: start afresh
    cal = Calendar.china()
    assert cal.covered_until is not None and cal.covered_until >= 2026
    last = cal.covered_until
    assert not cal.beyond_coverage(D(f"{last}-12-31")) and cal.beyond_coverage(D(f"{last + 1}-01-04"))
    assert not Calendar().beyond_coverage(D("2100-01-01"))  # no built-in data, nothing to warn of
    with caplog.at_level("WARNING", logger="sharehub.workdays"):
        cal.add_working_days(D(f"{last}-12-24"), 10)
        cal.add_working_days(D(f"{last}-12-25"), 10)
    warnings = [r for r in caplog.records if r.name == "sharehub.workdays"]
    assert len(warnings) == 1 and str(last + 1) in warnings[0].getMessage()


def test_application_deadline_uses_the_china_calendar(make_api_hub) -> None:
    from catalog.access import applications

    hub = make_api_hub()
    a = applications.submit(
        hub.engine,
        hub.apps["不动产登记"][0],
        "SCJ-LIC",
        fields=None,
        purpose="核验",
        legal_basis="条例",
        calendar=Calendar.from_settings(hub.settings),
        deadline_days=hub.settings.working_days_deadline,
        default_rate_limit=60,
        now=dt.datetime(2025, 9, 26, 2, tzinfo=dt.UTC),  # 10:00 in Beijing
    )
    assert a.deadline == D("2025-10-16")
