"""Access anomalies (异常访问): an app reading unlike its own history.

Two patterns, each judged per app and dataset from the audit log's allowed app calls:

* ``distinct_subjects`` — scraping. The number of distinct things the app looked up (subjects,
  or the key values of a key lookup) in the latest window, against the most it ever looked up
  in one window of the same length over its history. Flagged when it exceeds both
  ``min_subjects`` and ``factor`` × that peak. An app is judged once its history on the
  dataset holds ``min_history_windows`` windows with calls (a learning period, as behaviour
  analytics have: before it, the hub does not know what is usual for the app; a new app only
  reads what an owner approved for it, and its first days become its baseline).
* ``off_hours`` — calls in hours of the day (China time) the app does not use: an hour is
  usual when it holds at least ``usual_hour_share`` of the app's calls over its history. An
  app with fewer than ``min_history_calls`` calls in its history is not judged (too little
  to know its hours); a 24-hour batch system has every hour usual and is never flagged.
  Flagged when the window holds at least ``off_hours_min_calls`` calls in unusual hours.

A subject view or certificate list that consulted several datasets counts for each of them
(``hub_audit_datasets``). One anomaly stays open per app, dataset and kind: a later scan that
finds it again updates it. The owning department sees its datasets' anomalies; the hub sees all
(the portal's supervision page, ``sharehub anomalies list``).

**Throttling by policy.** When the dataset's grade has an ``anomaly_rate_limit``
(:mod:`catalog.directory.grades`), an open anomaly throttles the app on that dataset to that
many calls a minute until it is cleared by a hub admin or ``throttle_hours`` pass (a later
detection extends it). The API applies it (429 ``anomaly_throttled``); :class:`Throttles` is the
API's cached view.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from catalog.clock import as_utc, utc_now
from catalog.db import tables
from catalog.directory.grades import GradePolicy
from catalog.errors import HubError

KINDS = ("distinct_subjects", "off_hours")
#: China has one time zone and no daylight saving: local hour = UTC hour + 8
_LOCAL_OFFSET_H = 8


@dataclass(frozen=True)
class Thresholds:
    """The knobs (the ``anomaly_*`` settings)."""

    window_minutes: int = 60
    history_days: int = 14
    factor: float = 3.0
    min_subjects: int = 100
    off_hours_min_calls: int = 20
    usual_hour_share: float = 0.01
    min_history_calls: int = 200
    min_history_windows: int = 24
    throttle_hours: int = 24

    @classmethod
    def of(cls, settings: Any) -> Thresholds:
        return cls(
            window_minutes=settings.anomaly_window_minutes,
            history_days=settings.anomaly_history_days,
            factor=settings.anomaly_subject_factor,
            min_subjects=settings.anomaly_min_subjects,
            off_hours_min_calls=settings.anomaly_off_hours_min_calls,
            usual_hour_share=settings.anomaly_usual_hour_share,
            min_history_calls=settings.anomaly_min_history_calls,
            min_history_windows=settings.anomaly_min_history_windows,
            throttle_hours=settings.anomaly_throttle_hours,
        )


@dataclass(frozen=True)
class Anomaly:
    """One flag, as stored."""

    id: int
    app_id: str
    dataset_code: str | None
    department_code: str | None
    kind: str
    detected_at: dt.datetime
    window_start: dt.datetime
    window_end: dt.datetime
    observed: float
    baseline: float
    threshold: float
    details: dict[str, Any]
    status: str
    throttled_until: dt.datetime | None
    cleared_by: str | None
    cleared_at: dt.datetime | None
    clear_reason: str | None

    def throttled(self, now: dt.datetime) -> bool:
        return self.status == "open" and self.throttled_until is not None and self.throttled_until > now

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in self.__dict__.items():
            out[name] = value.isoformat() if isinstance(value, dt.datetime) else value
        return out


def _of(row: Any) -> Anomaly:
    return Anomaly(
        id=row.id,
        app_id=row.app_id,
        dataset_code=row.dataset_code,
        department_code=row.department_code,
        kind=row.kind,
        detected_at=as_utc(row.detected_at),
        window_start=as_utc(row.window_start),
        window_end=as_utc(row.window_end),
        observed=row.observed,
        baseline=row.baseline,
        threshold=row.threshold,
        details=dict(row.details or {}),
        status=row.status,
        throttled_until=as_utc(row.throttled_until),
        cleared_by=row.cleared_by,
        cleared_at=as_utc(row.cleared_at),
        clear_reason=row.clear_reason,
    )


# ---- reading the audit log ---------------------------------------------------------------


def _reads(start: dt.datetime, end: dt.datetime, apps: Iterable[str] | None = None) -> sa.Subquery:
    """(app_id, dataset_code, thing, at) of every allowed app data call in [start, end): a
    single-dataset call by its own dataset, a multi-dataset one once per dataset consulted."""
    a, d = tables.audit, tables.audit_datasets
    thing = sa.func.coalesce(a.c.subject, a.c.query)
    base = [
        a.c.at >= start,
        a.c.at < end,
        a.c.actor_kind == "app",
        a.c.decision == "allow",
        a.c.app_id.is_not(None),
        thing.is_not(None),
    ]
    if apps is not None:
        base.append(a.c.app_id.in_(sorted(set(apps))))
    single = sa.select(
        a.c.app_id.label("app_id"), a.c.dataset_code.label("dataset_code"), thing.label("thing"), a.c.at
    ).where(*base, a.c.dataset_code.is_not(None))
    multi = (
        sa.select(a.c.app_id, d.c.dataset_code, thing, a.c.at)
        .select_from(a.join(d, d.c.seq == a.c.seq))
        .where(*base, a.c.dataset_code.is_(None))
    )
    return sa.union_all(single, multi).subquery("reads")


def _bucket(dialect: str, at: Any, seconds: int) -> Any:
    if dialect == "postgresql":
        return sa.func.floor(sa.extract("epoch", at) / seconds)
    return sa.cast(sa.func.strftime("%s", at), sa.Integer) // seconds


def _local_hour(dialect: str, at: Any) -> Any:
    if dialect == "postgresql":
        return sa.cast(sa.extract("hour", at + sa.text(f"interval '{_LOCAL_OFFSET_H} hours'")), sa.Integer)
    return sa.cast(sa.func.strftime("%H", at, f"+{_LOCAL_OFFSET_H} hours"), sa.Integer)


@dataclass(frozen=True)
class Finding:
    """What one scan saw for an app and dataset."""

    app_id: str
    dataset_code: str
    kind: str
    observed: float
    baseline: float
    threshold: float
    details: dict[str, Any]


def detect(
    engine: sa.Engine, thresholds: Thresholds, *, now: dt.datetime | None = None
) -> tuple[list[Finding], dt.datetime, dt.datetime]:
    """The anomalies of the window ending ``now`` (nothing is written): findings, window start, end."""
    end = utc_now(now)
    window = dt.timedelta(minutes=thresholds.window_minutes)
    start = end - window
    history_start = start - dt.timedelta(days=thresholds.history_days)
    dialect = engine.dialect.name
    with engine.connect() as conn:
        r = _reads(start, end)
        current = conn.execute(
            sa.select(
                r.c.app_id, r.c.dataset_code, sa.func.count(sa.distinct(r.c.thing)), sa.func.count()
            ).group_by(r.c.app_id, r.c.dataset_code)
        ).all()
        if not current:
            return [], start, end
        apps = {row[0] for row in current}
        h = _reads(history_start, start, apps)
        seconds = int(window.total_seconds())
        bucket = _bucket(dialect, h.c.at, seconds).label("b")
        per_window = conn.execute(
            sa.select(h.c.app_id, h.c.dataset_code, bucket, sa.func.count(sa.distinct(h.c.thing))).group_by(
                h.c.app_id, h.c.dataset_code, bucket
            )
        ).all()
        hour = _local_hour(dialect, h.c.at).label("hour")
        history_hours = conn.execute(
            sa.select(h.c.app_id, hour, sa.func.count()).group_by(h.c.app_id, hour)
        ).all()
        w = _reads(start, end)
        whour = _local_hour(dialect, w.c.at).label("hour")
        window_hours = conn.execute(
            sa.select(w.c.app_id, w.c.dataset_code, whour, sa.func.count()).group_by(
                w.c.app_id, w.c.dataset_code, whour
            )
        ).all()

    peak: dict[tuple[str, str], int] = defaultdict(int)
    windows: dict[tuple[str, str], int] = defaultdict(int)
    for app_id, code, _b, n in per_window:
        peak[(app_id, code)] = max(peak[(app_id, code)], int(n))
        windows[(app_id, code)] += 1
    findings: list[Finding] = []
    for app_id, code, subjects, calls in current:
        if windows.get((app_id, code), 0) < thresholds.min_history_windows:
            continue  # still learning what is usual for this app
        base = peak.get((app_id, code), 0)
        threshold = max(float(thresholds.min_subjects), thresholds.factor * base)
        if subjects > threshold:
            findings.append(
                Finding(
                    app_id,
                    code,
                    "distinct_subjects",
                    float(subjects),
                    float(base),
                    threshold,
                    {
                        "calls": int(calls),
                        "window_minutes": thresholds.window_minutes,
                        "history_days": thresholds.history_days,
                        "history_windows": windows.get((app_id, code), 0),
                    },
                )
            )

    per_hour: dict[str, dict[int, int]] = defaultdict(dict)
    for app_id, hr, n in history_hours:
        per_hour[app_id][int(hr)] = int(n)
    unusual_calls: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
    for app_id, code, hr, n in window_hours:
        hours = per_hour.get(app_id, {})
        total = sum(hours.values())
        if total < thresholds.min_history_calls:
            continue  # too little history to know the app's hours
        if hours.get(int(hr), 0) >= thresholds.usual_hour_share * total:
            continue
        unusual_calls[(app_id, code)][int(hr)] = int(n)
    for (app_id, code), hours_seen in unusual_calls.items():
        count = sum(hours_seen.values())
        if count < thresholds.off_hours_min_calls:
            continue
        history = per_hour.get(app_id, {})
        total = sum(history.values())
        usual = sorted(hr for hr, n in history.items() if n >= thresholds.usual_hour_share * total)
        share = sum(history.get(hr, 0) for hr in hours_seen) / total
        findings.append(
            Finding(
                app_id,
                code,
                "off_hours",
                float(count),
                round(share, 6),
                float(thresholds.off_hours_min_calls),
                {
                    "hours": {f"{hr:02d}": n for hr, n in sorted(hours_seen.items())},
                    "usual_hours": usual,
                    "history_calls": total,
                    "window_minutes": thresholds.window_minutes,
                },
            )
        )
    return findings, start, end


# ---- recording ------------------------------------------------------------------------


def scan(
    engine: sa.Engine, thresholds: Thresholds, policy: GradePolicy, *, now: dt.datetime | None = None
) -> list[Anomaly]:
    """Detect and record: each finding opens an anomaly, or updates the open one of its app,
    dataset and kind; where the grade's policy throttles, sets ``throttled_until``. The
    anomalies found by this scan."""
    at = utc_now(now)
    findings, start, end = detect(engine, thresholds, now=at)
    if not findings:
        return []
    t, ds = tables.access_anomalies, tables.datasets
    found: list[int] = []
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # one scan at a time across API workers
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": 0x5E_A4_A0_01})
        owners = {
            r.code: (r.department_code, r.grade)
            for r in conn.execute(
                sa.select(ds.c.code, ds.c.department_code, ds.c.grade).where(
                    ds.c.code.in_(sorted({f.dataset_code for f in findings}))
                )
            )
        }
        for f in findings:
            department, grade = owners.get(f.dataset_code, (None, None))
            rule = policy[grade].anomaly_rate_limit if grade else None
            until = at + dt.timedelta(hours=thresholds.throttle_hours) if rule is not None else None
            values = {
                "detected_at": at,
                "window_start": start,
                "window_end": end,
                "observed": f.observed,
                "baseline": f.baseline,
                "threshold": f.threshold,
                "details": {**f.details, "throttle_per_minute": rule},
                "throttled_until": until,
            }
            open_id = conn.execute(
                sa.select(t.c.id).where(
                    t.c.app_id == f.app_id,
                    t.c.dataset_code == f.dataset_code,
                    t.c.kind == f.kind,
                    t.c.status == "open",
                )
            ).scalar()
            if open_id is not None:
                conn.execute(t.update().where(t.c.id == open_id).values(**values))
                found.append(int(open_id))
            else:
                result = conn.execute(
                    t.insert().values(
                        app_id=f.app_id,
                        dataset_code=f.dataset_code,
                        department_code=department,
                        kind=f.kind,
                        status="open",
                        **values,
                    )
                )
                assert result.inserted_primary_key is not None
                found.append(int(result.inserted_primary_key[0]))
    return [a for a in list_anomalies(engine, status=None) if a.id in set(found)]


def list_anomalies(
    engine: sa.Engine, *, department_code: str | None = None, status: str | None = "open", limit: int = 500
) -> list[Anomaly]:
    """Anomalies, newest first: all, or one department's datasets'; open ones by default."""
    t = tables.access_anomalies
    q = sa.select(t).order_by(t.c.detected_at.desc(), t.c.id.desc()).limit(limit)
    if department_code is not None:
        q = q.where(t.c.department_code == department_code)
    if status is not None:
        q = q.where(t.c.status == status)
    with engine.connect() as conn:
        return [_of(r) for r in conn.execute(q)]


def clear(
    engine: sa.Engine, anomaly_id: int, *, by: str, reason: str, now: dt.datetime | None = None
) -> Anomaly:
    """Close an anomaly (a hub admin looked into it): the throttle ends. Errors:
    ``anomaly_not_found`` (404), ``anomaly_reason_required`` (400), ``anomaly_cleared`` (409)."""
    reason = reason.strip()
    if not reason:
        raise HubError("anomaly_reason_required")
    t = tables.access_anomalies
    with engine.begin() as conn:
        row = conn.execute(sa.select(t).where(t.c.id == anomaly_id)).first()
        if row is None:
            raise HubError("anomaly_not_found", id=anomaly_id)
        done = conn.execute(
            t.update()
            .where(t.c.id == anomaly_id, t.c.status == "open")
            .values(status="cleared", cleared_by=by, cleared_at=utc_now(now), clear_reason=reason)
        )
        if done.rowcount != 1:
            raise HubError("anomaly_cleared", id=anomaly_id)
        row = conn.execute(sa.select(t).where(t.c.id == anomaly_id)).one()
    return _of(row)


class Throttles:
    """The API's view of which app and dataset pairs are throttled now: read from the hub DB
    at most every ``ttl_s`` seconds (a data call must not cost a query for this)."""

    def __init__(self, engine: sa.Engine, ttl_s: float = 5.0) -> None:
        self.engine = engine
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._read_at = -1e18
        self._until: dict[tuple[str, str], dt.datetime] = {}

    def throttled(self, app_id: str, dataset_code: str, *, now: dt.datetime | None = None) -> bool:
        """Whether an open anomaly throttles ``app_id`` on ``dataset_code`` now."""
        mono = time.monotonic()
        with self._lock:
            stale = mono - self._read_at >= self.ttl_s
        if stale:
            t = tables.access_anomalies
            with self.engine.connect() as conn:
                rows = conn.execute(
                    sa.select(t.c.app_id, t.c.dataset_code, t.c.throttled_until).where(
                        t.c.status == "open", t.c.throttled_until.is_not(None)
                    )
                ).all()
            fresh: dict[tuple[str, str], dt.datetime] = {}
            for r in rows:
                until = as_utc(r.throttled_until)
                key = (r.app_id, r.dataset_code)
                if until is not None and (key not in fresh or until > fresh[key]):
                    fresh[key] = until
            with self._lock:
                self._until, self._read_at = fresh, mono
        until = self._until.get((app_id, dataset_code))
        return until is not None and until > utc_now(now)

    def forget(self) -> None:
        """Read again on the next call (after a clear in this process)."""
        with self._lock:
            self._read_at = -1e18
