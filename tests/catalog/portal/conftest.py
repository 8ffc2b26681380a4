"""Fixtures of the portal tests: the sample hub served with the portal, and signed-in clients."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalog.access import staff
from tests.catalog.api_hub import PASSWORD, ApiHub, build_hub
from tests.catalog.portal.oidc_idp import idp  # noqa: F401 (the real OpenID Provider, for test_sso)

#: the portal's test accounts: username -> (department, roles)
PORTAL_STAFF: dict[str, tuple[str | None, list[str]]] = {
    "scj_pub": ("SCJ", ["publisher"]),
    "scj_appr": ("SCJ", ["approver"]),
    "scj_aud": ("SCJ", ["auditor"]),
    "zgj_app": ("ZGJ", ["applicant"]),
    "zgj_pub": ("ZGJ", ["publisher"]),
    "zgj_appr": ("ZGJ", ["approver"]),
    "rsj_pub": ("RSJ", ["publisher"]),
    "hub_admin": (None, ["admin"]),
    "hub_admin2": (None, ["admin"]),
    "scj_admin": ("SCJ", ["admin"]),
    "hub_auditor": (None, ["auditor"]),
}


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "the page has no form with a CSRF token"
    return m.group(1)


def sign_in(client: TestClient, engine: Any, username: str) -> TestClient:
    """Sign ``client`` in as one of PORTAL_STAFF (the account is created on first use)."""
    if staff.get_staff(engine, username) is None:
        dept, roles = PORTAL_STAFF[username]
        staff.create_staff(engine, username, dept, roles, PASSWORD)
    token = csrf_of(client.get("/portal/login").text)
    r = client.post(
        "/portal/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return client


@pytest.fixture
def portal_hub(tmp_path: Path) -> ApiHub:
    """The sample hub (tests/catalog/api_hub.py) with the portal on its app."""
    return build_hub(tmp_path, portal=True)


@pytest.fixture
def as_staff(portal_hub: ApiHub) -> Callable[[str], TestClient]:
    """``as_staff("scj_pub")``: a new client of the portal hub, signed in as that account."""

    def make(username: str) -> TestClient:
        client = TestClient(portal_hub.client.app)
        return sign_in(client, portal_hub.engine, username)

    return make
