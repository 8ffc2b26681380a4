"""The bulk sharing page: a department's applicant issues a recipient profile for its own app
(shown once), sees what it may read, revokes it; nobody acts for another department's app."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient

from catalog.access import staff
from tests.catalog.api_hub import PASSWORD
from tests.catalog.portal.conftest import csrf_of
from tests.catalog.sharing.sharing_hub import build


def _signed_in(client: TestClient, username: str) -> TestClient:
    r = client.post(
        "/portal/login",
        data={
            "username": username,
            "password": PASSWORD,
            "csrf_token": csrf_of(client.get("/portal/login").text),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return client


def test_an_applicant_issues_and_revokes_its_apps_profiles(tmp_path: Path) -> None:
    hub = build(tmp_path, portal=True)
    hub.sync()
    hub.grant("统计分析", ["pid", "city"])
    staff.create_staff(hub.engine, "tjj_app", "TJJ", ["applicant"], PASSWORD)
    staff.create_staff(hub.engine, "shr_app", "SHR", ["applicant"], PASSWORD)
    me = _signed_in(TestClient(hub.client.app), "tjj_app")
    page = me.get("/portal/sharing")
    assert page.status_code == 200 and "sharehub.shr.shr-people" in page.text
    app_id = hub.apps["统计分析"][0]
    r = me.post(
        "/portal/sharing/profiles",
        data={"app_id": app_id, "days": "30", "label": "分析平台", "csrf_token": csrf_of(page.text)},
    )
    assert r.status_code == 201 and r.headers["cache-control"] == "no-store"
    text = re.search(r"<textarea[^>]*>(.*?)</textarea>", r.text, re.S)
    assert text is not None
    doc = json.loads(text.group(1).replace("&#34;", '"').replace("&quot;", '"'))
    token = doc["bearerToken"]
    assert doc["endpoint"].endswith("/api/v1/delta-sharing") and token.startswith("shr_")
    table = "/api/v1/delta-sharing/shares/sharehub/schemas/shr/tables/shr-people/version"
    assert hub.client.get(table, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    again = me.get("/portal/sharing").text
    assert token not in again  # shown once
    # another department's applicant can neither issue for this app nor revoke its profile
    other = _signed_in(TestClient(hub.client.app), "shr_app")
    o = other.get("/portal/sharing")
    assert app_id not in o.text
    r = other.post("/portal/sharing/profiles", data={"app_id": app_id, "csrf_token": csrf_of(o.text)})
    assert r.status_code == 403
    rid = re.search(r"/portal/sharing/profiles/(\d+)/revoke", again)
    assert rid is not None
    assert (
        other.post(
            f"/portal/sharing/profiles/{rid.group(1)}/revoke", data={"csrf_token": csrf_of(o.text)}
        ).status_code
        == 404
    )
    r = me.post(
        f"/portal/sharing/profiles/{rid.group(1)}/revoke",
        data={"csrf_token": csrf_of(again)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert hub.client.get(table, headers={"Authorization": f"Bearer {token}"}).status_code == 401
