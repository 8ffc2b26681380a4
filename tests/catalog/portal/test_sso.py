"""Staff single sign-on through OpenID Connect, against a real OpenID Provider (oidc-provider
on Node.js, started by the tests): the code flow with PKCE, claims mapped to accounts, the
refusals, the state's defences, and logout."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from catalog.access import sso, staff
from catalog.db import tables
from tests.catalog.api_hub import PASSWORD, ApiHub, build_hub
from tests.catalog.portal.conftest import csrf_of
from tests.catalog.portal.oidc_idp import (
    CLIENT_ID,
    HUB,
    REDIRECT_URI,
    Idp,
    query_of,
    sign_in_via_idp,
    sso_settings,
    through_idp,
)


def _hub(tmp_path: Path, idp: Idp, **more: Any) -> ApiHub:
    """A hub signing in at ``idp``; linking by user name on unless a test says otherwise (the
    accounts these tests make are named as the IdP names them)."""
    return build_hub(tmp_path, portal=True, **sso_settings(idp, **{"oidc_link_existing": True, **more}))


def _client(hub: ApiHub) -> TestClient:
    return TestClient(hub.client.app, base_url=HUB)


def _audit(hub: ApiHub, action_prefix: str) -> list[sa.Row[Any]]:
    a = tables.audit
    with hub.engine.connect() as conn:
        return list(
            conn.execute(sa.select(a).where(a.c.action.like(f"{action_prefix}%")).order_by(a.c.seq)).all()
        )


def test_known_user_signs_in_with_pkce_and_is_linked(tmp_path: Path, idp: Idp) -> None:
    hub = _hub(tmp_path, idp)
    staff.create_staff(hub.engine, "zhang.san", "SCJ", ["approver"], PASSWORD)
    client = _client(hub)
    login_page = client.get("/portal/login").text
    assert "/portal/sso/start" in login_page and "统一身份认证" in login_page

    journey = sign_in_via_idp(client, idp, "sub-zhang", next="/portal/decisions")
    q = query_of(journey.authorize_url)
    # the code flow with PKCE S256, a nonce, and the verifier never sent to the browser
    assert q["response_type"] == "code" and q["client_id"] == CLIENT_ID
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
    assert q["nonce"] and q["state"] and q["redirect_uri"] == REDIRECT_URI
    assert "code_verifier" not in journey.authorize_url
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.sso_logins)).scalar() == 0
    assert journey.response.status_code == 303, journey.response.text
    assert journey.response.headers["location"] == "/portal/decisions"
    # the session works, for the roles the IdP gave
    page = client.get("/portal/decisions")
    assert page.status_code == 200 and "zhang.san" in page.text
    with hub.engine.connect() as conn:
        row = conn.execute(sa.select(tables.staff).where(tables.staff.c.username == "zhang.san")).one()
    assert (row.sso_issuer, row.sso_subject) == (idp.issuer, "sub-zhang")
    linked = _audit(hub, "portal.sso_linked")
    assert [(r.staff, r.decision) for r in linked] == [("zhang.san", "allow")]


def test_the_challenge_is_the_verifier_the_token_request_sends(tmp_path: Path, idp: Idp) -> None:
    """The pending sign-in keeps the verifier whose S256 is the challenge the IdP was given."""
    hub = _hub(tmp_path, idp)
    client = _client(hub)
    start = client.get("/portal/sso/start", follow_redirects=False)
    challenge = query_of(start.headers["location"])["code_challenge"]
    with hub.engine.connect() as conn:
        verifier = conn.execute(sa.select(tables.sso_logins.c.code_verifier)).scalar_one()
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert digest == challenge
    assert verifier not in start.text and verifier not in str(start.headers)


def test_unknown_user_is_refused_unless_creation_is_configured(tmp_path: Path, idp: Idp) -> None:
    hub = _hub(tmp_path, idp)
    client = _client(hub)
    journey = sign_in_via_idp(client, idp, "sub-li")
    assert journey.response.status_code == 403
    assert "未开通本平台权限" in journey.response.text
    assert "sh_session" not in journey.response.headers.get("set-cookie", "")
    assert staff.get_staff(hub.engine, "li.si") is None
    assert [r.reason for r in _audit(hub, "portal.sso_login")] == ["sso_unknown_user"]

    made = _hub(tmp_path / "create", idp, oidc_create_users=True)
    client = _client(made)
    journey = sign_in_via_idp(client, idp, "sub-li")
    assert journey.response.status_code == 303
    user = staff.get_staff(made.engine, "li.si")
    assert user is not None and user.department_code == "SCJ" and user.roles == frozenset({"publisher"})
    # an account made by single sign-on has no password that works
    assert staff.authenticate_staff(made.engine, "li.si", "") is None
    assert staff.authenticate_staff(made.engine, "li.si", sso.NO_PASSWORD) is None
    assert len(_audit(made, "portal.sso_created")) == 1


@pytest.mark.parametrize(
    ("login", "message", "reason"),
    [
        ("sub-wang", "未分配本平台角色", "sso_no_roles"),
        ("sub-zhao", "所在单位未接入本平台", "sso_unknown_department"),
        ("sub-qian", "所在单位未接入本平台", "sso_unknown_department"),  # no hub-wide from claims
    ],
)
def test_claims_that_give_no_account_are_refused(
    tmp_path: Path, idp: Idp, login: str, message: str, reason: str
) -> None:
    hub = _hub(tmp_path, idp, oidc_create_users=True)
    journey = sign_in_via_idp(_client(hub), idp, login)
    assert journey.response.status_code == 403 and message in journey.response.text
    assert staff.list_staff(hub.engine) == []
    assert [r.reason for r in _audit(hub, "portal.sso_login")] == [reason]


def test_maps_translate_idp_roles_and_departments(tmp_path: Path, idp: Idp) -> None:
    hub = _hub(
        tmp_path,
        idp,
        oidc_create_users=True,
        oidc_role_map={"sjj-shenpi": ["approver"], "sjj-fabu": ["publisher"]},
        oidc_department_map={"市场监管局": "SCJ", "大数据局": ""},
    )
    journey = sign_in_via_idp(_client(hub), idp, "sub-sun")
    assert journey.response.status_code == 303
    user = staff.get_staff(hub.engine, "sun.ba")
    assert user is not None and (user.department_code, user.roles) == ("SCJ", frozenset({"approver"}))
    # a hub-wide approver is not a thing the hub allows, whatever the IdP says
    sun = {"preferred_username": "sun.ba", "department": "市场监管局", "roles": ["sjj-shenpi"]}
    idp.set_claims("sub-sun", {**sun, "department": "大数据局"})
    try:
        again = sign_in_via_idp(_client(hub), idp, "sub-sun")
        assert again.response.status_code == 403 and "全市账号仅限管理员或审计员" in again.response.text
    finally:
        idp.set_claims("sub-sun", sun)


def test_roles_follow_the_idp_at_each_sign_in(tmp_path: Path, idp: Idp) -> None:
    hub = _hub(tmp_path, idp)
    staff.create_staff(hub.engine, "zhang.san", "SCJ", ["approver", "publisher"], PASSWORD)
    assert sign_in_via_idp(_client(hub), idp, "sub-zhang").response.status_code == 303
    user = staff.get_staff(hub.engine, "zhang.san")
    assert user is not None and user.roles == frozenset({"approver"})  # publisher was not in the claims
    idp.set_claims("sub-zhang", {**idp.accounts["sub-zhang"], "roles": ["publisher"]})
    try:
        client = _client(hub)
        assert sign_in_via_idp(client, idp, "sub-zhang").response.status_code == 303
        assert client.get("/portal/decisions").status_code == 403  # no longer an approver
        user = staff.get_staff(hub.engine, "zhang.san")
        assert user is not None and user.roles == frozenset({"publisher"})
    finally:
        idp.set_claims("sub-zhang", idp.accounts["sub-zhang"])


def test_an_account_linked_to_another_subject_is_never_taken_over(tmp_path: Path, idp: Idp) -> None:
    hub = _hub(tmp_path, idp)
    staff.create_staff(hub.engine, "scj_admin", "SCJ", ["admin"], PASSWORD)
    with hub.engine.begin() as conn:
        conn.execute(
            tables.staff.update()
            .where(tables.staff.c.username == "scj_admin")
            .values(sso_issuer=idp.issuer, sso_subject="sub-the-real-admin")
        )
    journey = sign_in_via_idp(_client(hub), idp, "sub-mallory")
    assert journey.response.status_code == 403 and "已与另一个统一身份认证账号绑定" in journey.response.text


def test_by_default_a_user_name_links_nothing_and_the_operator_links_accounts(
    tmp_path: Path, idp: Idp
) -> None:
    """An IdP user whose user-name claim equals a hub account's name does not get that account
    (preferred_username is neither unique nor stable, OIDC Core §5.7); the operator links it."""
    from typer.testing import CliRunner

    from sharehub.cli.main import app as cli
    from sharehub.settings import get_settings

    hub = _hub(tmp_path, idp, oidc_link_existing=False)  # the default setting
    staff.create_staff(hub.engine, "scj_admin", "SCJ", ["admin"], PASSWORD)
    mallory = sign_in_via_idp(_client(hub), idp, "sub-mallory")  # preferred_username: scj_admin
    assert mallory.response.status_code == 403 and "未开通本平台权限" in mallory.response.text
    assert sso.linked_issuer(hub.engine, "scj_admin") is None

    staff.create_staff(hub.engine, "zhang.san", "SCJ", ["approver"], PASSWORD)
    env = {"SHAREHUB_VAR_DIR": str(tmp_path / "var"), "SHAREHUB_OIDC_ISSUER": idp.issuer}
    get_settings.cache_clear()
    try:
        run = CliRunner().invoke
        out = run(cli, ["staff", "link-sso", "zhang.san", "--subject", "sub-zhang"], env=env)
        assert out.exit_code == 0, out.output
        taken = run(cli, ["staff", "link-sso", "scj_admin", "--subject", "sub-zhang"], env=env)
        assert taken.exit_code == 1 and "sso_subject_taken" in taken.output
    finally:
        get_settings.cache_clear()
    assert sign_in_via_idp(_client(hub), idp, "sub-zhang").response.status_code == 303
    out = CliRunner().invoke(cli, ["staff", "link-sso", "zhang.san", "--unlink"], env=env)
    get_settings.cache_clear()
    assert out.exit_code == 0 and sso.linked_issuer(hub.engine, "zhang.san") is None


def test_a_disabled_account_cannot_sign_in_through_the_idp(tmp_path: Path, idp: Idp) -> None:
    hub = _hub(tmp_path, idp)
    staff.create_staff(hub.engine, "zhang.san", "SCJ", ["approver"], PASSWORD)
    assert sign_in_via_idp(_client(hub), idp, "sub-zhang").response.status_code == 303
    staff.set_status(hub.engine, "zhang.san", "disabled")
    journey = sign_in_via_idp(_client(hub), idp, "sub-zhang")
    assert journey.response.status_code == 403 and "账号已停用" in journey.response.text


def test_the_callback_works_once_in_the_browser_that_started_it(tmp_path: Path, idp: Idp) -> None:
    hub = _hub(tmp_path, idp)
    staff.create_staff(hub.engine, "zhang.san", "SCJ", ["approver"], PASSWORD)
    victim = _client(hub)
    start = victim.get("/portal/sso/start", follow_redirects=False)
    with httpx.Client(follow_redirects=False, timeout=20) as browser:
        callback = through_idp(idp, browser, start.headers["location"], "sub-zhang")
    path = callback[len(HUB) :]
    code, state = query_of(callback)["code"], query_of(callback)["state"]

    # another browser (login CSRF, a leaked URL): refused, and the sign-in is spent
    stranger = _client(hub)
    r = stranger.get(path, follow_redirects=False)
    assert r.status_code == 400 and "sh_session" not in r.headers.get("set-cookie", "")
    for secret in (code, state):
        assert secret not in r.text
    # the right browser now finds the sign-in used up
    r = victim.get(path, follow_redirects=False)
    assert r.status_code == 400
    reasons = [x.reason for x in _audit(hub, "portal.sso_login")]
    assert reasons == ["sso_state_not_this_browser", "sso_state_unknown"]


def test_replayed_forged_and_mixed_up_callbacks_are_refused(tmp_path: Path, idp: Idp) -> None:
    hub = _hub(tmp_path, idp)
    staff.create_staff(hub.engine, "zhang.san", "SCJ", ["approver"], PASSWORD)
    client = _client(hub)
    journey = sign_in_via_idp(client, idp, "sub-zhang")
    assert journey.response.status_code == 303
    path = journey.callback_url[len(HUB) :]
    assert client.get(path, follow_redirects=False).status_code == 400  # replay

    # a made-up state, an error from the IdP, an iss of another IdP
    assert client.get("/portal/sso/callback?code=x&state=made-up", follow_redirects=False).status_code == 400
    start = client.get("/portal/sso/start", follow_redirects=False)
    state = query_of(start.headers["location"])["state"]
    r = client.get(f"/portal/sso/callback?error=access_denied&state={state}", follow_redirects=False)
    assert r.status_code == 400 and "未完成登录" in r.text
    start = client.get("/portal/sso/start", follow_redirects=False)
    with httpx.Client(follow_redirects=False, timeout=20) as browser:
        callback = through_idp(idp, browser, start.headers["location"], "sub-zhang")
    q = query_of(callback)
    r = client.get(
        f"/portal/sso/callback?code={q['code']}&state={q['state']}&iss=https://evil.example",
        follow_redirects=False,
    )
    assert r.status_code == 400
    reasons = [x.reason for x in _audit(hub, "portal.sso_login")]
    assert reasons == ["sso_state_unknown", "sso_state_unknown", "sso_idp_error", "sso_issuer_mismatch"]


def test_a_code_issued_to_another_client_is_refused(tmp_path: Path, idp: Idp) -> None:
    """A code the IdP gave another system cannot be redeemed by the hub (the IdP binds it)."""
    hub = _hub(tmp_path, idp)
    staff.create_staff(hub.engine, "zhang.san", "SCJ", ["approver"], PASSWORD)
    client = _client(hub)
    start = client.get("/portal/sso/start", follow_redirects=False)
    ours = query_of(start.headers["location"])
    other = httpx.URL(
        f"{idp.issuer}/auth",
        params={**ours, "client_id": "another-system"},
    )
    with httpx.Client(follow_redirects=False, timeout=20) as browser:
        callback = through_idp(idp, browser, str(other), "sub-zhang")
    r = client.get(callback[len(HUB) :], follow_redirects=False)
    assert r.status_code == 400
    assert [x.reason for x in _audit(hub, "portal.sso_login")] == ["sso_token_failed"]


def test_sign_out_ends_the_session_and_signs_out_at_the_idp(tmp_path: Path, idp: Idp) -> None:
    hub = _hub(tmp_path, idp)
    staff.create_staff(hub.engine, "zhang.san", "SCJ", ["approver"], PASSWORD)
    client = _client(hub)
    assert sign_in_via_idp(client, idp, "sub-zhang").response.status_code == 303
    token = csrf_of(client.get("/portal/").text)
    r = client.post("/portal/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    end = r.headers["location"]
    assert end.startswith(f"{idp.issuer}/session/end")
    assert query_of(end) == {"client_id": CLIENT_ID, "post_logout_redirect_uri": f"{HUB}/portal/"}
    assert client.get("/portal/decisions", follow_redirects=False).status_code == 303  # signed out here
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.portal_sessions)).scalar() == 0
    # the IdP's logout page brings the browser back to the portal
    with httpx.Client(follow_redirects=False, timeout=20) as browser:
        page = browser.get(end)
        assert page.status_code == 200
        form = re.search(r'action="([^"]+)"', page.text)
        xsrf = re.search(r'name="xsrf" value="([^"]+)"', page.text)
        assert form and xsrf
        back = browser.post(
            form.group(1) if form.group(1).startswith("http") else idp.issuer + form.group(1),
            data={"xsrf": xsrf.group(1), "logout": "yes"},
        )
        assert back.status_code in (302, 303) and back.headers["location"].startswith(f"{HUB}/portal/")


def test_password_sign_in_can_be_switched_off(tmp_path: Path, idp: Idp) -> None:
    hub = _hub(tmp_path, idp, portal_password_login=False)
    staff.create_staff(hub.engine, "zhang.san", "SCJ", ["approver"], PASSWORD)
    client = _client(hub)
    page = client.get("/portal/login").text
    assert 'name="password"' not in page and "/portal/sso/start" in page
    r = client.post(
        "/portal/login",
        data={"username": "zhang.san", "password": PASSWORD, "csrf_token": client.cookies["sharehub_csrf"]},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert sign_in_via_idp(client, idp, "sub-zhang").response.status_code == 303


def test_without_sso_configured_the_routes_do_not_exist(tmp_path: Path) -> None:
    hub = build_hub(tmp_path, portal=True)
    client = _client(hub)
    assert "/portal/sso/start" not in client.get("/portal/login").text
    assert client.get("/portal/sso/start", follow_redirects=False).status_code == 404
    assert client.get("/portal/sso/callback?code=a&state=b", follow_redirects=False).status_code == 404


def test_an_unreachable_idp_is_a_clear_error(tmp_path: Path) -> None:
    hub = build_hub(
        tmp_path, portal=True, oidc_issuer="http://127.0.0.1:9", oidc_client_id="x", oidc_timeout_seconds=2
    )
    r = _client(hub).get("/portal/sso/start", follow_redirects=False)
    assert r.status_code == 503 and "暂时无法连接统一身份认证平台" in r.text
