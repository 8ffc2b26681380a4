"""Sharing applications (共享申请) and the grants (授权) they create.

An app applies for a dataset: which fields, which sensitive fields it needs unmasked
("clear"), for what purpose and on what legal basis, and until when. Data shared
unconditionally (无条件共享) and asked for without clear fields is granted at once; anything
else waits for the owning department, which must decide within a number of working days
(:mod:`catalog.access.workdays`) and must give a reason to refuse. An approval creates a grant:
app × dataset × fields × clear fields × expiry × rate limit. An app holds at most one active
grant per dataset; a newer grant supersedes (revokes) the older one.

:func:`access_state` is what the API's gate asks on every data request.

Times: every timestamp is stored and returned in UTC. Deadlines and "overdue" use calendar
dates in Asia/Shanghai, where the departments work. A ``requested_until``/``valid_until``
date means "until the end of that day, UTC", so such a date is "in the past" once its UTC
day has ended.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from catalog.access.app_registry import App, from_mapping
from catalog.access.staff import StaffUser
from catalog.access.workdays import Calendar
from catalog.clock import as_utc as _aware
from catalog.clock import utc_now as _utc
from catalog.db import tables
from catalog.directory import store
from catalog.directory.grades import DEFAULT_POLICY, GradePolicy, GradeRules
from catalog.directory.model import DatasetSpec, Sensitivity, ShareType
from catalog.errors import HubError
from catalog.values import json_value

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
AUTO_DECIDER = "auto"
AUTO_REASON = "unconditional sharing"


def app_actor(app_id: str) -> str:
    """How a grant records that the app itself gave it up (``revoked_by``)."""
    return f"app:{app_id}"


_A = tables.applications
_G = tables.grants
_G2 = tables.grants.alias("newest_grant")  # the newest-grant subquery must not correlate with _G


def local_date(at: dt.datetime) -> dt.date:
    """The calendar date of a UTC-aware timestamp in Asia/Shanghai (the hub's working calendar)."""
    return at.astimezone(LOCAL_TZ).date()


def end_of_day_utc(d: dt.date) -> dt.datetime:
    """The last instant of ``d`` in UTC: what a grant's expiry date means."""
    return dt.datetime.combine(d, dt.time.max, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Application:
    """One sharing application, with ``overdue`` computed for the day it was read."""

    id: int
    app_id: str
    dataset_code: str
    department_code: str
    dataset_version: int
    fields: list[str]
    clear_fields: list[str]
    purpose: str
    legal_basis: str
    requested_until: dt.date | None
    status: str  # pending|approved|refused|withdrawn
    submitted_at: dt.datetime
    deadline: dt.date  # last working day on which the owner decides in time
    decided_at: dt.datetime | None
    decided_by: str | None
    reason: str | None
    grant_id: int | None
    overdue: bool  # pending and today (Asia/Shanghai) > deadline
    first_decided_by: str | None = None  # 双人审批: the owner's approval, waiting for the authority
    first_decided_at: dt.datetime | None = None

    @property
    def late(self) -> bool:
        """Whether the decision (or withdrawal) came after the deadline."""
        return self.decided_at is not None and local_date(self.decided_at) > self.deadline

    def to_json(self) -> dict[str, Any]:
        """The application as the API shows it."""
        return {
            "id": self.id,
            "app_id": self.app_id,
            "dataset_code": self.dataset_code,
            "department_code": self.department_code,
            "dataset_version": self.dataset_version,
            "fields": list(self.fields),
            "clear_fields": list(self.clear_fields),
            "purpose": self.purpose,
            "legal_basis": self.legal_basis,
            "requested_until": json_value(self.requested_until),
            "status": self.status,
            "submitted_at": json_value(self.submitted_at),
            "deadline": json_value(self.deadline),
            "overdue": self.overdue,
            "decided_at": json_value(self.decided_at),
            "decided_by": self.decided_by,
            "late": self.late,
            "reason": self.reason,
            "grant_id": self.grant_id,
            "first_decided_by": self.first_decided_by,
            "first_decided_at": json_value(self.first_decided_at),
        }


@dataclass(frozen=True)
class Grant:
    """One grant: the standing permission an approval created."""

    id: int
    app_id: str
    dataset_code: str
    application_id: int
    fields: list[str]
    clear_fields: list[str]
    valid_from: dt.datetime
    valid_until: dt.datetime | None  # None = until revoked
    rate_limit: int  # requests per minute
    status: str  # active|revoked (expiry is computed, see expired_at)
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    revoked_by: str | None
    revoke_reason: str | None
    narrowed_at: dt.datetime | None = None  # the grade policy narrowed it (the dataset's grade was raised)
    narrowed_reason: str | None = None

    def expired_at(self, now: dt.datetime) -> bool:
        """Whether the validity has run out at ``now`` (whatever the status)."""
        return self.valid_until is not None and self.valid_until < now

    def active_at(self, now: dt.datetime) -> bool:
        """Whether the grant lets the app in at ``now``: not revoked and not expired."""
        return self.status == "active" and not self.expired_at(now)

    def to_json(self) -> dict[str, Any]:
        """The grant as the API shows it."""
        return {
            "id": self.id,
            "app_id": self.app_id,
            "dataset_code": self.dataset_code,
            "application_id": self.application_id,
            "fields": list(self.fields),
            "clear_fields": list(self.clear_fields),
            "valid_from": json_value(self.valid_from),
            "valid_until": json_value(self.valid_until),
            "rate_limit": self.rate_limit,
            "status": self.status,
            "created_at": json_value(self.created_at),
            "revoked_at": json_value(self.revoked_at),
            "revoked_by": self.revoked_by,
            "revoke_reason": self.revoke_reason,
            "narrowed_at": json_value(self.narrowed_at),
            "narrowed_reason": self.narrowed_reason,
        }


def _application(row: Any, today: dt.date) -> Application:
    submitted_at = _aware(row.submitted_at)
    assert submitted_at is not None
    return Application(
        id=row.id,
        app_id=row.app_id,
        dataset_code=row.dataset_code,
        department_code=row.department_code,
        dataset_version=row.dataset_version,
        fields=list(row.fields),
        clear_fields=list(row.clear_fields),
        purpose=row.purpose,
        legal_basis=row.legal_basis,
        requested_until=row.requested_until,
        status=row.status,
        submitted_at=submitted_at,
        deadline=row.deadline,
        decided_at=_aware(row.decided_at),
        decided_by=row.decided_by,
        reason=row.reason,
        grant_id=row.grant_id,
        overdue=row.status == "pending" and today > row.deadline,
        first_decided_by=row.first_decided_by,
        first_decided_at=_aware(row.first_decided_at),
    )


def _grant(row: Any) -> Grant:
    valid_from, created_at = _aware(row.valid_from), _aware(row.created_at)
    assert valid_from is not None and created_at is not None
    return Grant(
        id=row.id,
        app_id=row.app_id,
        dataset_code=row.dataset_code,
        application_id=row.application_id,
        fields=list(row.fields),
        clear_fields=list(row.clear_fields),
        valid_from=valid_from,
        valid_until=_aware(row.valid_until),
        rate_limit=row.rate_limit,
        status=row.status,
        created_at=created_at,
        revoked_at=_aware(row.revoked_at),
        revoked_by=row.revoked_by,
        revoke_reason=row.revoke_reason,
        narrowed_at=_aware(row.narrowed_at),
        narrowed_reason=row.narrowed_reason,
    )


# ---- validation ---------------------------------------------------------------------------


def _dataset(engine: sa.Engine, code: str) -> store.PublishedDataset:
    try:
        published = store.get_dataset(engine, code)
    except KeyError:
        raise HubError("dataset_not_found", code=code) from None
    if published.spec.share.type is ShareType.NONE:
        raise HubError("not_shared", code=code)
    return published


def _checked_fields(spec: DatasetSpec, fields: Sequence[str] | None) -> list[str]:
    names = [f.name for f in spec.fields]
    if fields is None:
        return names
    if not fields:
        raise HubError("fields_required")
    for name in fields:
        if name not in names:
            raise HubError("unknown_field", code=spec.code, field=name)
    wanted = set(fields)
    return [n for n in names if n in wanted]


def _checked_clear(spec: DatasetSpec, fields: list[str], clear_fields: Sequence[str]) -> list[str]:
    names = [f.name for f in spec.fields]
    for name in clear_fields:
        if name not in names:
            raise HubError("unknown_field", code=spec.code, field=name)
        if name not in fields:
            raise HubError("clear_not_requested", field=name)
        if spec.field(name).sensitivity is not Sensitivity.SENSITIVE:
            raise HubError("not_sensitive", field=name)
    wanted = set(clear_fields)
    return [n for n in names if n in wanted]


def _check_future(d: dt.date | None, at: dt.datetime, field: str) -> None:
    if d is not None and end_of_day_utc(d) < at:
        raise HubError("bad_date", field=field)


# ---- writing ------------------------------------------------------------------------------


def _longest(at: dt.datetime, rules: GradeRules) -> dt.date | None:
    """The last day a grant may run under the grade policy (None: no limit)."""
    if rules.max_grant_days is None:
        return None
    return local_date(at) + dt.timedelta(days=rules.max_grant_days)


def _check_period(until: dt.date | None, at: dt.datetime, rules: GradeRules, grade: str, field: str) -> None:
    """A grant of this grade may not run past the policy's longest period (grant_too_long)."""
    longest = _longest(at, rules)
    if until is not None and longest is not None and until > longest:
        raise HubError(
            "grant_too_long", field=field, grade=grade, days=rules.max_grant_days, last=longest.isoformat()
        )


def _lock_app(conn: sa.Connection, app_id: str) -> None:
    # Serialises everything that changes one app's applications and grants (the "one pending
    # application" and "one active grant" rules). SQLite ignores FOR UPDATE: its single writer
    # and WAL snapshots refuse the second of two racing writers instead.
    found = conn.execute(
        sa.select(tables.apps.c.app_id).where(tables.apps.c.app_id == app_id).with_for_update()
    ).first()
    if found is None:
        raise HubError("app_not_found", app_id=app_id)


def _inserted_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _create_grant(
    conn: sa.Connection,
    *,
    application_id: int,
    app_id: str,
    dataset_code: str,
    fields: list[str],
    clear_fields: list[str],
    valid_until: dt.date | None,
    rate_limit: int,
    by: str,
    at: dt.datetime,
) -> int:
    conn.execute(
        _G.update()
        .where(_G.c.app_id == app_id, _G.c.dataset_code == dataset_code, _G.c.status == "active")
        .values(
            status="revoked",
            revoked_at=at,
            revoked_by=by,
            revoke_reason=f"superseded by application {application_id}",
        )
    )
    result = conn.execute(
        _G.insert().values(
            app_id=app_id,
            dataset_code=dataset_code,
            application_id=application_id,
            fields=fields,
            clear_fields=clear_fields,
            valid_from=at,
            valid_until=end_of_day_utc(valid_until) if valid_until is not None else None,
            rate_limit=rate_limit,
            status="active",
            created_at=at,
        )
    )
    grant_id = _inserted_id(result)
    conn.execute(_A.update().where(_A.c.id == application_id).values(grant_id=grant_id))
    return grant_id


def _load(conn: sa.Connection, application_id: int, at: dt.datetime) -> Application:
    row = conn.execute(sa.select(_A).where(_A.c.id == application_id)).one()
    return _application(row, local_date(at))


def submit(
    engine: sa.Engine,
    app_id: str,
    dataset_code: str,
    *,
    fields: Sequence[str] | None,
    clear_fields: Sequence[str] = (),
    purpose: str,
    legal_basis: str,
    requested_until: dt.date | None = None,
    calendar: Calendar,
    deadline_days: int,
    default_rate_limit: int,
    now: dt.datetime | None = None,
    policy: GradePolicy | None = None,
) -> Application:
    """Record an app's application for a dataset; grant it at once when the data is unconditional.

    ``fields`` None asks for every field; fields are stored in the dataset's order. Errors:
    ``dataset_not_found`` (404), ``not_shared`` (403), ``fields_required``, ``unknown_field``,
    ``clear_not_requested``, ``not_sensitive``, ``purpose_missing``, ``bad_date`` (400),
    ``app_not_found`` (404), ``already_pending`` (409).

    Unconditional data without clear fields: approved by ``auto`` with reason "unconditional
    sharing" and a grant (requested fields, nothing in clear, until the end of
    ``requested_until`` or until revoked, ``default_rate_limit``) — unless the owner has had
    its say on the app's standing grant (:func:`_owner_involved`): then, and for everything
    else, pending, with the deadline ``calendar.add_working_days(<submission date in
    Asia/Shanghai>, deadline_days)``.
    """
    at = _utc(now)
    published = _dataset(engine, dataset_code)
    spec = published.spec
    chosen = _checked_fields(spec, fields)
    clear = _checked_clear(spec, chosen, clear_fields)
    if not purpose.strip() or not legal_basis.strip():
        raise HubError("purpose_missing")
    _check_future(requested_until, at, "requested_until")
    if default_rate_limit < 1:
        raise HubError("bad_rate_limit")
    rules = (policy or DEFAULT_POLICY)[spec.grade]
    _check_period(requested_until, at, rules, spec.grade.value, "requested_until")
    deadline = calendar.add_working_days(local_date(at), deadline_days)
    # the grade policy: some grades are never granted without the owner (core by default)
    auto = spec.share.type is ShareType.UNCONDITIONAL and not clear and rules.may_auto_grant
    with engine.begin() as conn:
        _lock_app(conn, app_id)
        pending = conn.execute(
            sa.select(_A.c.id).where(
                _A.c.app_id == app_id, _A.c.dataset_code == dataset_code, _A.c.status.in_(OPEN_STATUSES)
            )
        ).first()
        if pending is not None:
            raise HubError("already_pending", app_id=app_id, id=pending.id, code=dataset_code)
        auto = auto and not _owner_involved(conn, app_id, dataset_code)
        values: dict[str, Any] = {
            "app_id": app_id,
            "dataset_code": dataset_code,
            "department_code": published.department.code,
            "dataset_version": published.version,
            "fields": chosen,
            "clear_fields": clear,
            "purpose": purpose.strip(),
            "legal_basis": legal_basis.strip(),
            "requested_until": requested_until,
            "status": "pending",
            "submitted_at": at,
            "deadline": deadline,
        }
        if auto:
            values.update(status="approved", decided_at=at, decided_by=AUTO_DECIDER, reason=AUTO_REASON)
        application_id = _inserted_id(conn.execute(_A.insert().values(**values)))
        if auto:
            _create_grant(
                conn,
                application_id=application_id,
                app_id=app_id,
                dataset_code=dataset_code,
                fields=chosen,
                clear_fields=[],
                valid_until=requested_until or _longest(at, rules),
                rate_limit=min(default_rate_limit, rules.default_rate_limit),
                by=AUTO_DECIDER,
                at=at,
            )
        return _load(conn, application_id, at)


def _owner_involved(conn: sa.Connection, app_id: str, dataset_code: str) -> bool:
    """Whether the owner has had its say on the app's newest grant for the dataset.

    True when that grant was approved by the owner (not by ``auto``) — a new automatic grant
    could be wider than what the owner decided — or was revoked by anyone but the app itself:
    a revocation by the owner (or the hub operator) must not be undone by applying again. In
    both cases a new application waits for the owner; once the owner decides it, the newest
    grant is the owner's approval or a refusal leaves the revocation standing.
    """
    row = conn.execute(
        sa.select(_G.c.status, _G.c.revoked_by, _A.c.decided_by)
        .select_from(_G.join(_A, _A.c.id == _G.c.application_id))
        .where(_G.c.app_id == app_id, _G.c.dataset_code == dataset_code)
        .order_by(_G.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return False
    if row.decided_by != AUTO_DECIDER:
        return True
    return bool(row.status == "revoked" and row.revoked_by != app_actor(app_id))


def _require_application(conn: sa.Connection, application_id: int, *, lock: bool = False) -> sa.Row[Any]:
    query = sa.select(_A).where(_A.c.id == application_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise HubError("application_not_found", id=application_id)
    return row


#: an application not decided yet: waiting for the owner, or for the data authority's second approval
OPEN_STATUSES = ("pending", "second_approval")


def _require_pending(row: sa.Row[Any]) -> None:
    if row.status not in OPEN_STATUSES:
        raise HubError("already_decided", id=row.id, status=row.status)


def _is_authority(staff: StaffUser) -> bool:
    """The hub's data authority: a hub-wide admin."""
    return staff.department_code is None and "admin" in staff.roles


def decide(
    engine: sa.Engine,
    application_id: int,
    staff: StaffUser,
    *,
    approve: bool,
    reason: str = "",
    fields: Sequence[str] | None = None,
    clear_fields: Sequence[str] | None = None,
    valid_until: dt.date | None = None,
    rate_limit: int | None = None,
    default_rate_limit: int,
    now: dt.datetime | None = None,
    policy: GradePolicy | None = None,
) -> Application:
    """Approve or refuse a pending application as an approver of the owning department.

    Approval may narrow what was asked: ``fields`` within the requested fields, ``clear_fields``
    within the requested clear fields (and within the approved fields); both default to what
    was requested (clear fields cut to the approved fields). ``valid_until`` defaults to
    ``requested_until``; ``rate_limit`` to ``default_rate_limit``. The new grant supersedes
    (revokes) an active grant the app holds for the dataset. Deciding after the deadline is
    allowed; the record keeps both the deadline and ``decided_at`` (see ``Application.late``).

    Errors: ``application_not_found`` (404), ``forbidden_role`` / ``wrong_department`` (403),
    ``already_decided`` (409), ``reason_required``, ``fields_required``, ``fields_not_requested``,
    ``clear_not_requested``, ``bad_date``, ``bad_rate_limit`` (400); on approval also
    ``dataset_not_found`` (404), ``not_shared`` (403), ``unknown_field`` / ``not_sensitive``
    (400) when the dataset changed since the application.
    """
    at = _utc(now)
    with engine.connect() as conn:
        row = _require_application(conn, application_id)
    if not staff.has("approver"):
        raise HubError("forbidden_role", role="approver")
    if not staff.covers(row.department_code):
        raise HubError("wrong_department", code=row.dataset_code)
    _require_pending(row)
    if row.status == "second_approval":
        return _second_decision(engine, row, staff, approve=approve, reason=reason, fields=fields,
                                clear_fields=clear_fields, at=at)  # fmt: skip
    grant_fields: list[str] = []
    grant_clear: list[str] = []
    until: dt.date | None = None
    limit = default_rate_limit
    if not approve:
        if not reason.strip():
            raise HubError("reason_required")
    else:
        requested: list[str] = list(row.fields)
        requested_clear: list[str] = list(row.clear_fields)
        if fields is not None:
            if not fields:
                raise HubError("fields_required")
            for name in fields:
                if name not in requested:
                    raise HubError("fields_not_requested", field=name)
        grant_fields = [n for n in requested if fields is None or n in set(fields)]
        if clear_fields is None:
            grant_clear = [n for n in requested_clear if n in grant_fields]
        else:
            for name in clear_fields:
                if name not in requested_clear:
                    raise HubError("fields_not_requested", field=name)
                if name not in grant_fields:
                    raise HubError("clear_not_requested", field=name)
            grant_clear = [n for n in requested_clear if n in set(clear_fields)]
        # the directory may have changed since the application: grant only what is still there
        spec = _dataset(engine, row.dataset_code).spec
        rules = (policy or DEFAULT_POLICY)[spec.grade]
        until = valid_until if valid_until is not None else row.requested_until
        _check_future(until, at, "valid_until")
        _check_period(until, at, rules, spec.grade.value, "valid_until")
        until = until or _longest(at, rules)
        limit = rate_limit if rate_limit is not None else min(default_rate_limit, rules.default_rate_limit)
        if limit < 1:
            raise HubError("bad_rate_limit")
        if limit > rules.max_rate_limit:
            raise HubError("rate_limit_too_high", grade=spec.grade.value, max=rules.max_rate_limit)
        _checked_clear(spec, _checked_fields(spec, grant_fields), grant_clear)
        if grant_clear and rules.clear_needs_second_approval:
            return _first_decision(
                engine,
                row,
                staff,
                fields=grant_fields,
                clear_fields=grant_clear,
                until=until,
                limit=limit,
                at=at,
            )
    with engine.begin() as conn:
        _lock_app(conn, row.app_id)
        row = _require_application(conn, application_id, lock=True)
        _require_pending(row)
        decision = {
            "status": "approved" if approve else "refused",
            "decided_at": at,
            "decided_by": staff.username,
            "reason": reason.strip() or None,
        }
        conn.execute(_A.update().where(_A.c.id == application_id).values(**decision))
        if approve:
            _create_grant(
                conn,
                application_id=application_id,
                app_id=row.app_id,
                dataset_code=row.dataset_code,
                fields=grant_fields,
                clear_fields=grant_clear,
                valid_until=until,
                rate_limit=limit,
                by=staff.username,
                at=at,
            )
        return _load(conn, application_id, at)


def _first_decision(
    engine: sa.Engine,
    row: sa.Row[Any],
    staff: StaffUser,
    *,
    fields: list[str],
    clear_fields: list[str],
    until: dt.date | None,
    limit: int,
    at: dt.datetime,
) -> Application:
    """The owner approves clear sensitive fields of a grade that needs 双人审批: the decision is
    kept and the application waits (second_approval) for the hub's data authority."""
    first = {
        "fields": fields,
        "clear_fields": clear_fields,
        "valid_until": until.isoformat() if until else None,
        "rate_limit": limit,
    }
    with engine.begin() as conn:
        _lock_app(conn, row.app_id)
        done = conn.execute(
            _A.update()
            .where(_A.c.id == row.id, _A.c.status == "pending")
            .values(
                status="second_approval",
                first_decided_by=staff.username,
                first_decided_at=at,
                first_decision=first,
            )
        )
        if done.rowcount != 1:
            raise HubError("already_decided", id=row.id, status="decided")
        return _load(conn, row.id, at)


def _second_decision(
    engine: sa.Engine,
    row: sa.Row[Any],
    staff: StaffUser,
    *,
    approve: bool,
    reason: str,
    fields: Sequence[str] | None,
    clear_fields: Sequence[str] | None,
    at: dt.datetime,
) -> Application:
    """The data authority's second approval: a hub-wide admin other than the first approver;
    the grant is the owner's decision, narrowed further if the authority says so."""
    if not _is_authority(staff):
        raise HubError("second_approval_required", id=row.id)
    if staff.username == row.first_decided_by:
        raise HubError("own_submission", id=row.id)
    first = dict(row.first_decision or {})
    granted: list[str] = list(first.get("fields") or [])
    clear: list[str] = list(first.get("clear_fields") or [])
    if approve:
        if fields is not None:
            if not fields:
                raise HubError("fields_required")
            for name in fields:
                if name not in granted:
                    raise HubError("fields_not_requested", field=name)
            granted = [n for n in granted if n in set(fields)]
        clear = [n for n in clear if n in granted and (clear_fields is None or n in set(clear_fields))]
    elif not reason.strip():
        raise HubError("reason_required")
    with engine.begin() as conn:
        _lock_app(conn, row.app_id)
        locked = _require_application(conn, row.id, lock=True)
        if locked.status != "second_approval":
            raise HubError("already_decided", id=row.id, status=locked.status)
        conn.execute(
            _A.update()
            .where(_A.c.id == row.id)
            .values(
                status="approved" if approve else "refused",
                decided_at=at,
                decided_by=staff.username,
                reason=reason.strip() or None,
            )
        )
        if approve:
            until = first.get("valid_until")
            _create_grant(
                conn,
                application_id=row.id,
                app_id=row.app_id,
                dataset_code=row.dataset_code,
                fields=granted,
                clear_fields=clear,
                valid_until=dt.date.fromisoformat(until) if until else None,
                rate_limit=int(first.get("rate_limit") or 1),
                by=staff.username,
                at=at,
            )
        return _load(conn, row.id, at)


def withdraw(
    engine: sa.Engine, application_id: int, app_id: str, *, now: dt.datetime | None = None
) -> Application:
    """The app gives up its pending application (recorded as ``withdrawn``, decided by the app).

    Errors: ``application_not_found`` (404, also for another app's application),
    ``already_decided`` (409).
    """
    at = _utc(now)
    with engine.begin() as conn:
        row = _require_application(conn, application_id)
        if row.app_id != app_id:
            raise HubError("application_not_found", id=application_id)
        _lock_app(conn, app_id)
        row = _require_application(conn, application_id, lock=True)
        _require_pending(row)
        conn.execute(
            _A.update()
            .where(_A.c.id == application_id)
            .values(status="withdrawn", decided_at=at, decided_by=app_id)
        )
        return _load(conn, application_id, at)


def get_application(
    engine: sa.Engine, application_id: int, *, now: dt.datetime | None = None
) -> Application | None:
    """One application (``overdue`` computed for ``now``), or None."""
    at = _utc(now)
    with engine.connect() as conn:
        row = conn.execute(sa.select(_A).where(_A.c.id == application_id)).first()
    return _application(row, local_date(at)) if row is not None else None


def list_applications(
    engine: sa.Engine,
    *,
    app_id: str | None = None,
    department_code: str | None = None,
    status: str | None = None,
    overdue_only: bool = False,
    today: dt.date | None = None,
) -> list[Application]:
    """Applications, newest first, filtered by app, owning department, status, overdue.

    ``today`` (default: today in Asia/Shanghai) decides what is overdue.
    """
    day = today if today is not None else local_date(_utc())
    query = sa.select(_A).order_by(_A.c.submitted_at.desc(), _A.c.id.desc())
    if app_id is not None:
        query = query.where(_A.c.app_id == app_id)
    if department_code is not None:
        query = query.where(_A.c.department_code == department_code)
    if status is not None:
        query = query.where(_A.c.status == status)
    if overdue_only:
        query = query.where(_A.c.status == "pending", _A.c.deadline < day)
    with engine.connect() as conn:
        return [_application(r, day) for r in conn.execute(query)]


# ---- grants -------------------------------------------------------------------------------


def revoke(
    engine: sa.Engine, grant_id: int, *, by: str, reason: str, now: dt.datetime | None = None
) -> Grant:
    """Revoke an active grant. Errors: ``grant_not_found`` (404), ``grant_not_active`` (409),
    ``reason_required`` (400)."""
    at = _utc(now)
    with engine.begin() as conn:
        row = conn.execute(sa.select(_G).where(_G.c.id == grant_id)).first()
        if row is None:
            raise HubError("grant_not_found", id=grant_id)
        if row.status != "active":
            raise HubError("grant_not_active", id=grant_id, status=row.status)
        if not reason.strip():
            raise HubError("reason_required")
        done = conn.execute(
            _G.update()
            .where(_G.c.id == grant_id, _G.c.status == "active")
            .values(status="revoked", revoked_at=at, revoked_by=by, revoke_reason=reason.strip())
        )
        if done.rowcount != 1:  # revoked (or superseded) by a concurrent call since we read it
            raise HubError("grant_not_active", id=grant_id, status="revoked")
        return _grant(conn.execute(sa.select(_G).where(_G.c.id == grant_id)).one())


def get_grant(engine: sa.Engine, grant_id: int) -> Grant | None:
    """One grant, or None."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(_G).where(_G.c.id == grant_id)).first()
    return _grant(row) if row is not None else None


def list_grants(
    engine: sa.Engine,
    *,
    app_id: str | None = None,
    department_code: str | None = None,
    active_only: bool = False,
    now: dt.datetime | None = None,
) -> list[Grant]:
    """Grants, newest first, filtered by app, owning department, and active (not revoked, not
    expired at ``now``)."""
    at = _utc(now)
    query = sa.select(_G).order_by(_G.c.id.desc())
    if app_id is not None:
        query = query.where(_G.c.app_id == app_id)
    if department_code is not None:
        query = query.join(_A, _A.c.id == _G.c.application_id).where(_A.c.department_code == department_code)
    if active_only:
        query = query.where(
            _G.c.status == "active", sa.or_(_G.c.valid_until.is_(None), _G.c.valid_until >= at)
        )
    with engine.connect() as conn:
        return [_grant(r) for r in conn.execute(query)]


def narrow_for_grade(
    engine: sa.Engine, dataset_code: str, rules: GradeRules, *, reason: str, now: dt.datetime | None = None
) -> list[Grant]:
    """Bring the dataset's active grants within ``rules`` at once (its grade was raised): end no
    later than the grade's longest grant from now, no faster than its highest rate, sensitive
    fields masked again when clear fields need a second approval. Each narrowed grant records
    when and why (the holder reads it in its grants). Returns the grants changed."""
    at = _utc(now)
    longest = _longest(at, rules)
    changed = []
    with engine.begin() as conn:
        rows = conn.execute(
            sa.select(_G).where(
                _G.c.dataset_code == dataset_code,
                _G.c.status == "active",
                sa.or_(_G.c.valid_until.is_(None), _G.c.valid_until >= at),
            )
        ).all()
        for row in rows:
            g = _grant(row)
            values: dict[str, Any] = {}
            if longest is not None:
                last = end_of_day_utc(longest)
                if g.valid_until is None or g.valid_until > last:
                    values["valid_until"] = last
            if g.rate_limit > rules.max_rate_limit:
                values["rate_limit"] = rules.max_rate_limit
            if rules.clear_needs_second_approval and g.clear_fields:
                values["clear_fields"] = []
            if values:
                values |= {"narrowed_at": at, "narrowed_reason": reason}
                conn.execute(_G.update().where(_G.c.id == g.id).values(**values))
                changed.append(_grant(conn.execute(sa.select(_G).where(_G.c.id == g.id)).one()))
    return changed


# ---- the gate's question --------------------------------------------------------------------

AccessKind = Literal["granted", "pending", "refused", "expired", "revoked", "none"]


@dataclass(frozen=True)
class AccessState:
    """Where an app stands with a dataset.

    ``grant`` and ``application`` are the newest grant and the newest application for the
    pair (either may be None), whatever ``kind`` is: for ``granted`` the grant says which
    fields, clear fields and rate limit apply; for ``refused`` the application holds the reason.
    """

    kind: AccessKind
    grant: Grant | None
    application: Application | None


def _newest(table: sa.Table) -> sa.Select[Any]:
    """The newest row of ``table`` for app × dataset (bind parameters ``app_id``, ``dataset_code``)."""
    return (
        sa.select(table)
        .where(table.c.app_id == sa.bindparam("app_id"), table.c.dataset_code == sa.bindparam("dataset_code"))
        .order_by(table.c.id.desc())
        .limit(1)
    )


NEWEST_GRANT = _newest(_G)
NEWEST_APPLICATION = _newest(_A)


def access_state(
    engine: sa.Engine, app_id: str, dataset_code: str, *, now: dt.datetime | None = None
) -> AccessState:
    """What the app may do with the dataset at ``now``: two indexed single-row queries.

    With G the newest grant and A the newest application for app × dataset, the first rule
    that holds wins:

    1. G is active (not revoked) and not expired -> ``granted`` (a pending application for
       more fields does not suspend it);
    2. A is pending -> ``pending``;
    3. A is refused and newer than G (or there is no G) -> ``refused``: a fresh refusal is the
       answer the app needs, not the fate of an older grant;
    4. G ended: it ran out (``valid_until < now``) before any revocation -> ``expired``;
       it was revoked before running out -> ``revoked``;
    5. otherwise -> ``none`` (never applied, or only withdrawn applications).

    Only the newest grant matters: creating a grant supersedes (revokes) every older active
    grant for the pair, so an older grant is never active while a newer one exists.
    """
    at = _utc(now)
    params = {"app_id": app_id, "dataset_code": dataset_code}
    with engine.connect() as conn:
        g_row = conn.execute(NEWEST_GRANT, params).first()
        a_row = conn.execute(NEWEST_APPLICATION, params).first()
    grant = _grant(g_row) if g_row is not None else None
    application = _application(a_row, local_date(at)) if a_row is not None else None
    return _decide(grant, application, at)


def _decide(grant: Grant | None, application: Application | None, at: dt.datetime) -> AccessState:
    """The rules of :func:`access_state` on the newest grant and application."""
    kind: AccessKind = "none"
    if grant is not None and grant.active_at(at):
        kind = "granted"
    elif application is not None and application.status in OPEN_STATUSES:
        kind = "pending"
    elif (
        application is not None
        and application.status == "refused"
        and (grant is None or application.id > grant.application_id)
    ):
        kind = "refused"
    elif grant is not None:
        revoked_first = grant.revoked_at is not None and (
            grant.valid_until is None or grant.revoked_at <= grant.valid_until
        )
        kind = "revoked" if revoked_first else "expired"
    return AccessState(kind=kind, grant=grant, application=application)


_APP_PREFIX = "app__"


def _standing_statement() -> sa.Select[Any]:
    newest = (
        sa.select(sa.func.max(_G2.c.id))
        .where(_G2.c.app_id == sa.bindparam("app_id"), _G2.c.dataset_code == sa.bindparam("dataset_code"))
        .scalar_subquery()
    )
    return (
        sa.select(*(c.label(_APP_PREFIX + c.name) for c in tables.apps.c if c.name != "secret_hash"), *_G.c)
        .select_from(tables.apps.outerjoin(_G, _G.c.id == newest))
        .where(tables.apps.c.app_id == sa.bindparam("app_id"))
    )


#: The statement of :func:`app_standing`, with bind parameters ``app_id`` and ``dataset_code``:
#: the app joined with its newest grant on the dataset (the newest application: NEWEST_APPLICATION).
STANDING = _standing_statement()

#: reads one row of a statement (STANDING or NEWEST_APPLICATION, parameters bound by the reader)
RowReader = Callable[[sa.Select[Any]], Mapping[Any, Any] | None]


def app_standing(
    conn: sa.Connection, app_id: str, dataset_code: str, *, now: dt.datetime | None = None
) -> tuple[App | None, AccessState]:
    """The app itself and its :func:`access_state` for the dataset, in one round trip when granted.

    The API's gate for data calls: the app row (status, secret generation) and the newest
    grant come from one indexed query on ``conn``; the newest application is read only when
    that grant does not let the app in (a refusal needs it). So, unlike :func:`access_state`,
    ``application`` is None for ``granted``. Nothing is cached: a revoked or expired grant, a
    disabled app or a rotated secret shows on the next call. ``(None, none)`` for an unknown app.
    """
    params = {"app_id": app_id, "dataset_code": dataset_code}

    def read(stmt: sa.Select[Any]) -> Mapping[Any, Any] | None:
        row = conn.execute(stmt, params).first()
        return row._mapping if row is not None else None

    return standing_from(read, now=now)


def standing_from(read: RowReader, *, now: dt.datetime | None = None) -> tuple[App | None, AccessState]:
    """:func:`app_standing` on rows that ``read`` fetches (the API reads them through psycopg
    directly on PostgreSQL, with the same statements)."""
    at = _utc(now)
    row = read(STANDING)
    if row is None:
        return None, AccessState(kind="none", grant=None, application=None)
    app = from_mapping(row, _APP_PREFIX)
    grant = _grant(_Attrs(row)) if row["id"] is not None else None
    application = None
    if grant is None or not grant.active_at(at):
        a_row = read(NEWEST_APPLICATION)
        application = _application(_Attrs(a_row), local_date(at)) if a_row is not None else None
    return app, _decide(grant, application, at)


class _Attrs:
    """Attribute access to a mapping, so that rows read without SQLAlchemy decode alike."""

    __slots__ = ("_m",)

    def __init__(self, m: Mapping[Any, Any]) -> None:
        self._m = m

    def __getattr__(self, name: str) -> Any:
        try:
            return self._m[name]
        except KeyError:
            raise AttributeError(name) from None
