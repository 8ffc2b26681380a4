"""A real OpenID Provider for the single sign-on tests: ``tests/oidc/provider.mjs`` (panva's
oidc-provider, OpenID Certified) on Node.js, on loopback; and a browser walking through it.

Needs ``node`` and ``npm ci --prefix tests/oidc`` (``.ci/run`` installs it); without them the
tests that use it are skipped and say why.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.paths import REPO

OIDC_DIR = REPO / "tests" / "oidc"
CLIENT_ID = "sharehub-portal"
CLIENT_SECRET = "test-client-secret-0123456789abcdef"
HUB = "http://testserver"
REDIRECT_URI = f"{HUB}/portal/sso/callback"

#: the IdP's users: login (= sub) -> claims
ACCOUNTS: dict[str, dict[str, Any]] = {
    "sub-zhang": {
        "preferred_username": "zhang.san",
        "name": "张三",
        "department": "SCJ",
        "roles": ["approver"],
    },
    "sub-li": {"preferred_username": "li.si", "name": "李四", "department": "SCJ", "roles": ["publisher"]},
    "sub-wang": {"preferred_username": "wang.wu", "name": "王五", "department": "SCJ", "roles": []},
    "sub-zhao": {"preferred_username": "zhao.liu", "department": "XXJ", "roles": ["approver"]},
    "sub-qian": {"preferred_username": "qian.qi", "department": "", "roles": ["approver"]},
    "sub-mallory": {"preferred_username": "scj_admin", "department": "SCJ", "roles": ["admin"]},
    "sub-sun": {"preferred_username": "sun.ba", "department": "市场监管局", "roles": ["sjj-shenpi"]},
}


def skip_reason() -> str | None:
    """Why the IdP cannot run here, or None."""
    if shutil.which("node") is None:
        return "Node.js is not installed"
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        return "oidc-provider is not installed: npm ci --prefix tests/oidc"
    return None


@dataclass
class Idp:
    """The running provider."""

    issuer: str
    process: subprocess.Popen[str]
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def set_claims(self, login: str, claims: dict[str, Any]) -> None:
        """Change a user's claims at the IdP (an administrator there)."""
        r = httpx.put(f"{self.issuer}/__test/accounts/{login}", content=json.dumps(claims))
        assert r.status_code == 204


def start_idp(port: int = 0, *, hub: str = HUB) -> Idp:
    """Start the provider for a hub served at ``hub``; its issuer is ``http://127.0.0.1:<port>``."""
    config = {
        "port": port,
        "clients": [
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [f"{hub}/portal/sso/callback"],
                "post_logout_redirect_uris": [f"{hub}/portal/"],
            },
            {
                "client_id": "another-system",
                "client_secret": "another-secret-0123456789abcdef",
                "redirect_uris": [f"{hub}/portal/sso/callback"],
            },
        ],
        "accounts": ACCOUNTS,
    }
    process = subprocess.Popen(
        ["node", str(OIDC_DIR / "provider.mjs"), json.dumps(config)],
        cwd=OIDC_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "NODE_ENV": "test"},
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline()
            if line.startswith("READY "):
                return Idp(line.split()[1], process, dict(ACCOUNTS))
            if not line and process.poll() is not None:
                break
    process.kill()
    raise RuntimeError("the OpenID Provider did not start")


@pytest.fixture(scope="module")
def idp() -> Iterator[Idp]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    provider = start_idp()
    try:
        yield provider
    finally:
        provider.process.terminate()
        provider.process.wait(10)


def sso_settings(idp: Idp, **more: Any) -> dict[str, Any]:
    """The hub's settings for single sign-on at ``idp``."""
    return {
        "oidc_issuer": idp.issuer,
        "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": CLIENT_SECRET,
        "oidc_scopes": "openid profile gov",
        "portal_public_url": HUB,
        **more,
    }


@dataclass
class Journey:
    """One trip through the IdP: what each side saw."""

    authorize_url: str
    callback_url: str
    response: httpx.Response  # the portal's answer to the callback


def through_idp(idp: Idp, browser: httpx.Client, start_url: str, login: str) -> str:
    """Follow the IdP from an authorization URL, sign in as ``login``, and return the URL the
    IdP sends the browser back to (the portal's callback, with code and state)."""
    r = browser.get(start_url)
    for _ in range(10):
        if r.status_code in (302, 303):
            location = r.headers["location"]
            url = location if location.startswith("http") else idp.issuer + location
            if url.startswith(HUB):
                return url
            r = browser.get(url)
            continue
        assert r.status_code == 200, r.text
        path = urlsplit(str(r.url)).path
        assert path.startswith("/interaction/"), r.text
        r = browser.post(f"{idp.issuer}{path}", data={"prompt": "login", "login": login, "password": "x"})
    raise AssertionError("the IdP never sent the browser back")


def sign_in_via_idp(client: TestClient, idp: Idp, login: str, *, next: str = "/portal/") -> Journey:
    """The whole journey in one browser: the portal's start, the IdP, the portal's callback."""
    start = client.get("/portal/sso/start", params={"next": next}, follow_redirects=False)
    assert start.status_code == 303, start.text
    authorize_url = start.headers["location"]
    with httpx.Client(follow_redirects=False, timeout=20) as browser:
        callback_url = through_idp(idp, browser, authorize_url, login)
    parts = urlsplit(callback_url)
    response = client.get(f"{parts.path}?{parts.query}", follow_redirects=False)
    return Journey(authorize_url, callback_url, response)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
