"""Apply and decide through the portal, as applicants, approvers and the wrong department."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from catalog.access import applications
from catalog.access.workdays import Calendar
from catalog.db import tables
from tests.catalog.portal.conftest import csrf_of

PURPOSE = "不动产登记时核验企业法定代表人身份"


def _apply(client, app_id: str, **extra) -> object:
    token = csrf_of(client.get("/portal/apply/SCJ-LIC").text)
    data = {
        "csrf_token": token,
        "app_id": app_id,
        "fields": ["uscc", "ent_name", "legal_rep"],
        "clear_fields": ["legal_rep"],
        "purpose": PURPOSE,
        "legal_basis": "《不动产登记暂行条例》",
        **extra,
    }
    return client.post("/portal/apply/SCJ-LIC", data=data, follow_redirects=False)


def _audit(engine, path: str) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(tables.audit).where(tables.audit.c.path == path).order_by(tables.audit.c.seq)
        )
        return [dict(r._mapping) for r in rows]


def test_apply_then_the_owner_approves_narrowed(portal_hub, as_staff) -> None:
    app_id = portal_hub.apps["不动产登记"][0]
    applicant = as_staff("zgj_app")
    r = _apply(applicant, app_id)
    assert r.status_code == 303, r.text
    (a,) = applications.list_applications(portal_hub.engine, app_id=app_id)
    assert a.status == "pending" and a.clear_fields == ["legal_rep"]
    mine = applicant.get("/portal/applications").text
    assert "待审批" in mine and "个工作日" in mine

    approver = as_staff("scj_appr")
    listing = approver.get("/portal/decisions").text
    assert f"/portal/decisions/{a.id}" in listing and "还剩" in listing
    page = approver.get(f"/portal/decisions/{a.id}").text
    assert PURPOSE in page and "法定代表人" in page
    r = approver.post(
        f"/portal/decisions/{a.id}",
        data={
            "csrf_token": csrf_of(page),
            "decision": "approve",
            "fields": ["uscc", "ent_name"],
            "rate_limit": "30",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    (g,) = applications.list_grants(portal_hub.engine, app_id=app_id)
    assert g.fields == ["uscc", "ent_name"] and g.clear_fields == [] and g.rate_limit == 30
    # the app's own view through the API: only the granted fields leave
    body = portal_hub.client.get(
        "/api/v1/datasets/SCJ-LIC/records",
        params={"uscc": "91330100MA27XL0B5H"},
        headers=portal_hub.as_app("不动产登记"),
    )
    assert body.status_code == 200, body.text
    assert set(body.json()["items"][0]) == {"uscc", "ent_name"} and "甲公司" in body.text
    decided = _audit(portal_hub.engine, f"/portal/decisions/{a.id}")
    assert decided[-1]["method"] == "POST" and decided[-1]["staff"] == "scj_appr"
    assert decided[-1]["action"] == "portal.decide" and decided[-1]["decision"] == "allow"


def test_refusal_needs_a_reason_and_changes_nothing_without_one(portal_hub, as_staff) -> None:
    _apply(as_staff("zgj_app"), portal_hub.apps["不动产登记"][0])
    (a,) = applications.list_applications(portal_hub.engine, status="pending")
    approver = as_staff("scj_appr")
    token = csrf_of(approver.get(f"/portal/decisions/{a.id}").text)
    r = approver.post(
        f"/portal/decisions/{a.id}", data={"csrf_token": token, "decision": "refuse", "reason": "  "}
    )
    assert r.status_code == 400 and 'id="form-error"' in r.text
    assert applications.get_application(portal_hub.engine, a.id).status == "pending"
    r = approver.post(
        f"/portal/decisions/{a.id}",
        data={"csrf_token": token, "decision": "refuse", "reason": "材料不全"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert applications.get_application(portal_hub.engine, a.id).reason == "材料不全"


def test_an_applicant_cannot_apply_with_another_departments_app(portal_hub, as_staff) -> None:
    r = _apply(as_staff("zgj_app"), portal_hub.apps["企业开办"][0])  # SCJ's app, tampered into the form
    assert r.status_code == 403
    assert applications.list_applications(portal_hub.engine) == []
    # and the form only offers the department's own apps
    form = as_staff("zgj_app").get("/portal/apply/SCJ-LIC").text
    assert portal_hub.apps["不动产登记"][0] in form and portal_hub.apps["企业开办"][0] not in form
    # other roles may not apply at all
    assert as_staff("zgj_pub").get("/portal/apply/SCJ-LIC").status_code == 403


def test_another_departments_approver_neither_sees_nor_decides(portal_hub, as_staff) -> None:
    _apply(as_staff("zgj_app"), portal_hub.apps["不动产登记"][0])
    (a,) = applications.list_applications(portal_hub.engine)
    other = as_staff("zgj_appr")
    assert PURPOSE not in other.get("/portal/decisions").text
    assert other.get(f"/portal/decisions/{a.id}").status_code == 404
    token = csrf_of(other.get("/portal/decisions").text)
    r = other.post(
        f"/portal/decisions/{a.id}", data={"csrf_token": token, "decision": "approve", "fields": ["uscc"]}
    )
    assert r.status_code == 404
    assert applications.get_application(portal_hub.engine, a.id).status == "pending"
    assert as_staff("scj_pub").get("/portal/decisions").status_code == 403  # a publisher is no approver


def test_overdue_stands_out_and_a_late_decision_is_marked(portal_hub, as_staff) -> None:
    past = dt.datetime(2026, 9, 1, 2, tzinfo=dt.UTC)
    a = applications.submit(
        portal_hub.engine,
        portal_hub.apps["不动产登记"][0],
        "SCJ-LIC",
        fields=None,
        purpose="很久以前的申请",
        legal_basis="条例",
        calendar=Calendar.china(),
        deadline_days=10,
        default_rate_limit=60,
        now=past,
    )
    approver = as_staff("scj_appr")
    listing = approver.get("/portal/decisions").text
    assert 'id="overdue-count"' in listing and "已逾期" in listing
    token = csrf_of(listing)
    approver.post(
        f"/portal/decisions/{a.id}", data={"csrf_token": token, "decision": "refuse", "reason": "逾期处理"}
    )
    assert applications.get_application(portal_hub.engine, a.id).late
    assert "超期办结" in approver.get("/portal/decisions").text


def test_withdraw_and_revoke_and_csrf(portal_hub, as_staff) -> None:
    applicant = as_staff("zgj_app")
    _apply(applicant, portal_hub.apps["不动产登记"][0])
    (a,) = applications.list_applications(portal_hub.engine)
    assert applicant.post(f"/portal/applications/{a.id}/withdraw", data={}).status_code == 403  # no token
    assert applications.get_application(portal_hub.engine, a.id).status == "pending"
    token = csrf_of(applicant.get("/portal/applications").text)
    assert (
        applicant.post(f"/portal/applications/{a.id}/withdraw", data={"csrf_token": token}).status_code == 200
    )
    assert applications.get_application(portal_hub.engine, a.id).status == "withdrawn"

    _apply(applicant, portal_hub.apps["不动产登记"][0])
    b = applications.list_applications(portal_hub.engine, status="pending")[0]
    approver = as_staff("scj_appr")
    token = csrf_of(approver.get("/portal/decisions").text)
    approver.post(
        f"/portal/decisions/{b.id}", data={"csrf_token": token, "decision": "approve", "fields": ["uscc"]}
    )
    (g,) = applications.list_grants(portal_hub.engine, active_only=True)
    other = as_staff("zgj_appr")
    r = other.post(
        f"/portal/grants/{g.id}/revoke",
        data={"csrf_token": csrf_of(other.get("/portal/decisions").text), "reason": "x"},
    )
    assert r.status_code == 404 and applications.get_grant(portal_hub.engine, g.id).status == "active"
    assert approver.post(f"/portal/grants/{g.id}/revoke", data={"reason": "不再需要"}).status_code == 403
    r = approver.post(
        f"/portal/grants/{g.id}/revoke",
        data={"csrf_token": token, "reason": "不再需要"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and applications.get_grant(portal_hub.engine, g.id).status == "revoked"


def test_second_approval_in_the_portal(portal_hub, as_staff) -> None:
    """Core data: the owner's approval of a clear field waits for the hub's data authority."""
    from catalog import publishing
    from catalog.directory.model import DirectoryFile
    from tests.catalog.api_hub import SCJ

    doc = {**SCJ, "datasets": [dict(d) for d in SCJ["datasets"]]}
    doc["datasets"][0] = {**doc["datasets"][0], "grade": "core"}
    publishing.publish(portal_hub.engine, DirectoryFile.model_validate(doc), source_file="scj-core.yaml")
    app_id = portal_hub.apps["不动产登记"][0]
    r = _apply(as_staff("zgj_app"), app_id)  # legal_rep asked in clear
    assert r.status_code == 303, r.text
    (a,) = applications.list_applications(portal_hub.engine, app_id=app_id)
    owner = as_staff("scj_appr")
    page = owner.get(f"/portal/decisions/{a.id}").text
    owner.post(f"/portal/decisions/{a.id}", data={"csrf_token": csrf_of(page), "decision": "approve",
               "fields": ["uscc", "ent_name", "legal_rep"], "clear_fields": ["legal_rep"]})  # fmt: skip
    assert applications.get_application(portal_hub.engine, a.id).status == "second_approval"
    assert applications.list_grants(portal_hub.engine, app_id=app_id) == []
    authority = as_staff("hub_admin")
    listing = authority.get("/portal/decisions").text
    assert f"/portal/decisions/{a.id}" in listing and "待数据主管部门二次审批" in listing
    page = authority.get(f"/portal/decisions/{a.id}").text
    assert 'id="second-approval"' in page and "scj_appr" in page
    authority.post(f"/portal/decisions/{a.id}", data={"csrf_token": csrf_of(page), "decision": "approve",
                   "fields": ["uscc", "ent_name", "legal_rep"], "clear_fields": ["legal_rep"]})  # fmt: skip
    (g,) = applications.list_grants(portal_hub.engine, app_id=app_id)
    assert g.clear_fields == ["legal_rep"] and g.valid_until is not None  # core: at most 90 days
