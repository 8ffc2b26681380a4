"""Publish a directory in the portal and review it: errors beside their line, preview, four eyes."""

from __future__ import annotations

import yaml

from catalog import submissions
from catalog.directory import store
from tests.catalog.api_hub import SCJ
from tests.catalog.portal.conftest import csrf_of


def _text(summary: str) -> str:
    doc = {**SCJ, "datasets": [dict(d) for d in SCJ["datasets"]]}
    doc["datasets"][0] = {**doc["datasets"][0], "summary": summary}
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def test_edit_with_an_error_fix_submit_approve_and_the_new_version_is_live(portal_hub, as_staff) -> None:
    publisher = as_staff("scj_pub")
    page = publisher.get("/portal/publish").text
    assert "SCJ-LIC" in page  # the editor starts from what is published
    token = csrf_of(page)
    broken = _text("新摘要").replace("type: conditional", "type: sometimes", 1)
    r = publisher.post("/portal/publish", data={"csrf_token": token, "action": "check", "text": broken})
    line = next(i for i, t in enumerate(broken.splitlines(), 1) if "type: sometimes" in t)
    assert r.status_code == 200 and 'id="problems"' in r.text
    assert f'<li id="L{line}" class="bad">' in r.text  # the problem is shown beside its line
    r = publisher.post("/portal/publish", data={"csrf_token": token, "action": "submit", "text": broken})
    assert r.status_code == 400 and submissions.list_submissions(portal_hub.engine, status="pending") == []

    fixed = _text("新摘要")
    r = publisher.post("/portal/publish", data={"csrf_token": token, "action": "check", "text": fixed})
    assert 'id="check-ok"' in r.text and "新摘要" in r.text.split('id="preview"')[1]
    r = publisher.post(
        "/portal/publish",
        data={"csrf_token": token, "action": "submit", "text": fixed},
        follow_redirects=False,
    )
    assert r.status_code == 303
    (s,) = submissions.list_submissions(portal_hub.engine, status="pending")
    version = store.get_dataset(portal_hub.engine, "SCJ-LIC").version

    admin = as_staff("hub_admin")
    listing = admin.get("/portal/review").text
    assert f"/portal/review/{s.id}" in listing
    one = admin.get(f"/portal/review/{s.id}").text
    assert "新摘要" in one
    r = admin.post(
        f"/portal/review/{s.id}",
        data={"csrf_token": csrf_of(one), "decision": "approve"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    live = store.get_dataset(portal_hub.engine, "SCJ-LIC")
    assert live.version == version + 1 and live.spec.summary == "新摘要"
    assert "新摘要" in publisher.get("/portal/datasets/SCJ-LIC").text


def test_upload_a_file_saved_by_a_windows_editor(portal_hub, as_staff) -> None:
    publisher = as_staff("scj_pub")
    token = csrf_of(publisher.get("/portal/publish").text)
    raw = ("\ufeff" + _text("上传的摘要").replace("\n", "\r\n")).encode("utf-8")
    r = publisher.post(
        "/portal/publish",
        data={"csrf_token": token, "action": "check"},
        files={"upload": ("scj.yaml", raw, "application/x-yaml")},
    )
    assert 'id="check-ok"' in r.text and "上传的摘要" in r.text


def test_return_with_reason_keeps_the_published_state(portal_hub, as_staff) -> None:
    s = submissions.submit(
        portal_hub.engine,
        department_code="SCJ",
        content=_text("被退回"),
        source_name="portal",
        submitted_by="scj_pub",
    )
    before = store.get_dataset(portal_hub.engine, "SCJ-LIC")
    admin = as_staff("hub_admin")
    token = csrf_of(admin.get(f"/portal/review/{s.id}").text)
    r = admin.post(f"/portal/review/{s.id}", data={"csrf_token": token, "decision": "return", "reason": " "})
    assert r.status_code == 400 and submissions.get_submission(portal_hub.engine, s.id).status == "pending"
    admin.post(
        f"/portal/review/{s.id}", data={"csrf_token": token, "decision": "return", "reason": "分类不规范"}
    )
    assert submissions.get_submission(portal_hub.engine, s.id).status == "returned"
    assert store.get_dataset(portal_hub.engine, "SCJ-LIC") == before
    assert "分类不规范" in as_staff("scj_pub").get("/portal/publish").text


def test_who_may_do_what(portal_hub, as_staff) -> None:
    s = submissions.submit(
        portal_hub.engine,
        department_code="SCJ",
        content=_text("x"),
        source_name="portal",
        submitted_by="hub_admin",
    )
    # reviewers: only hub-wide admins, and not of their own submission
    for who in ("scj_pub", "scj_admin", "scj_appr"):
        assert as_staff(who).get(f"/portal/review/{s.id}").status_code == 403, who
    own = as_staff("hub_admin")
    r = own.post(
        f"/portal/review/{s.id}",
        data={"csrf_token": csrf_of(own.get("/portal/review").text), "decision": "approve"},
    )
    assert r.status_code == 403 and submissions.get_submission(portal_hub.engine, s.id).status == "pending"
    other = as_staff("hub_admin2")
    assert (
        other.post(f"/portal/review/{s.id}", data={"decision": "approve"}).status_code == 403
    )  # no CSRF token
    assert submissions.get_submission(portal_hub.engine, s.id).status == "pending"
    # publishers: their own department's directory only; hub-wide admins have none to edit
    assert as_staff("hub_admin").get("/portal/publish").status_code == 403
    rsj = as_staff("rsj_pub")
    r = rsj.post(
        "/portal/publish",
        data={
            "csrf_token": csrf_of(rsj.get("/portal/publish").text),
            "action": "submit",
            "text": _text("抢"),
        },
    )
    assert r.status_code == 400 and "SCJ" in r.text  # wrong_department, the form kept
    assert [x.department_code for x in submissions.list_submissions(portal_hub.engine)] == ["SCJ"]
