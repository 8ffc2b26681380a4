"""Data objections in the portal: raise as staff, answer as the provider, scope and CSRF."""

from __future__ import annotations

from catalog.access import objections
from catalog.access.workdays import Calendar
from tests.catalog.api_hub import USCC
from tests.catalog.portal.conftest import csrf_of


def test_staff_raise_and_the_provider_answers_in_the_portal(portal_hub, as_staff) -> None:
    reporter = as_staff("zgj_pub")
    form = reporter.get("/portal/objections/new?dataset=SCJ-LIC").text
    assert 'name="key_uscc"' in form
    r = reporter.post(
        "/portal/objections/new?dataset=SCJ-LIC",
        data={
            "csrf_token": csrf_of(form),
            "key_uscc": USCC[1],
            "field": "ent_name",
            "reason": "企业名称与执照不符",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    (o,) = objections.list_objections(portal_hub.engine)
    assert o.raised_by == "zgj_pub" and o.raised_department == "ZGJ" and o.department_code == "SCJ"
    assert "企业名称与执照不符" in reporter.get("/portal/objections").text

    provider = as_staff("scj_pub")
    page = provider.get("/portal/objections").text
    assert f'action="/portal/objections/{o.id}/answer"' in page
    r = provider.post(
        f"/portal/objections/{o.id}/answer",
        data={"csrf_token": csrf_of(page), "status": "corrected", "answer": "已在源系统更正"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "已在源系统更正" in reporter.get("/portal/objections").text  # the reporter sees the answer


def test_a_bad_key_re_renders_the_form_and_keeps_what_was_typed(portal_hub, as_staff) -> None:
    client = as_staff("zgj_pub")
    token = csrf_of(client.get("/portal/objections/new?dataset=SCJ-LIC").text)
    r = client.post(
        "/portal/objections/new?dataset=SCJ-LIC",
        data={"csrf_token": token, "key_uscc": "", "reason": "理由保留"},
    )
    assert r.status_code == 400 and 'id="form-error"' in r.text and "理由保留" in r.text
    assert objections.list_objections(portal_hub.engine) == []


def test_other_departments_neither_see_nor_answer(portal_hub, as_staff) -> None:
    o = objections.raise_objection(
        portal_hub.engine,
        Calendar(),
        dataset_code="SCJ-LIC",
        record_key={"uscc": USCC[0]},
        field=None,
        reason="只给相关部门看的理由-91c2",
        evidence=None,
        raised_by_kind="staff",
        raised_by="zgj_pub",
        raised_department="ZGJ",
        answer_days=5,
    )
    outsider = as_staff("rsj_pub")
    page = outsider.get("/portal/objections").text
    assert "只给相关部门看的理由-91c2" not in page
    r = outsider.post(
        f"/portal/objections/{o.id}/answer", data={"csrf_token": csrf_of(page), "status": "corrected"}
    )
    assert r.status_code == 404
    # the reporting department sees it but may not answer it
    reporter = as_staff("zgj_pub")
    page = reporter.get("/portal/objections").text
    assert "只给相关部门看的理由-91c2" in page and f"/portal/objections/{o.id}/answer" not in page
    r = reporter.post(
        f"/portal/objections/{o.id}/answer", data={"csrf_token": csrf_of(page), "status": "corrected"}
    )
    assert r.status_code == 404
    provider = as_staff("scj_pub")
    assert (
        provider.post(f"/portal/objections/{o.id}/answer", data={"status": "corrected"}).status_code == 403
    )  # CSRF
    assert objections.get_objection(portal_hub.engine, o.id).status == "open"
    approver = as_staff("scj_appr")  # of the provider, but no data steward
    own = csrf_of(approver.get("/portal/objections").text)
    r = approver.post(f"/portal/objections/{o.id}/answer", data={"csrf_token": own, "status": "corrected"})
    assert r.status_code == 403 and "表单已过期" not in r.text
    assert objections.get_objection(portal_hub.engine, o.id).status == "open"
