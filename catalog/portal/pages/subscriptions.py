"""Subscriptions (订阅): where each delivery into a consumer's database stands, for both sides —
the subscribing app's department and the department that owns the data (hub-wide staff see
all). A failed or stopped delivery shows its reason to both. The subscribing department's
applicants and hub-wide admins can end a subscription; creating one stays with the hub's
operator (``sharehub subscriptions create``), who configures the target's connection ref."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import Response

from catalog.access import app_registry
from catalog.errors import HubError
from catalog.portal import i18n
from catalog.portal.web import NavItem, Page, PageDep, register_nav
from catalog.sharing import subscriptions

router = APIRouter(prefix="/portal")

i18n.register(
    {
        "nav.subscriptions": ("订阅", "Subscriptions"),
        "subs.title": (
            "订阅（数据推送到使用方数据库）",
            "Subscriptions (delivery into consumers' databases)",
        ),
        "subs.intro": (
            "订阅把已授权、按文件共享的信息资源推送到使用方自己的数据库（前置库）：每次发布新数据后，"
            "只推送变化的行，字段和脱敏与授权一致。授权被撤销或到期后推送停止，并在此说明原因。",
            "A subscription delivers a granted dataset shared by file into the consumer's own database: "
            "after each publication only the rows that changed, with the granted fields masked as "
            "granted. When the grant is revoked or expires, delivery stops and says why here.",
        ),
        "subs.none": ("暂无订阅。", "No subscriptions."),
        "subs.dataset": ("信息资源", "Dataset"),
        "subs.app": ("订阅应用", "Subscribing app"),
        "subs.target": ("目标表", "Target table"),
        "subs.mode": ("方式", "Mode"),
        "subs.mode.mirror": ("镜像", "mirror"),
        "subs.mode.append": ("追加变更", "append"),
        "subs.status": ("状态", "Status"),
        "subs.status.active": ("生效", "active"),
        "subs.status.ended": ("已终止", "ended"),
        "subs.delivered": ("最近推送", "Last delivered"),
        "subs.problem": ("最近问题", "Last problem"),
        "subs.history": ("推送记录", "Deliveries"),
        "subs.attempt": ("结果", "Result"),
        "subs.started": ("开始", "Started"),
        "subs.snapshots": ("快照", "Snapshots"),
        "subs.inserted": ("新增", "Inserted"),
        "subs.updated": ("更新", "Updated"),
        "subs.deleted": ("删除", "Deleted"),
        "subs.run": ("运行", "Run"),
        "subs.error": ("原因", "Reason"),
        "subs.end": ("终止订阅", "End the subscription"),
        "subs.reason": ("终止原因", "Why it ends"),
        "subs.ended": ("订阅已于 {at} 终止：{reason}", "The subscription ended at {at}: {reason}"),
        "subs.delivery.success": ("成功", "delivered"),
        "subs.delivery.current": ("无变化", "nothing new"),
        "subs.delivery.failed": ("失败（将重试）", "failed (retried)"),
        "subs.delivery.stopped": ("已停止", "stopped"),
        "subs.delivery.running": ("进行中", "running"),
        "subs.delivery.interrupted": ("中断", "interrupted"),
        "subs.delivery.recovered": ("已补记", "recorded after a crash"),
    }
)
register_nav(
    NavItem(
        "nav.subscriptions", "/portal/subscriptions", roles=("applicant", "approver", "auditor"), order=36
    )
)


def _visible(page: Page) -> list[subscriptions.Subscription]:
    user = page.require()
    engine = page.hub.engine
    return [
        s
        for s in subscriptions.list_subscriptions(engine)
        if subscriptions.visible(engine, s, app_id=None, department_code=user.department_code)
    ]


def _one(page: Page, subscription_id: int) -> subscriptions.Subscription:
    found = [s for s in _visible(page) if s.id == subscription_id]
    if not found:
        raise HubError("subscription_not_found", id=subscription_id)  # the same whether absent or not yours
    return found[0]


def _may_end(page: Page, sub: subscriptions.Subscription) -> bool:
    user = page.user
    if user is None or sub.status != "active":
        return False
    if user.department_code is None:
        return "admin" in user.roles
    app = app_registry.get_app(page.hub.engine, sub.app_id)
    return user.has("applicant") and app is not None and app.department_code == user.department_code


@router.get("/subscriptions")
def subscriptions_page(page: PageDep) -> Response:
    page.audit("portal.subscriptions")
    subs = _visible(page)
    apps = {a.app_id: a.name for a in app_registry.list_apps(page.hub.engine)}
    return page.render("subscriptions.html", subs=subs, apps=apps)


@router.get("/subscriptions/{subscription_id}")
def subscription_page(page: PageDep, subscription_id: int) -> Response:
    sub = _one(page, subscription_id)
    page.audit("portal.subscription", dataset_code=sub.dataset_code)
    history = subscriptions.history(page.hub.engine, sub.id)
    app = app_registry.get_app(page.hub.engine, sub.app_id)
    ended = subscriptions.ended_at(page.hub.engine, sub.id)
    return page.render(
        "subscription.html",
        sub=sub,
        app_name=app.name if app else sub.app_id,
        history=history[:200],
        may_end=_may_end(page, sub),
        ended=ended,
    )


@router.post("/subscriptions/{subscription_id}/end")
def end_subscription(
    page: PageDep, subscription_id: int, reason: Annotated[str, Form(min_length=1, max_length=500)]
) -> Response:
    page.audit("portal.subscription_end")
    sub = _one(page, subscription_id)
    if not _may_end(page, sub):
        page.refuse()
    user = page.user
    assert user is not None
    subscriptions.end(page.hub.engine, sub.id, by=user.username, reason=reason)
    return page.redirect(f"/portal/subscriptions/{sub.id}")
