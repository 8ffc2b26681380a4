"""Security review of staff single sign-on: findings, each as a test that fails until fixed.

These call the claim mapping (:func:`catalog.access.sso.sign_in`) and the callback route
directly; none needs the Node IdP."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from catalog.access import sso, staff
from tests.catalog.api_hub import PASSWORD, ApiHub, build_hub

ISSUER = "http://127.0.0.1:9/idp"  # nothing listens: these tests never reach an IdP


def _hub(tmp_path: Path) -> ApiHub:
    return build_hub(
        tmp_path,
        portal=True,
        oidc_issuer=ISSUER,
        oidc_client_id="sharehub",
        portal_public_url="http://testserver",
    )


CREATE = sso.ClaimMapping(create_users=True)


def _claims(sub: str, username: str, roles: list[str] | None = None) -> dict[str, object]:
    return {"sub": sub, "preferred_username": username, "department": "SCJ", "roles": roles or ["approver"]}


@pytest.mark.parametrize(
    "lookalike",
    [
        pytest.param("ZHANG.SAN", id="case"),
        pytest.param("zhang.san\u200b", id="zero-width-space"),
        pytest.param("zh\u0430ng.san", id="cyrillic-a"),
        pytest.param("\uff5ahang.san", id="fullwidth-z"),
        pytest.param("zhang.san\u202e", id="bidi-override"),
        pytest.param("zhang\nsan", id="newline"),
    ],
)
def test_an_idp_user_cannot_create_a_look_alike_of_an_existing_account(
    tmp_path: Path, lookalike: str
) -> None:
    """Finding 1 (medium): with creation on, any IdP user who chooses their preferred_username
    gets a new account whose name differs from an existing one (here an approver; equally a
    hub admin) only by case, an invisible or look-alike character, or a control character.
    The exact-match collision check (and the refusal by default of linking by name) never
    fires; the audit trail, the portal's lists and decisions then show a second "zhang.san".
    Expected: such names are refused (``no_username``) or folded onto the existing account's
    refusal (``unknown_user``/``subject_mismatch``) — never created."""
    hub = _hub(tmp_path)
    staff.create_staff(hub.engine, "zhang.san", "SCJ", ["approver"], PASSWORD)
    with pytest.raises(sso.SsoRefused):
        sso.sign_in(hub.engine, ISSUER, _claims("sub-mallory", lookalike), CREATE)


def test_losing_every_hub_role_at_the_idp_leaves_no_role_in_the_hub(tmp_path: Path) -> None:
    """Finding 2 (low): docs/security.md says that with sync_roles "a role removed at the IdP
    is gone at the next sign-in". When the IdP removes the user's last hub role the sign-in is
    refused (``no_roles``) inside the transaction that would have synced, so the account keeps
    every role it had — usable through its password (API ``grant_type=password``) and any
    session it still holds."""
    hub = _hub(tmp_path)
    staff.create_staff(hub.engine, "zhang.san", "SCJ", ["approver"], PASSWORD)
    sso.link(hub.engine, "zhang.san", ISSUER, "sub-zhang")
    with pytest.raises(sso.SsoRefused):
        sso.sign_in(hub.engine, ISSUER, _claims("sub-zhang", "zhang.san", roles=["nothing-hub"]), CREATE)
    user = staff.get_staff(hub.engine, "zhang.san")
    assert user is not None
    assert "approver" not in user.roles or user.status != "active"


def test_the_callback_does_not_let_anyone_write_lines_into_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Finding 3 (low): anybody can call /portal/sso/callback with an ``error`` and an
    ``error_description`` of their own; the refusal is logged as a warning with the
    description verbatim, line breaks included, so an unauthenticated caller forges log lines
    (e.g. a fake "signed in as admin" record for whoever reads the operator's log)."""
    hub = _hub(tmp_path)
    client = TestClient(hub.client.app, base_url="http://testserver")
    forged = "x\r\n2026-12-05 13:00:00 INFO catalog.portal single sign-on: admin signed in"
    with caplog.at_level(logging.INFO):
        response = client.get(
            "/portal/sso/callback", params={"error": "access_denied", "error_description": forged}
        )
    assert response.status_code == 400
    messages = [r.getMessage() for r in caplog.records if "single sign-on" in r.getMessage()]
    assert messages, "the refusal is logged"
    for message in messages:
        assert "\n" not in message and "\r" not in message, message


def test_the_refusals_name_why_and_the_account_that_lost_its_roles_is_disabled(tmp_path: Path) -> None:
    """What the fixes answer: a name differing only in case is a clash, any other look-alike is
    not a plain name; an account the IdP leaves with no hub role is disabled (its tokens and
    sessions end with it) until an admin re-enables it."""
    hub = _hub(tmp_path)
    staff.create_staff(hub.engine, "zhang.san", "SCJ", ["approver"], PASSWORD)
    with pytest.raises(sso.SsoRefused) as clash:
        sso.sign_in(hub.engine, ISSUER, _claims("sub-a", "ZHANG.SAN"), CREATE)
    assert clash.value.code == "username_clash"
    with pytest.raises(sso.SsoRefused) as odd:
        sso.sign_in(hub.engine, ISSUER, _claims("sub-b", "zh\u0430ng.san"), CREATE)
    assert odd.value.code == "no_username"
    assert [u.username for u in staff.list_staff(hub.engine)] == ["zhang.san"]
    made = sso.sign_in(hub.engine, ISSUER, _claims("sub-c", "li.si"), CREATE)
    assert made.event == "created" and made.user.username == "li.si"

    sso.link(hub.engine, "zhang.san", ISSUER, "sub-zhang")
    before = staff.get_staff(hub.engine, "zhang.san")
    assert before is not None
    with pytest.raises(sso.SsoRefused) as gone:
        sso.sign_in(hub.engine, ISSUER, _claims("sub-zhang", "zhang.san", roles=["nothing-hub"]), CREATE)
    assert gone.value.code == "no_roles"
    after = staff.get_staff(hub.engine, "zhang.san")
    assert after is not None and after.status == "disabled"
    assert after.password_generation > before.password_generation  # its tokens are dead too
    assert staff.authenticate_staff(hub.engine, "zhang.san", PASSWORD) is None
