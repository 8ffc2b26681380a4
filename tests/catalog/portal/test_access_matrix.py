"""Every portal page as every role, and as another department's staff: the server decides.

Expected answers: 200 (the page), 403 (a signed-in account without the role or scope), 303 (the
public is sent to sign in) or 404 (the public asking for a dataset that is not open)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.catalog.api_hub import ApiHub, build_hub
from tests.catalog.portal.conftest import PORTAL_STAFF, sign_in

USERS = [None, *PORTAL_STAFF]  # None: signed out

EVERYONE = set(USERS)
STAFF = set(PORTAL_STAFF)
APPLICANTS = {"zgj_app", "hub_admin", "hub_admin2", "scj_admin"}
APPROVERS = {"scj_appr", "zgj_appr", "hub_admin", "hub_admin2", "scj_admin"}
DEPT_PUBLISHERS = {"scj_pub", "zgj_pub", "rsj_pub", "scj_admin"}
PUBLISHERS_AUDITORS = {
    "scj_pub",
    "zgj_pub",
    "rsj_pub",
    "scj_aud",
    "hub_auditor",
    "hub_admin",
    "hub_admin2",
    "scj_admin",
}
HUB_ADMINS = {"hub_admin", "hub_admin2"}
SUPERVISORS = {"hub_admin", "hub_admin2", "hub_auditor", "scj_aud", "scj_admin"}

PAGES: dict[str, set[str | None]] = {
    "/portal/": EVERYONE,
    "/portal/datasets/SCJ-OPEN": EVERYONE,
    "/portal/datasets/SCJ-LIC": STAFF,
    "/portal/apply/SCJ-LIC": APPLICANTS,
    "/portal/applications": APPLICANTS,
    "/portal/decisions": APPROVERS,
    "/portal/publish": DEPT_PUBLISHERS,
    "/portal/review": HUB_ADMINS,
    "/portal/corrections": PUBLISHERS_AUDITORS,
    "/portal/objections": STAFF,
    "/portal/objections/new?dataset=SCJ-LIC": STAFF,
    "/portal/audit": PUBLISHERS_AUDITORS,
    "/portal/audit.csv": PUBLISHERS_AUDITORS,
    "/portal/supervision": SUPERVISORS,
    "/portal/supervision/report.csv": SUPERVISORS,
}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiHub]:
    yield build_hub(tmp_path_factory.mktemp("matrix"), portal=True)


@pytest.fixture(scope="module")
def clients(hub: ApiHub) -> dict[str | None, TestClient]:
    out: dict[str | None, TestClient] = {None: TestClient(hub.client.app)}
    for user in PORTAL_STAFF:
        out[user] = sign_in(TestClient(hub.client.app), hub.engine, user)
    return out


@pytest.mark.parametrize("path", list(PAGES))
def test_page_answers_by_role_and_scope(clients: dict[str | None, TestClient], path: str) -> None:
    got = {}
    for user in USERS:
        status = clients[user].get(path, follow_redirects=False).status_code
        got[user] = status
    want = {}
    for user in USERS:
        if user in PAGES[path]:
            want[user] = 200
        elif user is None:
            want[user] = 404 if path.startswith("/portal/datasets/") else 303
        else:
            want[user] = 403
    assert got == want


def test_another_departments_data_answers_as_missing(clients: dict[str | None, TestClient]) -> None:
    for path in ("/portal/corrections?dataset=SCJ-LIC", "/portal/corrections.xlsx?dataset=SCJ-LIC"):
        assert clients["rsj_pub"].get(path).status_code == 404
        assert clients["scj_pub"].get(path).status_code == 200
