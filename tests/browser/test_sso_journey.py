"""A member of staff signs in at the identity provider and out again, in Chromium: the portal's
button, the real OpenID Provider's sign-in page (oidc-provider on Node.js), back to the page
asked for, then sign-out at both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from catalog.access import staff
from tests.browser.conftest import check_accessibility, free_port, missing, serve
from tests.catalog.api_hub import PASSWORD, build_hub
from tests.catalog.portal.oidc_idp import skip_reason, sso_settings, start_idp

pytestmark = pytest.mark.browser


def test_sign_in_and_out_through_the_identity_provider(tmp_path: Path, page: Any) -> None:
    reason = missing() or skip_reason()
    if reason:
        pytest.skip(reason)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    idp = start_idp(hub=url)
    try:
        settings = sso_settings(idp, portal_public_url=url, oidc_link_existing=True)
        hub = build_hub(tmp_path, portal=True, **settings)
        staff.create_staff(hub.engine, "zhang.san", "SCJ", ["approver"], PASSWORD)
        for _ in serve(hub.client.app, port):
            page.goto(f"{url}/portal/decisions")  # needs sign-in: the portal sends us to its sign-in page
            page.wait_for_url(f"{url}/portal/login*")
            check_accessibility(page)
            page.get_by_role("link", name="统一身份认证").click()
            # the IdP's own sign-in page
            page.wait_for_url(f"{idp.issuer}/interaction/*")
            page.locator("input[name=login]").fill("sub-zhang")
            page.locator("input[name=password]").fill("any")
            page.get_by_role("button", name="Sign-in").click()
            page.wait_for_url(f"{url}/portal/decisions")
            assert "zhang.san" in page.locator("header").inner_text()
            check_accessibility(page)
            # sign out: the hub, then the IdP's confirmation, then back to the portal signed out
            page.locator("header").get_by_role("button").filter(has_text="退出").click()
            page.wait_for_url(f"{idp.issuer}/session/end*")
            page.get_by_role("button", name="Yes, sign me out").click()
            page.wait_for_url(f"{url}/portal/")
            assert "zhang.san" not in page.locator("header").inner_text()
            page.goto(f"{url}/portal/decisions")
            page.wait_for_url(f"{url}/portal/login*")
    finally:
        idp.process.terminate()
        idp.process.wait(10)
