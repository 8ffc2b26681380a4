"""Sharing applications, decisions, grants and the access state, on the real published directory."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from catalog import publishing
from catalog.access import app_registry
from catalog.access import applications as ap
from catalog.access.staff import StaffUser
from catalog.access.workdays import Calendar
from catalog.api.status import status_of
from catalog.db import tables
from catalog.db.engine import engine_for
from catalog.directory import store
from catalog.directory.model import DirectoryFile
from catalog.errors import HubError, error_body
from tests.paths import REPO

DIRECTORY = REPO / "directory"
D = dt.date.fromisoformat
UTC = dt.UTC

# National Day 2025: 1–8 October off; Sunday 28 September and Saturday 11 October worked (调休).
CAL = Calendar(
    holidays=frozenset(D(f"2025-10-0{i}") for i in range(1, 9)),
    extra_workdays=frozenset({D("2025-09-28"), D("2025-10-11")}),
)
T0 = dt.datetime(2025, 9, 29, 2, 0, tzinfo=UTC)  # Monday 10:00 in Hangzhou
DEADLINE = D("2025-10-20")  # 10 working days after 29 September (see test_catalog_workdays)
RATE = 600

GAJ = "GAJ-HJRK-001"  # conditional; id_no, name, address, mobile are sensitive
SCJ = "SCJ-YYZZ-001"  # conditional
RSJ = "RSJ-SBJF-001"  # unconditional; id_no, name sensitive
SGB = "SGB-BSZN-001"  # unconditional, nothing sensitive
SECRET = "XJ-SECRET-001"  # share type none (published from a small extra directory)

GAJ_APPROVER = StaffUser("gaj-approver", "GAJ", frozenset({"approver"}), "active", 1)
GAJ_PUBLISHER = StaffUser("gaj-publisher", "GAJ", frozenset({"publisher"}), "active", 1)
GAJ_ADMIN = StaffUser("gaj-admin", "GAJ", frozenset({"admin"}), "active", 1)
SCJ_APPROVER = StaffUser("scj-approver", "SCJGJ", frozenset({"approver"}), "active", 1)
RSJ_APPROVER = StaffUser("rsj-approver", "RSJ", frozenset({"approver"}), "active", 1)
HUB_ADMIN = StaffUser("root", None, frozenset({"admin"}), "active", 1)
HUB_AUDITOR = StaffUser("jiancha", None, frozenset({"auditor"}), "active", 1)

EXTRA = {
    "department": {"code": "XJ", "name": "某局"},
    "datasets": [
        {
            "code": SECRET,
            "name": "不予共享数据",
            "share": {"type": "none", "legal_basis": "《某条例》第十条"},
            "primary_key": ["k"],
            "fields": [{"name": "k", "label": "键"}],
            "source": {"kind": "sql", "connection": "x", "table": "t"},
        }
    ],
}


def make_hub(url: str) -> sa.Engine:
    engine = engine_for(url)
    for path in sorted(DIRECTORY.glob("*.yaml")):
        publishing.publish_path(engine, path)
    publishing.publish(engine, DirectoryFile.model_validate(EXTRA), source_file="xj.yaml")
    return engine


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    return make_hub(f"sqlite:///{tmp_path / 'hub.db'}")


@pytest.fixture
def app_id(engine: sa.Engine) -> str:
    return app_registry.register_app(engine, "一网通办", "SGB", now=T0)[0].app_id


def fields_of(engine: sa.Engine, code: str) -> list[str]:
    return [f.name for f in store.get_dataset(engine, code).spec.fields]


def submit(engine: sa.Engine, app_id: str, code: str, **kw: Any) -> ap.Application:
    args: dict[str, Any] = {
        "fields": None,
        "purpose": "办理户籍类政务服务事项时核验申请人身份",
        "legal_basis": "《浙江省公共数据条例》第二十二条",
        "calendar": CAL,
        "deadline_days": 10,
        "default_rate_limit": RATE,
        "now": T0,
    }
    args.update(kw)
    return ap.submit(engine, app_id, code, **args)


def decide(engine: sa.Engine, application_id: int, staff: StaffUser, **kw: Any) -> ap.Application:
    args: dict[str, Any] = {"approve": True, "default_rate_limit": RATE, "now": T0 + dt.timedelta(days=1)}
    args.update(kw)
    return ap.decide(engine, application_id, staff, **args)


def grant_of(engine: sa.Engine, application: ap.Application) -> ap.Grant:
    assert application.grant_id is not None
    grant = ap.get_grant(engine, application.grant_id)
    assert grant is not None
    return grant


def raises(code: str, status: int, fn: Callable[[], object]) -> HubError:
    with pytest.raises(HubError) as exc:
        fn()
    assert (exc.value.code, status_of(exc.value)) == (code, status)
    error_body(exc.value)  # the params fill the message placeholders
    return exc.value


# ---- submit -------------------------------------------------------------------------------


def test_unconditional_is_granted_at_once(engine: sa.Engine, app_id: str) -> None:
    a = submit(engine, app_id, SGB, fields=["item_name", "item_code"], requested_until=D("2026-12-31"))
    assert a.status == "approved" and a.decided_by == "auto" and a.reason == "unconditional sharing"
    assert a.decided_at == T0 == a.submitted_at and not a.overdue and not a.late
    assert a.fields == ["item_code", "item_name"]  # stored in the dataset's order
    assert a.department_code == "SGB" and a.dataset_version == 1
    g = grant_of(engine, a)
    assert g is not None and g.application_id == a.id
    assert (g.app_id, g.dataset_code, g.fields, g.clear_fields) == (app_id, SGB, a.fields, [])
    assert g.valid_from == T0 and g.status == "active" and g.rate_limit == RATE
    assert g.valid_until == dt.datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert ap.list_applications(engine, app_id=app_id) == [a]  # still on record
    assert a.to_json()["decided_by"] == "auto" and g.to_json()["valid_until"].startswith(
        "2026-12-31T23:59:59"
    )


def test_unconditional_without_end_date_runs_until_revoked(engine: sa.Engine, app_id: str) -> None:
    a = submit(engine, app_id, SGB, fields=["item_code"])  # general data: no longest period
    g = grant_of(engine, a)
    assert g is not None and g.valid_until is None and g.clear_fields == [] and g.rate_limit == RATE
    assert g.active_at(T0 + dt.timedelta(days=3650))


def test_important_data_granted_at_once_runs_for_the_grades_longest_period(
    engine: sa.Engine, app_id: str
) -> None:
    a = submit(engine, app_id, RSJ, fields=["id_no", "insurance_type"])  # RSJ is important
    g = grant_of(engine, a)
    assert g is not None and g.valid_until == ap.end_of_day_utc(D("2025-09-29") + dt.timedelta(days=365))
    assert g.rate_limit == 120  # the important grade's default, below the hub's 600


def test_clear_fields_make_unconditional_data_wait(engine: sa.Engine, app_id: str) -> None:
    a = submit(engine, app_id, RSJ, fields=["id_no", "name", "status"], clear_fields=["name"])
    assert a.status == "pending" and a.grant_id is None and a.decided_at is None
    assert a.clear_fields == ["name"] and a.deadline == DEADLINE
    assert ap.list_grants(engine, app_id=app_id) == []


def test_conditional_waits_with_working_day_deadline(engine: sa.Engine, app_id: str) -> None:
    a = submit(engine, app_id, GAJ)
    assert a.status == "pending" and a.fields == fields_of(engine, GAJ) and a.clear_fields == []
    assert a.department_code == "GAJ" and a.deadline == DEADLINE
    assert a.decided_by is None and a.grant_id is None
    assert a.to_json()["deadline"] == "2025-10-20"


def test_deadline_counts_from_the_date_in_shanghai(engine: sa.Engine, app_id: str) -> None:
    # Sunday 28 Sep 17:00 UTC is already Monday 29 Sep 01:00 in Hangzhou: +1 is Tuesday 30 Sep.
    a = submit(engine, app_id, GAJ, deadline_days=1, now=dt.datetime(2025, 9, 28, 17, 0, tzinfo=UTC))
    assert a.deadline == D("2025-09-30")
    other = app_registry.register_app(engine, "other", "SGB")[0].app_id
    # 16:00 UTC is still Sunday 23:59 in Hangzhou: +1 is Monday 29 Sep.
    b = submit(engine, other, GAJ, deadline_days=1, now=dt.datetime(2025, 9, 28, 15, 59, tzinfo=UTC))
    assert b.deadline == D("2025-09-29")


def test_submit_rules(engine: sa.Engine, app_id: str) -> None:
    raises("dataset_not_found", 404, lambda: submit(engine, app_id, "NOPE-001"))
    raises("not_shared", 403, lambda: submit(engine, app_id, SECRET))
    e = raises("unknown_field", 400, lambda: submit(engine, app_id, GAJ, fields=["id_no", "salary"]))
    assert e.params == {"code": GAJ, "field": "salary"}
    raises("fields_required", 400, lambda: submit(engine, app_id, GAJ, fields=[]))
    e = raises(
        "clear_not_requested",
        400,
        lambda: submit(engine, app_id, GAJ, fields=["gender"], clear_fields=["name"]),
    )
    assert e.params == {"field": "name"}
    e = raises(
        "not_sensitive", 400, lambda: submit(engine, app_id, GAJ, fields=["gender"], clear_fields=["gender"])
    )
    assert e.params == {"field": "gender"}
    raises("unknown_field", 400, lambda: submit(engine, app_id, GAJ, clear_fields=["salary"]))
    raises("purpose_missing", 400, lambda: submit(engine, app_id, GAJ, purpose="  "))
    raises("purpose_missing", 400, lambda: submit(engine, app_id, GAJ, legal_basis=""))
    e = raises("bad_date", 400, lambda: submit(engine, app_id, GAJ, requested_until=D("2025-09-28")))
    assert e.params == {"field": "requested_until"}
    raises("app_not_found", 404, lambda: submit(engine, "app-000000000000", GAJ))
    raises("bad_rate_limit", 400, lambda: submit(engine, app_id, SGB, default_rate_limit=0))
    assert ap.list_applications(engine) == []  # nothing recorded by refused submissions
    today = submit(engine, app_id, SGB, requested_until=T0.date())  # today is still allowed
    assert today.status == "approved"


def test_one_pending_application_per_app_and_dataset(engine: sa.Engine, app_id: str) -> None:
    first = submit(engine, app_id, GAJ)
    e = raises("already_pending", 409, lambda: submit(engine, app_id, GAJ, fields=["gender"]))
    assert e.params == {"app_id": app_id, "id": first.id, "code": GAJ}
    submit(engine, app_id, SCJ)  # another dataset is fine
    other = app_registry.register_app(engine, "other", "SGB")[0].app_id
    submit(engine, other, GAJ)  # another app is fine
    ap.withdraw(engine, first.id, app_id, now=T0)
    assert submit(engine, app_id, GAJ).status == "pending"  # after withdrawing, apply again


# ---- deadline and overdue -----------------------------------------------------------------


def test_overdue_from_the_day_after_the_deadline(engine: sa.Engine, app_id: str) -> None:
    a = submit(engine, app_id, GAJ)
    last_minute = dt.datetime(2025, 10, 20, 15, 59, tzinfo=UTC)  # 23:59 on the deadline in Hangzhou
    next_day = dt.datetime(2025, 10, 20, 16, 0, tzinfo=UTC)  # 00:00 the day after
    got = ap.get_application(engine, a.id, now=last_minute)
    assert got is not None and not got.overdue
    got = ap.get_application(engine, a.id, now=next_day)
    assert got is not None and got.overdue and got.to_json()["overdue"] is True
    assert ap.list_applications(engine, overdue_only=True, today=DEADLINE) == []
    late_list = ap.list_applications(engine, overdue_only=True, today=D("2025-10-21"))
    assert [x.id for x in late_list] == [a.id] and late_list[0].overdue


def test_deciding_late_is_allowed_and_stays_on_record(engine: sa.Engine, app_id: str) -> None:
    a = submit(engine, app_id, GAJ)
    when = dt.datetime(2025, 10, 23, 2, 0, tzinfo=UTC)
    d = decide(engine, a.id, GAJ_APPROVER, now=when)
    assert d.status == "approved" and d.deadline == DEADLINE and d.decided_at == when
    assert d.late and not d.overdue
    assert d.to_json()["late"] is True
    on_time = submit(engine, app_id, SCJ)
    assert not decide(engine, on_time.id, SCJ_APPROVER, now=dt.datetime(2025, 10, 20, 15, 0, tzinfo=UTC)).late
    assert ap.list_applications(engine, overdue_only=True, today=D("2025-12-01")) == []


# ---- decide -------------------------------------------------------------------------------


def test_decide_who_may(engine: sa.Engine, app_id: str) -> None:
    a = submit(engine, app_id, GAJ)
    raises("application_not_found", 404, lambda: decide(engine, 999, GAJ_APPROVER))
    e = raises("forbidden_role", 403, lambda: decide(engine, a.id, GAJ_PUBLISHER))
    assert e.params == {"role": "approver"}
    raises("forbidden_role", 403, lambda: decide(engine, a.id, HUB_AUDITOR))
    e = raises("wrong_department", 403, lambda: decide(engine, a.id, SCJ_APPROVER))
    assert e.params == {"code": GAJ}
    assert decide(engine, a.id, GAJ_ADMIN).decided_by == "gaj-admin"  # admin implies approver
    b = submit(engine, app_id, SCJ)
    assert decide(engine, b.id, HUB_ADMIN).status == "approved"  # hub-wide admin covers every department


def test_refuse_needs_a_reason(engine: sa.Engine, app_id: str) -> None:
    a = submit(engine, app_id, GAJ)
    raises("reason_required", 400, lambda: decide(engine, a.id, GAJ_APPROVER, approve=False, reason=" "))
    r = decide(engine, a.id, GAJ_APPROVER, approve=False, reason="用途与共享条件不符")
    assert r.status == "refused" and r.reason == "用途与共享条件不符" and r.grant_id is None
    assert r.decided_by == "gaj-approver"
    assert ap.list_grants(engine, app_id=app_id) == []
    e = raises("already_decided", 409, lambda: decide(engine, a.id, GAJ_APPROVER))
    assert e.params == {"id": a.id, "status": "refused"}


def test_auto_approved_cannot_be_decided(engine: sa.Engine, app_id: str) -> None:
    a = submit(engine, app_id, RSJ)
    raises("already_decided", 409, lambda: decide(engine, a.id, RSJ_APPROVER))


def test_approve_as_requested(engine: sa.Engine, app_id: str) -> None:
    a = submit(
        engine,
        app_id,
        GAJ,
        fields=["mobile", "id_no", "name", "gender"],
        clear_fields=["name", "id_no"],
        requested_until=D("2025-12-20"),  # GAJ is core: at most 90 days
    )
    first = decide(engine, a.id, GAJ_APPROVER, reason="同意")  # GAJ is core: clear fields need 双人审批
    assert first.status == "second_approval" and first.first_decided_by == "gaj-approver"
    assert first.grant_id is None and ap.access_state(engine, app_id, GAJ, now=T0).kind == "pending"
    d = decide(engine, a.id, HUB_ADMIN, reason="同意")
    assert d.status == "approved" and d.reason == "同意" and d.grant_id is not None
    g = grant_of(engine, d)
    assert g is not None
    assert g.fields == ["id_no", "name", "gender", "mobile"] and g.clear_fields == ["id_no", "name"]
    assert g.valid_until == ap.end_of_day_utc(D("2025-12-20")) and g.rate_limit == 60  # core's default
    assert g.valid_from == d.decided_at


def test_approve_may_narrow(engine: sa.Engine, app_id: str) -> None:
    a = submit(
        engine, app_id, GAJ, fields=["id_no", "name", "gender", "mobile"], clear_fields=["id_no", "name"]
    )
    e = raises(
        "fields_not_requested", 400, lambda: decide(engine, a.id, GAJ_APPROVER, fields=["id_no", "address"])
    )
    assert e.params == {"field": "address"}
    raises("fields_not_requested", 400, lambda: decide(engine, a.id, GAJ_APPROVER, clear_fields=["mobile"]))
    raises("fields_required", 400, lambda: decide(engine, a.id, GAJ_APPROVER, fields=[]))
    raises(
        "clear_not_requested",
        400,
        lambda: decide(engine, a.id, GAJ_APPROVER, fields=["id_no", "gender"], clear_fields=["name"]),
    )
    raises("bad_date", 400, lambda: decide(engine, a.id, GAJ_APPROVER, valid_until=D("2025-09-01")))
    raises("bad_rate_limit", 400, lambda: decide(engine, a.id, GAJ_APPROVER, rate_limit=0))
    d = decide(
        engine,
        a.id,
        GAJ_APPROVER,
        fields=["gender", "name", "id_no"],
        clear_fields=["name"],
        valid_until=D("2025-12-20"),
        rate_limit=60,
    )
    d = decide(engine, d.id, HUB_ADMIN)  # the data authority's second approval
    g = grant_of(engine, d)
    assert g is not None
    assert (g.fields, g.clear_fields, g.rate_limit) == (["id_no", "name", "gender"], ["name"], 60)
    assert g.valid_until == ap.end_of_day_utc(D("2025-12-20"))


def test_narrowed_fields_cut_the_default_clear_fields(engine: sa.Engine, app_id: str) -> None:
    a = submit(engine, app_id, GAJ, fields=["id_no", "name", "gender"], clear_fields=["id_no", "name"])
    d = decide(engine, a.id, GAJ_APPROVER, fields=["name", "gender"])
    d = decide(engine, d.id, HUB_ADMIN)
    g = grant_of(engine, d)
    assert g is not None and g.fields == ["name", "gender"] and g.clear_fields == ["name"]


def test_new_grant_supersedes_the_active_one(engine: sa.Engine, app_id: str) -> None:
    first = submit(engine, app_id, RSJ, fields=["id_no", "insurance_type"])
    old_id = first.grant_id
    assert old_id is not None
    wider = submit(engine, app_id, RSJ, fields=["id_no", "name", "insurance_type"], clear_fields=["name"])
    assert ap.access_state(engine, app_id, RSJ, now=T0).kind == "granted"  # the old grant still serves
    when = T0 + dt.timedelta(hours=5)
    d = decide(engine, wider.id, RSJ_APPROVER, now=when)
    old = ap.get_grant(engine, old_id)
    assert old is not None and old.status == "revoked" and old.revoked_at == when
    assert old.revoke_reason == f"superseded by application {wider.id}" and old.revoked_by == "rsj-approver"
    active = ap.list_grants(engine, app_id=app_id, active_only=True, now=when)
    assert [g.id for g in active] == [d.grant_id]
    state = ap.access_state(engine, app_id, RSJ, now=when)
    assert state.kind == "granted" and state.grant is not None and state.grant.clear_fields == ["name"]
    # the owner decided this pair: a new application waits for it, even on unconditional data
    again = submit(engine, app_id, RSJ, fields=["status"], now=when)
    assert again.status == "pending" and again.grant_id is None
    later = decide(engine, again.id, RSJ_APPROVER, now=when)
    assert [g.id for g in ap.list_grants(engine, app_id=app_id, active_only=True, now=when)] == [
        later.grant_id
    ]


def test_approval_checks_the_current_directory(engine: sa.Engine, app_id: str) -> None:
    a = submit(engine, app_id, GAJ, fields=["id_no", "mobile"])
    spec = store.get_dataset(engine, GAJ).spec
    directory = DirectoryFile.model_validate(
        {
            "department": store.get_dataset(engine, GAJ).department.model_dump(),
            "datasets": [
                spec.model_copy(
                    update={"fields": [f for f in spec.fields if f.name != "mobile"]}
                ).model_dump()
            ],
        }
    )
    publishing.publish(engine, directory, source_file="gaj.yaml")
    e = raises("unknown_field", 400, lambda: decide(engine, a.id, GAJ_APPROVER))
    assert e.params == {"code": GAJ, "field": "mobile"}
    assert decide(engine, a.id, GAJ_APPROVER, fields=["id_no"]).status == "approved"


# ---- withdraw, revoke, listing ----------------------------------------------------------------


def test_withdraw(engine: sa.Engine, app_id: str) -> None:
    a = submit(engine, app_id, GAJ)
    other = app_registry.register_app(engine, "other", "SGB")[0].app_id
    raises("application_not_found", 404, lambda: ap.withdraw(engine, a.id, other))
    raises("application_not_found", 404, lambda: ap.withdraw(engine, 999, app_id))
    w = ap.withdraw(engine, a.id, app_id, now=T0 + dt.timedelta(hours=1))
    assert w.status == "withdrawn" and w.decided_by == app_id and w.decided_at == T0 + dt.timedelta(hours=1)
    raises("already_decided", 409, lambda: ap.withdraw(engine, a.id, app_id))
    raises("already_decided", 409, lambda: decide(engine, a.id, GAJ_APPROVER))


def test_revoke(engine: sa.Engine, app_id: str) -> None:
    g_id = submit(engine, app_id, SGB).grant_id
    assert g_id is not None
    raises("grant_not_found", 404, lambda: ap.revoke(engine, 999, by="root", reason="x"))
    raises("reason_required", 400, lambda: ap.revoke(engine, g_id, by="root", reason=""))
    when = T0 + dt.timedelta(days=2)
    g = ap.revoke(engine, g_id, by="sgb-admin", reason="应用停止使用", now=when)
    assert (g.status, g.revoked_at, g.revoked_by, g.revoke_reason) == (
        "revoked",
        when,
        "sgb-admin",
        "应用停止使用",
    )
    e = raises("grant_not_active", 409, lambda: ap.revoke(engine, g_id, by="root", reason="again"))
    assert e.params == {"id": g_id, "status": "revoked"}


def test_list_applications_filters(engine: sa.Engine, app_id: str) -> None:
    other = app_registry.register_app(engine, "other", "SGB")[0].app_id
    a1 = submit(engine, app_id, GAJ, now=T0)
    a2 = submit(engine, app_id, SGB, now=T0 + dt.timedelta(minutes=1))
    a3 = submit(engine, other, GAJ, now=T0 + dt.timedelta(minutes=2))
    assert [a.id for a in ap.list_applications(engine)] == [a3.id, a2.id, a1.id]  # newest first
    assert [a.id for a in ap.list_applications(engine, app_id=app_id)] == [a2.id, a1.id]
    assert [a.id for a in ap.list_applications(engine, department_code="GAJ")] == [a3.id, a1.id]
    assert [a.id for a in ap.list_applications(engine, status="approved")] == [a2.id]
    assert [a.id for a in ap.list_applications(engine, department_code="GAJ", status="pending")] == [
        a3.id,
        a1.id,
    ]
    assert ap.get_application(engine, 999) is None


def test_list_grants_filters(engine: sa.Engine, app_id: str) -> None:
    other = app_registry.register_app(engine, "other", "SGB")[0].app_id
    g1 = submit(engine, app_id, SGB, requested_until=D("2025-10-31")).grant_id
    g2 = submit(engine, app_id, RSJ).grant_id
    g3 = submit(engine, other, SGB).grant_id
    assert [g.id for g in ap.list_grants(engine)] == [g3, g2, g1]
    assert [g.id for g in ap.list_grants(engine, app_id=app_id)] == [g2, g1]
    assert [g.id for g in ap.list_grants(engine, department_code="SGB")] == [g3, g1]
    assert g2 is not None
    ap.revoke(engine, g2, by="root", reason="停用", now=T0)
    later = dt.datetime(2025, 11, 1, tzinfo=UTC)
    assert [g.id for g in ap.list_grants(engine, active_only=True, now=T0)] == [g3, g1]
    assert [g.id for g in ap.list_grants(engine, active_only=True, now=later)] == [g3]  # g1 expired
    assert ap.get_grant(engine, 999) is None


# ---- the access state -----------------------------------------------------------------------


def state(engine: sa.Engine, app_id: str, code: str, now: dt.datetime) -> str:
    return ap.access_state(engine, app_id, code, now=now).kind


def test_state_none_granted_pending_refused(engine: sa.Engine, app_id: str) -> None:
    assert state(engine, app_id, GAJ, T0) == "none"
    a = submit(engine, app_id, GAJ)
    s = ap.access_state(engine, app_id, GAJ, now=T0)
    assert s.kind == "pending" and s.application == a and s.grant is None
    decide(engine, a.id, GAJ_APPROVER, approve=False, reason="不符合共享条件")
    s = ap.access_state(engine, app_id, GAJ, now=T0 + dt.timedelta(days=2))
    assert s.kind == "refused" and s.application is not None and s.application.reason == "不符合共享条件"
    b = submit(engine, app_id, GAJ, now=T0 + dt.timedelta(days=3))
    assert state(engine, app_id, GAJ, T0 + dt.timedelta(days=3)) == "pending"  # a new try after a refusal
    d = decide(engine, b.id, GAJ_APPROVER, now=T0 + dt.timedelta(days=4))
    s = ap.access_state(engine, app_id, GAJ, now=T0 + dt.timedelta(days=4))
    assert s.kind == "granted" and s.grant is not None and s.grant.id == d.grant_id
    assert state(engine, app_id, SCJ, T0) == "none"  # per dataset
    other = app_registry.register_app(engine, "other", "SGB")[0].app_id
    assert state(engine, other, GAJ, T0 + dt.timedelta(days=4)) == "none"  # per app


def test_state_granted_beats_a_pending_renewal(engine: sa.Engine, app_id: str) -> None:
    submit(engine, app_id, RSJ, fields=["id_no"])
    renewal = submit(engine, app_id, RSJ, fields=["id_no", "name"], clear_fields=["name"])
    s = ap.access_state(engine, app_id, RSJ, now=T0)
    assert s.kind == "granted" and s.application == renewal and s.grant is not None
    assert s.grant.fields == ["id_no"]


def test_state_expired(engine: sa.Engine, app_id: str) -> None:
    submit(engine, app_id, SGB, requested_until=D("2025-10-31"))
    assert state(engine, app_id, SGB, dt.datetime(2025, 10, 31, 23, 59, tzinfo=UTC)) == "granted"
    assert state(engine, app_id, SGB, dt.datetime(2025, 11, 1, 0, 0, tzinfo=UTC)) == "expired"


def test_state_revoked(engine: sa.Engine, app_id: str) -> None:
    g = submit(engine, app_id, SGB).grant_id
    assert g is not None
    ap.revoke(engine, g, by="root", reason="停用", now=T0 + dt.timedelta(days=1))
    assert state(engine, app_id, SGB, T0 + dt.timedelta(days=1)) == "revoked"


def test_state_revoked_or_expired_whichever_ended_it(engine: sa.Engine, app_id: str) -> None:
    other = app_registry.register_app(engine, "other", "SGB")[0].app_id
    early = submit(engine, app_id, SGB, requested_until=D("2025-10-31")).grant_id
    late = submit(engine, other, SGB, requested_until=D("2025-10-31")).grant_id
    assert early is not None and late is not None
    ap.revoke(engine, early, by="root", reason="停用", now=dt.datetime(2025, 10, 15, tzinfo=UTC))
    ap.revoke(engine, late, by="root", reason="清理", now=dt.datetime(2025, 11, 15, tzinfo=UTC))
    after = dt.datetime(2025, 12, 1, tzinfo=UTC)
    assert state(engine, app_id, SGB, after) == "revoked"  # revoked before it ran out
    assert state(engine, other, SGB, after) == "expired"  # ran out, revoked afterwards


def test_state_after_a_lapsed_grant(engine: sa.Engine, app_id: str) -> None:
    g = submit(engine, app_id, GAJ)
    decide(engine, g.id, GAJ_APPROVER, valid_until=D("2025-10-31"))
    nov = dt.datetime(2025, 11, 3, 2, 0, tzinfo=UTC)
    assert state(engine, app_id, GAJ, nov) == "expired"
    again = submit(engine, app_id, GAJ, now=nov)
    assert state(engine, app_id, GAJ, nov) == "pending"  # pending beats the expired grant
    ap.withdraw(engine, again.id, app_id, now=nov)
    assert state(engine, app_id, GAJ, nov) == "expired"  # a withdrawn application changes nothing
    third = submit(engine, app_id, GAJ, now=nov)
    decide(engine, third.id, GAJ_APPROVER, approve=False, reason="用途已结束", now=nov)
    s = ap.access_state(engine, app_id, GAJ, now=nov)
    assert s.kind == "refused" and s.grant is not None  # the newer refusal is the answer
    assert s.application is not None and s.application.reason == "用途已结束"


def test_state_older_refusal_does_not_hide_a_revocation(engine: sa.Engine, app_id: str) -> None:
    a = submit(engine, app_id, GAJ)
    decide(engine, a.id, GAJ_APPROVER, approve=False, reason="材料不全")
    b = submit(engine, app_id, GAJ, now=T0 + dt.timedelta(days=2))
    d = decide(engine, b.id, GAJ_APPROVER, now=T0 + dt.timedelta(days=3))
    assert d.grant_id is not None
    ap.revoke(engine, d.grant_id, by="gaj-approver", reason="违规使用", now=T0 + dt.timedelta(days=5))
    assert state(engine, app_id, GAJ, T0 + dt.timedelta(days=5)) == "revoked"


def test_state_withdrawn_only_is_none(engine: sa.Engine, app_id: str) -> None:
    a = submit(engine, app_id, GAJ)
    ap.withdraw(engine, a.id, app_id, now=T0)
    assert state(engine, app_id, GAJ, T0) == "none"


# ---- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture
def pg_engine(hub_pg_url: str) -> Iterator[sa.Engine]:
    engine = make_hub(hub_pg_url)
    yield engine
    engine.dispose()


@pytest.mark.services
def test_pg_round_trip(pg_engine: sa.Engine) -> None:
    engine = pg_engine
    app_id = app_registry.register_app(engine, "审批系统", "SCJGJ", now=T0)[0].app_id
    auto = submit(engine, app_id, SGB, requested_until=D("2026-01-31"))
    assert auto.status == "approved" and auto.submitted_at == T0
    g = grant_of(engine, auto)
    assert g is not None and g.valid_until == ap.end_of_day_utc(D("2026-01-31"))
    a = submit(engine, app_id, GAJ, fields=["id_no", "name", "gender"], clear_fields=["name"])
    assert (a.status, a.deadline) == ("pending", DEADLINE)
    assert state(engine, app_id, GAJ, T0) == "pending"
    late_day = D("2025-10-21")
    assert [x.id for x in ap.list_applications(engine, overdue_only=True, today=late_day)] == [a.id]
    d = decide(engine, a.id, GAJ_APPROVER, fields=["id_no", "name"])
    d = decide(engine, d.id, HUB_ADMIN)
    s = ap.access_state(engine, app_id, GAJ, now=T0 + dt.timedelta(days=1))
    assert s.kind == "granted" and s.grant is not None and s.grant.id == d.grant_id
    assert (s.grant.fields, s.grant.clear_fields) == (["id_no", "name"], ["name"])
    assert [x.id for x in ap.list_grants(engine, department_code="GAJ", active_only=True, now=T0)] == [
        d.grant_id
    ]
    ap.revoke(engine, d.grant_id, by="gaj-approver", reason="违规", now=T0 + dt.timedelta(days=2))
    assert state(engine, app_id, GAJ, T0 + dt.timedelta(days=2)) == "revoked"
    assert state(engine, app_id, SGB, dt.datetime(2026, 2, 1, tzinfo=UTC)) == "expired"
    refused = submit(engine, app_id, SCJ)
    decide(engine, refused.id, SCJ_APPROVER, approve=False, reason="无依据")
    assert state(engine, app_id, SCJ, T0 + dt.timedelta(days=2)) == "refused"


def _race(n: int, fn: Callable[[int], object]) -> list[object]:
    barrier = threading.Barrier(n)

    def run(i: int) -> object:
        barrier.wait()
        try:
            return fn(i)
        except HubError as exc:
            return exc.code

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


@pytest.mark.services
def test_pg_concurrent_submits_leave_one_pending(pg_engine: sa.Engine) -> None:
    app_id = app_registry.register_app(pg_engine, "并发", "SGB")[0].app_id
    results = _race(6, lambda i: submit(pg_engine, app_id, GAJ))
    assert sum(isinstance(r, ap.Application) for r in results) == 1
    assert sorted(r for r in results if isinstance(r, str)) == ["already_pending"] * 5
    assert len(ap.list_applications(pg_engine, app_id=app_id, status="pending")) == 1


@pytest.mark.services
def test_pg_concurrent_decisions_make_one_grant(pg_engine: sa.Engine) -> None:
    app_id = app_registry.register_app(pg_engine, "并发", "SGB")[0].app_id
    a = submit(pg_engine, app_id, GAJ)
    deciders = [GAJ_APPROVER, GAJ_ADMIN, HUB_ADMIN, GAJ_APPROVER]
    results = _race(4, lambda i: decide(pg_engine, a.id, deciders[i]))
    assert sum(isinstance(r, ap.Application) for r in results) == 1
    assert sorted(r for r in results if isinstance(r, str)) == ["already_decided"] * 3
    with pg_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.grants)).scalar_one() == 1


def test_second_approval_of_clear_fields_on_core_data(engine: sa.Engine, app_id: str) -> None:
    """双人审批: the owner's approval of clear sensitive fields on core data waits for the hub's
    data authority, who may narrow or refuse it; nobody approves twice, departments cannot."""
    a = submit(engine, app_id, GAJ, fields=["id_no", "name", "gender"], clear_fields=["id_no", "name"])
    first = decide(engine, a.id, GAJ_APPROVER)
    assert first.status == "second_approval" and ap.list_grants(engine, app_id=app_id) == []
    raises("second_approval_required", 403, lambda: decide(engine, a.id, GAJ_APPROVER))
    raises("second_approval_required", 403, lambda: decide(engine, a.id, GAJ_ADMIN))  # a department's admin
    raises("fields_not_requested", 400, lambda: decide(engine, a.id, HUB_ADMIN, fields=["address"]))
    d = decide(engine, a.id, HUB_ADMIN, clear_fields=["name"])  # the authority narrows the clear fields
    g = grant_of(engine, d)
    assert g is not None and g.clear_fields == ["name"] and d.decided_by == "root"
    # without clear fields the owner alone decides, as for any grade
    b = submit(engine, app_id, GAJ, fields=["gender"], now=T0 + dt.timedelta(days=2))
    assert decide(engine, b.id, GAJ_APPROVER, now=T0 + dt.timedelta(days=2)).status == "approved"


def test_the_same_person_cannot_give_both_approvals(engine: sa.Engine, app_id: str) -> None:
    a = submit(engine, app_id, GAJ, fields=["id_no", "name"], clear_fields=["name"])
    assert decide(engine, a.id, HUB_ADMIN).status == "second_approval"  # the hub's admin as the owner
    raises("own_submission", 403, lambda: decide(engine, a.id, HUB_ADMIN))
    other = StaffUser("root2", None, frozenset({"admin"}), "active", 1)
    raises("reason_required", 400, lambda: decide(engine, a.id, other, approve=False))
    refused = decide(engine, a.id, other, approve=False, reason="明文必要性不足")
    assert refused.status == "refused" and ap.access_state(engine, app_id, GAJ, now=T0).kind == "refused"
