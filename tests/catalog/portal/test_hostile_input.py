"""Hostile text in what the portal shows, and password guessing at its sign-in form."""

from __future__ import annotations

from fastapi.testclient import TestClient

from catalog import publishing
from catalog.access import objections, staff
from catalog.access.workdays import Calendar
from catalog.directory.model import DirectoryFile
from tests.catalog.api_hub import PASSWORD, SCJ, USCC, build_hub
from tests.catalog.portal.conftest import csrf_of

SCRIPT = '<script>alert("x")</script>'


def test_text_from_departments_and_users_is_escaped_everywhere(portal_hub, as_staff) -> None:
    doc = {**SCJ, "datasets": [dict(d) for d in SCJ["datasets"]]}
    doc["datasets"][1] = {**doc["datasets"][1], "summary": SCRIPT, "category": SCRIPT}
    publishing.publish(portal_hub.engine, DirectoryFile.model_validate(doc), source_file=f"{SCRIPT}.yaml")
    objections.raise_objection(
        portal_hub.engine, Calendar(), dataset_code="SCJ-LIC", record_key={"uscc": USCC[0]}, field=None,
        reason=SCRIPT, evidence=SCRIPT, raised_by_kind="staff", raised_by="zgj_pub", raised_department="ZGJ",
        answer_days=5,
    )  # fmt: skip
    pages = [
        TestClient(portal_hub.client.app).get("/portal/").text,
        TestClient(portal_hub.client.app).get("/portal/datasets/SCJ-OPEN").text,
        as_staff("scj_pub").get("/portal/objections").text,
        TestClient(portal_hub.client.app).get(f"/portal/?q={SCRIPT}").text,
    ]
    for html in pages:
        assert SCRIPT not in html
    assert "&lt;script&gt;" in pages[1] and "&lt;script&gt;" in pages[2]


def test_password_guessing_is_throttled_per_account_and_address(tmp_path) -> None:
    hub = build_hub(tmp_path, portal=True, login_rate_limit_per_account=3)
    staff.create_staff(hub.engine, "scj_pub", "SCJ", ["publisher"], PASSWORD)
    client = TestClient(hub.client.app)
    token = csrf_of(client.get("/portal/login").text)
    codes = [
        client.post(
            "/portal/login", data={"username": "scj_pub", "password": f"guess {i}", "csrf_token": token}
        ).status_code
        for i in range(4)
    ]
    assert codes == [401, 401, 401, 429]
    r = client.post("/portal/login", data={"username": "scj_pub", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 429 and "sharehub_session" not in r.headers.get("set-cookie", "")
    # another account from the same address is not locked out by it
    staff.create_staff(hub.engine, "zgj_pub", "ZGJ", ["publisher"], PASSWORD)
    ok = client.post(
        "/portal/login",
        data={"username": "zgj_pub", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert ok.status_code == 303
