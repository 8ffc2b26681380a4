"""Bulk sharing (批量共享): a department's applicants issue and revoke the Delta Sharing recipient
profiles of their own apps (docs/exchange.md). The profile's token is shown once, on the page
that issues it, and stored only as its digest."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import Response

from catalog.access import app_registry
from catalog.errors import HubError
from catalog.portal import i18n
from catalog.portal.web import NavItem, Page, PageDep, register_nav
from catalog.sharing import files as sharing
from catalog.sharing import recipients

router = APIRouter(prefix="/portal")

i18n.register(
    {
        "nav.sharing": ("批量共享", "Bulk sharing"),
        "sharing.title": ("批量共享（Delta Sharing）", "Bulk sharing (Delta Sharing)"),
        "sharing.intro": (
            "本部门应用可用接收方配置文件，通过开放的 Delta Sharing 协议"
            "整表读取已获授权、按文件共享的信息资源（只含授权字段，敏感字段按授权脱敏）。配置文件相当于密码，只在签发时显示一次。",
            "Your department's apps read whole granted tables shared by file over the open Delta Sharing "
            "protocol with a recipient profile (granted fields only, masked as granted). A profile is like "
            "a password: it is shown once, when issued.",
        ),
        "sharing.tables": ("可读取的表", "Tables it may read"),
        "sharing.none": ("暂无。", "None."),
        "sharing.issue": ("签发配置文件", "Issue a profile"),
        "sharing.app": ("应用", "App"),
        "sharing.days": ("有效天数", "Valid for (days)"),
        "sharing.label": ("用途", "What it is for"),
        "sharing.profiles": ("已签发的配置文件", "Profiles issued"),
        "sharing.expires": ("有效期至", "Expires"),
        "sharing.revoked": ("已撤销", "Revoked"),
        "sharing.revoke": ("撤销", "Revoke"),
        "sharing.issued": (
            "配置文件已签发。请将下列内容保存为 .share 文件交给使用方；离开本页后无法再次查看。",
            "The profile is issued. Save the text below as a .share file for the consumer; it cannot be "
            "shown again.",
        ),
        "sharing.read_with": ("读取方式", "Read it with"),
    }
)
register_nav(NavItem("nav.sharing", "/portal/sharing", roles=("applicant",), order=35))


def _apps(page: Page) -> list[app_registry.App]:
    user = page.require("applicant")
    if user.department_code is None:
        return [a for a in app_registry.list_apps(page.hub.engine) if a.status == "active"]
    return [a for a in app_registry.list_apps(page.hub.engine, user.department_code) if a.status == "active"]


def _render(page: Page, status: int = 200, *, issued: dict[str, object] | None = None) -> Response:
    apps = _apps(page)
    ids = {a.app_id for a in apps}
    profiles = [r for r in recipients.list_recipients(page.hub.engine) if r.app_id in ids]
    tables = {a.app_id: sharing.shared_tables(page.hub.engine, a.app_id, page.hub.grade_policy) for a in apps}
    response = page.render(
        "sharing.html",
        status,
        apps=apps,
        profiles=profiles,
        tables=tables,
        issued=json.dumps(issued, ensure_ascii=False, indent=2) if issued else None,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/sharing")
def sharing_page(page: PageDep) -> Response:
    page.audit("portal.sharing")
    return _render(page)


@router.post("/sharing/profiles")
def issue_profile(
    page: PageDep,
    app_id: Annotated[str, Form(max_length=64)],
    days: Annotated[int, Form(ge=1, le=recipients.MAX_DAYS)] = 90,
    label: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    page.audit("portal.sharing_issue")
    if app_id not in {a.app_id for a in _apps(page)}:
        page.refuse()
    user = page.user
    assert user is not None
    engine = page.hub.engine
    token, rec = recipients.issue(engine, app_id, days=days, label=label or "profile", by=user.username)
    base = page.settings.portal_public_url or str(page.request.base_url)
    doc = recipients.profile(f"{base.rstrip('/')}/api/v1/delta-sharing", token, rec.expires_at)
    return _render(page, 201, issued=doc)


@router.post("/sharing/profiles/{recipient_id}/revoke")
def revoke_profile(page: PageDep, recipient_id: int) -> Response:
    page.audit("portal.sharing_revoke")
    ids = {a.app_id for a in _apps(page)}
    found = [r for r in recipients.list_recipients(page.hub.engine) if r.id == recipient_id]
    if not found or found[0].app_id not in ids:
        raise HubError("recipient_not_found", id=recipient_id)
    user = page.user
    assert user is not None
    recipients.revoke(page.hub.engine, recipient_id, by=user.username)
    return page.redirect("/portal/sharing")
