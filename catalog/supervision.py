"""Supervision (电子监察): one scorecard per department, per quarter.

What each figure means (docs/portal.md, "Supervision", has the same list for readers):

* **directory completeness** — the share of the department's datasets whose directory entry is
  complete: a summary, a category, a description for every field, and a sync schedule. Each
  incomplete dataset is listed with what it lacks.
* **freshness** — the share of its datasets meeting their declared update cycle now
  (:mod:`catalog.runs.freshness`).
* **quality** — the mean pass rate of the department's successful sync runs in the quarter, and
  in the quarter before (the trend).
* **applications answered on time** — of the applications to the department whose deadline fell
  in the quarter, the share decided by the deadline; the ones still pending past it are counted
  as late. Withdrawn applications do not count.
* **objections answered on time** — the same for data objections (数据异议) raised on its data.
* **open correction-list rows** — rows its sync runs quarantined that no later run has fixed.

A quarter is ``2026Q4``: calendar quarters of dates in Beijing time.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from catalog import corrections
from catalog.clock import as_utc, utc_now
from catalog.db import tables
from catalog.directory.model import DatasetSpec
from catalog.runs.freshness import LOCAL_TZ, freshness

_QUARTER = re.compile(r"^(\d{4})Q([1-4])$")


@dataclass(frozen=True)
class Quarter:
    year: int
    q: int

    @classmethod
    def parse(cls, text: str) -> Quarter:
        m = _QUARTER.match(text.strip().upper())
        if m is None:
            raise ValueError(f"a quarter is written like 2026Q4, not {text!r}")
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def of(cls, d: dt.date) -> Quarter:
        return cls(d.year, (d.month - 1) // 3 + 1)

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.year, 3 * (self.q - 1) + 1, 1)

    @property
    def last_day(self) -> dt.date:
        nxt = self.next()
        return nxt.first_day - dt.timedelta(days=1)

    def next(self) -> Quarter:
        return Quarter(self.year + (self.q == 4), self.q % 4 + 1)

    def previous(self) -> Quarter:
        return Quarter(self.year - (self.q == 1), (self.q - 2) % 4 + 1)

    def start_utc(self) -> dt.datetime:
        return dt.datetime.combine(self.first_day, dt.time.min, tzinfo=LOCAL_TZ).astimezone(dt.UTC)

    def end_utc(self) -> dt.datetime:
        return self.next().start_utc()

    def __str__(self) -> str:
        return f"{self.year}Q{self.q}"


@dataclass(frozen=True)
class OnTime:
    """How many were due, how many answered in time, how many late (answered late or still open)."""

    due: int
    on_time: int
    late: int

    @property
    def rate(self) -> float | None:
        return self.on_time / self.due if self.due else None


@dataclass
class Scorecard:
    """One department's figures for one quarter."""

    department_code: str
    department_name: str
    quarter: Quarter
    datasets: int
    complete: int
    incomplete: dict[str, list[str]]  # dataset code -> what its entry lacks
    fresh: int
    stale: list[str]
    pass_rate: float | None
    pass_rate_before: float | None
    applications: OnTime
    objections: OnTime | None = None
    open_corrections: int | None = None

    @property
    def completeness(self) -> float | None:
        return self.complete / self.datasets if self.datasets else None

    @property
    def freshness(self) -> float | None:
        return self.fresh / self.datasets if self.datasets else None


def missing_metadata(spec: DatasetSpec) -> list[str]:
    """What a dataset's directory entry lacks (empty when complete)."""
    lacks = []
    if not spec.summary.strip():
        lacks.append("summary")
    if not spec.category.strip():
        lacks.append("category")
    undescribed = [f.name for f in spec.fields if not f.description.strip()]
    if undescribed:
        lacks.append("field descriptions: " + ", ".join(undescribed))
    if not spec.schedule:
        lacks.append("schedule")
    return lacks


def _specs(conn: sa.Connection, department: str) -> list[DatasetSpec]:
    d = tables.datasets
    rows = conn.execute(sa.select(d.c.spec).where(d.c.department_code == department).order_by(d.c.code))
    return [DatasetSpec.model_validate(r.spec) for r in rows]


def _last_success(conn: sa.Connection, codes: Sequence[str]) -> dict[str, dt.datetime]:
    if not codes:
        return {}
    r = tables.sync_runs
    q = (
        sa.select(r.c.dataset_code, sa.func.max(r.c.finished_at))
        .where(r.c.status == "success", r.c.dataset_code.in_(codes))
        .group_by(r.c.dataset_code)
    )
    return {code: as_utc(at) for code, at in conn.execute(q) if at is not None}


def _pass_rate(conn: sa.Connection, codes: Sequence[str], quarter: Quarter) -> float | None:
    if not codes:
        return None
    r = tables.sync_runs
    q = sa.select(sa.func.avg(r.c.pass_rate)).where(
        r.c.status == "success",
        r.c.dataset_code.in_(codes),
        r.c.pass_rate.is_not(None),
        r.c.started_at >= quarter.start_utc(),
        r.c.started_at < quarter.end_utc(),
    )
    value = conn.execute(q).scalar()
    return float(value) if value is not None else None


def _local_date(at: dt.datetime) -> dt.date:
    return as_utc(at).astimezone(LOCAL_TZ).date()


def _on_time(
    rows: Sequence[Any], quarter: Quarter, today: dt.date, *, due: str, done_at: str, open_status: str
) -> OnTime:
    """Items whose deadline (column ``due``) fell in the quarter: answered by it, or late (answered
    after it, or still open after it). Open items not yet due are not counted yet."""
    n = ok = late = 0
    for row in rows:
        deadline: dt.date = getattr(row, due)
        if not quarter.first_day <= deadline <= quarter.last_day:
            continue
        if row.status == open_status:
            if today > deadline:
                n, late = n + 1, late + 1
            continue
        answered = getattr(row, done_at)
        n += 1
        if answered is not None and _local_date(answered) <= deadline:
            ok += 1
        else:
            late += 1
    return OnTime(due=n, on_time=ok, late=late)


def _applications(conn: sa.Connection, department: str, quarter: Quarter, today: dt.date) -> OnTime:
    a = tables.applications
    rows = conn.execute(
        sa.select(a.c.deadline, a.c.decided_at, a.c.status).where(
            a.c.department_code == department,
            a.c.status != "withdrawn",
            a.c.decided_by.is_distinct_from("auto"),
        )
    ).all()
    return _on_time(rows, quarter, today, due="deadline", done_at="decided_at", open_status="pending")


def _objections(conn: sa.Connection, department: str, quarter: Quarter, today: dt.date) -> OnTime:
    o = tables.objections
    rows = conn.execute(
        sa.select(o.c.due_date, o.c.answered_at, o.c.status).where(o.c.department_code == department)
    ).all()
    return _on_time(rows, quarter, today, due="due_date", done_at="answered_at", open_status="open")


def scorecard(
    engine: sa.Engine, department_code: str, quarter: Quarter, *, now: dt.datetime | None = None
) -> Scorecard:
    """The department's scorecard for ``quarter`` as of ``now``."""
    at = now or utc_now()
    today = _local_date(at)
    with engine.connect() as conn:
        name = conn.execute(
            sa.select(tables.departments.c.name).where(tables.departments.c.code == department_code)
        ).scalar()
        if name is None:
            raise KeyError(department_code)
        specs = _specs(conn, department_code)
        codes = [s.code for s in specs]
        incomplete = {s.code: lacks for s in specs if (lacks := missing_metadata(s))}
        last = _last_success(conn, codes)
        stale = [
            s.code for s in specs if not freshness(s.update_cycle, s.schedule, last.get(s.code), at).on_time
        ]
        card = Scorecard(
            department_code=department_code,
            department_name=str(name),
            quarter=quarter,
            datasets=len(specs),
            complete=len(specs) - len(incomplete),
            incomplete=incomplete,
            fresh=len(specs) - len(stale),
            stale=stale,
            pass_rate=_pass_rate(conn, codes, quarter),
            pass_rate_before=_pass_rate(conn, codes, quarter.previous()),
            applications=_applications(conn, department_code, quarter, today),
            objections=_objections(conn, department_code, quarter, today),
        )
    card.open_corrections = corrections.open_rows(engine, specs)
    return card


def scorecards(engine: sa.Engine, quarter: Quarter, *, now: dt.datetime | None = None) -> list[Scorecard]:
    """Every department's scorecard, by department code."""
    with engine.connect() as conn:
        codes = [
            r.code
            for r in conn.execute(sa.select(tables.departments.c.code).order_by(tables.departments.c.code))
        ]
    return [scorecard(engine, code, quarter, now=now) for code in codes]
