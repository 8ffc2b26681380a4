"""Data objections (数据异议): a user of shared data says a served record, or one field of it,
is wrong; the providing department verifies and answers within a deadline.

Who raises: an **app** (through the API) on a dataset it holds an active grant for, and only
on fields that grant releases; or **staff** of any department (through the portal or the API)
on a dataset shared with the hub. Who answers: a ``publisher`` of the owning department (the
department's data steward) or an ``admin`` covering it. The answer is one of ``corrected``
(corrected at source), ``confirmed`` (the data is right as served) or ``rejected`` (the
objection does not hold); ``confirmed`` and ``rejected`` need a written answer. Only an open
objection can be answered, once.

The deadline is ``objection_answer_working_days`` (5) working days after the day it was raised
(Asia/Shanghai), by the hub's working-day calendar; an open objection is **overdue** from the
day after. Who sees what: an app its own objections; staff the objections on their
department's data and those their department raised; hub-wide staff all. An objection
someone may not see answers as one that does not exist.

The record is named by its key: ``record_key`` is the canonical JSON text of the dataset's
primary-key values (:func:`canonical_key`), the same form the correction list uses.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from catalog.access.applications import access_state, local_date
from catalog.access.staff import StaffUser
from catalog.access.workdays import Calendar
from catalog.clock import as_utc, utc_now
from catalog.db import tables
from catalog.directory import store
from catalog.directory.model import DatasetSpec, ShareType
from catalog.errors import HubError
from catalog.values import json_value, key_text

ANSWERS = ("corrected", "confirmed", "rejected")
MAX_REASON = 2000
MAX_EVIDENCE = 4000
_O = tables.objections


def canonical_key(spec: DatasetSpec, key: Mapping[str, Any]) -> str:
    """The canonical text of a record's key (:func:`catalog.values.key_text`): exactly the
    dataset's key fields, values non-empty text or numbers. Refuses anything else with
    ``bad_record_key``."""
    wanted = set(spec.primary_key)
    if set(key) != wanted:
        raise HubError("bad_record_key", fields=", ".join(spec.primary_key))
    for name in wanted:
        value = key[name]
        if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
            raise HubError("bad_record_key", fields=", ".join(spec.primary_key))
    text = key_text(key)
    if len(text) > 500:
        raise HubError("bad_record_key", fields=", ".join(spec.primary_key))
    return text


@dataclass(frozen=True)
class Objection:
    """One objection, with ``overdue`` computed for the day it was read."""

    id: int
    dataset_code: str
    department_code: str
    record_key: str
    field: str | None
    reason: str
    evidence: str | None
    raised_by_kind: str
    raised_by: str
    raised_department: str | None
    raised_at: dt.datetime
    due_date: dt.date
    status: str  # open|corrected|confirmed|rejected
    answer: str | None
    answered_by: str | None
    answered_at: dt.datetime | None
    overdue: bool

    @property
    def late(self) -> bool:
        """Answered after the due date."""
        return self.answered_at is not None and local_date(self.answered_at) > self.due_date

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "dataset_code": self.dataset_code,
            "department_code": self.department_code,
            "record_key": json.loads(self.record_key),
            "field": self.field,
            "reason": self.reason,
            "evidence": self.evidence,
            "raised_by_kind": self.raised_by_kind,
            "raised_by": self.raised_by,
            "raised_department": self.raised_department,
            "raised_at": json_value(self.raised_at),
            "due_date": json_value(self.due_date),
            "status": self.status,
            "overdue": self.overdue,
            "late": self.late,
            "answer": self.answer,
            "answered_by": self.answered_by,
            "answered_at": json_value(self.answered_at),
        }


def _objection(row: Any, today: dt.date) -> Objection:
    return Objection(
        id=row.id,
        dataset_code=row.dataset_code,
        department_code=row.department_code,
        record_key=row.record_key,
        field=row.field,
        reason=row.reason,
        evidence=row.evidence,
        raised_by_kind=row.raised_by_kind,
        raised_by=row.raised_by,
        raised_department=row.raised_department,
        raised_at=as_utc(row.raised_at),
        due_date=row.due_date,
        status=row.status,
        answer=row.answer,
        answered_by=row.answered_by,
        answered_at=as_utc(row.answered_at) if row.answered_at is not None else None,
        overdue=row.status == "open" and today > row.due_date,
    )


def _text(value: str | None, limit: int, *, required: bool, field: str) -> str | None:
    text = (value or "").strip()
    if required and not text:
        raise HubError("text_required", field=field)
    if len(text) > limit:
        raise HubError("text_too_long", field=field, limit=limit)
    return text or None


def raise_objection(
    engine: sa.Engine,
    calendar: Calendar,
    *,
    dataset_code: str,
    record_key: Mapping[str, Any],
    field: str | None,
    reason: str,
    evidence: str | None,
    raised_by_kind: Literal["app", "staff"],
    raised_by: str,
    raised_department: str | None,
    answer_days: int,
    at: dt.datetime | None = None,
) -> Objection:
    """Record an objection. Errors: ``dataset_not_found`` (404), ``not_shared`` (403), the
    gate's refusals for an app without an active grant (``no_grant``, ``application_pending``,
    … 403), ``field_not_granted`` / ``unknown_field`` / ``bad_record_key`` / ``text_required`` /
    ``text_too_long`` (400)."""
    now = at or utc_now()
    try:
        published = store.get_dataset(engine, dataset_code)
    except KeyError:
        raise HubError("dataset_not_found", code=dataset_code[:64]) from None
    spec = published.spec
    if spec.share.type is ShareType.NONE:
        raise HubError("not_shared", code=spec.code)
    names = {f.name for f in spec.fields}
    if field is not None and field not in names:
        raise HubError("unknown_field", field=field[:100], code=spec.code)
    if raised_by_kind == "app":
        state = access_state(engine, raised_by, spec.code, now=now)
        if state.kind != "granted" or state.grant is None:
            from catalog.access.gate import REFUSALS

            raise HubError(REFUSALS.get(state.kind, "no_grant"), code=spec.code)
        released = set(state.grant.fields)
        if (field is not None and field not in released) or not set(spec.primary_key) <= released:
            raise HubError("field_not_granted", field=field or ", ".join(spec.primary_key))
    key = canonical_key(spec, record_key)
    why = _text(reason, MAX_REASON, required=True, field="reason")
    proof = _text(evidence, MAX_EVIDENCE, required=False, field="evidence")
    due = calendar.add_working_days(local_date(now), answer_days)
    with engine.begin() as conn:
        result = conn.execute(
            _O.insert().values(
                dataset_code=spec.code,
                department_code=published.department.code,
                record_key=key,
                field=field,
                reason=why,
                evidence=proof,
                raised_by_kind=raised_by_kind,
                raised_by=raised_by,
                raised_department=raised_department,
                raised_at=now,
                due_date=due,
                status="open",
            )
        )
        (new_id,) = result.inserted_primary_key or (None,)
        row = conn.execute(sa.select(_O).where(_O.c.id == new_id)).one()
    return _objection(row, local_date(now))


def answer_objection(
    engine: sa.Engine,
    objection_id: int,
    *,
    status: str,
    answer: str,
    by: StaffUser,
    at: dt.datetime | None = None,
) -> Objection:
    """Answer an open objection as a publisher (or admin) of the providing department.
    Errors: ``objection_not_found`` (404, also when ``by`` may not see it), ``forbidden_role``
    (403), ``already_answered`` (409), ``bad_answer`` / ``text_required`` (400)."""
    now = at or utc_now()
    if status not in ANSWERS:
        raise HubError("bad_answer", answers=", ".join(ANSWERS))
    current = get_objection(engine, objection_id, now=now)
    if current is None or not by.covers(current.department_code):
        raise HubError("objection_not_found", id=objection_id)
    if not by.has("publisher"):
        raise HubError("forbidden_role", role="publisher")
    text = _text(answer, MAX_REASON, required=status != "corrected", field="answer")
    with engine.begin() as conn:
        done = conn.execute(
            _O.update()
            .where(_O.c.id == objection_id, _O.c.status == "open")
            .values(status=status, answer=text, answered_by=by.username, answered_at=now)
        )
        if done.rowcount != 1:
            raise HubError("already_answered", id=objection_id)
        row = conn.execute(sa.select(_O).where(_O.c.id == objection_id)).one()
    return _objection(row, local_date(now))


def get_objection(
    engine: sa.Engine, objection_id: int, *, now: dt.datetime | None = None
) -> Objection | None:
    """One objection, or None."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(_O).where(_O.c.id == objection_id)).first()
    return _objection(row, local_date(now or utc_now())) if row is not None else None


def visible_to_app(o: Objection, app_id: str) -> bool:
    return o.raised_by_kind == "app" and o.raised_by == app_id


def visible_to_staff(o: Objection, user: StaffUser) -> bool:
    """Objections on the department's data, and those it raised; everything for hub-wide staff."""
    return user.covers(o.department_code) or (
        user.department_code is not None and o.raised_department == user.department_code
    )


def list_objections(
    engine: sa.Engine,
    *,
    department_code: str | None = None,
    raised_by: str | None = None,
    involving: str | None = None,
    dataset_code: str | None = None,
    status: str | None = None,
    overdue: bool | None = None,
    today: dt.date | None = None,
    limit: int = 500,
) -> list[Objection]:
    """Objections, newest first. ``department_code``: on that provider's data; ``raised_by``:
    raised by that app or staff member; ``involving``: on that department's data or raised by
    it (a department's staff view)."""
    day = today if today is not None else local_date(utc_now())
    q = sa.select(_O).order_by(_O.c.raised_at.desc(), _O.c.id.desc()).limit(limit)
    if department_code is not None:
        q = q.where(_O.c.department_code == department_code)
    if raised_by is not None:
        q = q.where(_O.c.raised_by == raised_by)
    if involving is not None:
        q = q.where(sa.or_(_O.c.department_code == involving, _O.c.raised_department == involving))
    if dataset_code is not None:
        q = q.where(_O.c.dataset_code == dataset_code)
    if status is not None:
        q = q.where(_O.c.status == status)
    if overdue is True:
        q = q.where(_O.c.status == "open", _O.c.due_date < day)
    elif overdue is False:
        q = q.where(sa.or_(_O.c.status != "open", _O.c.due_date >= day))
    with engine.connect() as conn:
        return [_objection(r, day) for r in conn.execute(q)]
