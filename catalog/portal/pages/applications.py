"""Apply (applicants: for other departments' data, on behalf of their own department's apps)
and decide (approvers of the owning department): the portal face of
:mod:`catalog.access.applications`, the same functions the API calls."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import Response

from catalog.access import app_registry, applications
from catalog.access.applications import Application, local_date
from catalog.clock import utc_now
from catalog.directory.grades import policy_of
from catalog.directory.model import Sensitivity
from catalog.errors import MESSAGES, HubError
from catalog.portal import i18n
from catalog.portal.pages.dataset import visible_dataset
from catalog.portal.web import NavItem, Page, PageDep, register_nav

router = APIRouter(prefix="/portal")

i18n.register(
    {
        "nav.applications": ("我的申请", "My applications"),
        "nav.decisions": ("审批", "Decisions"),
        "apply.title": ("申请使用：{name}", "Apply for: {name}"),
        "apply.app": ("使用数据的应用（本部门）", "The app that will use the data (your department's)"),
        "apply.no_apps": (
            "本部门还没有登记应用，请联系平台管理员。",
            "Your department has no app yet; ask the hub operator.",
        ),
        "apply.fields": ("申请的数据项", "Fields asked for"),
        "apply.clear": ("明文（不脱敏）", "in clear (unmasked)"),
        "apply.sensitive": ("敏感", "sensitive"),
        "apply.purpose": ("用途", "Purpose"),
        "apply.legal_basis": ("依据", "Legal basis"),
        "apply.until": ("使用期限至（可不填）", "Use until (optional)"),
        "apply.submit": ("提交申请", "Submit the application"),
        "apply.done": ("申请 {id} 已提交。", "Application {id} submitted."),
        "apps.title": ("本部门的申请与授权", "Your department's applications and grants"),
        "apps.applications": ("申请", "Applications"),
        "apps.grants": ("授权", "Grants"),
        "apps.narrowed": ("{at} 因数据分级提高而收窄", "narrowed on {at}: the dataset's grade was raised"),
        "apps.none": ("暂无。", "None yet."),
        "apps.withdraw": ("撤回", "Withdraw"),
        "col.id": ("编号", "No."),
        "col.app": ("应用", "App"),
        "col.dataset": ("数据资源", "Dataset"),
        "col.fields": ("数据项", "Fields"),
        "col.status": ("状态", "Status"),
        "col.submitted": ("提交时间", "Submitted"),
        "col.deadline": ("办理期限", "Deadline"),
        "col.decision": ("审批结果", "Decision"),
        "col.until": ("有效期至", "Valid until"),
        "col.rate": ("频率上限（次/分钟）", "Rate limit (per minute)"),
        "col.action": ("操作", "Action"),
        "status.pending": ("待审批", "pending"),
        "status.second_approval": ("待数据主管部门二次审批", "awaiting the data authority's second approval"),
        "decide.second": (
            "本部门已同意明文提供敏感字段；按分级管控策略，还须数据主管部门二次审批（双人审批）。",
            "The owner approved sensitive fields in clear; under the grade policy the data authority "
            "must approve it too.",
        ),
        "status.approved": ("已同意", "approved"),
        "status.refused": ("不同意", "refused"),
        "status.withdrawn": ("已撤回", "withdrawn"),
        "status.active": ("有效", "active"),
        "status.revoked": ("已撤销", "revoked"),
        "status.expired": ("已过期", "expired"),
        "deadline.left": ("还剩 {n} 个工作日", "{n} working days left"),
        "deadline.today": ("今天到期", "due today"),
        "deadline.overdue": ("已逾期 {n} 个工作日", "overdue by {n} working days"),
        "deadline.late": ("超期办结", "decided late"),
        "deadline.uncovered": (
            "期限所在年份的法定节假日尚未收录，期限可能不准确。",
            "This deadline's year has no holiday data yet: the deadline may be wrong.",
        ),
        "decide.title": ("待审批的申请", "Applications to decide"),
        "decide.overdue_count": ("{n} 件已逾期", "{n} overdue"),
        "decide.pending_none": ("没有待审批的申请。", "Nothing to decide."),
        "decide.decided": ("已办结", "Decided"),
        "decide.one": ("申请 {id}", "Application {id}"),
        "decide.department": ("申请部门", "Applying department"),
        "decide.clear_asked": ("申请明文的数据项", "Asked in clear"),
        "decide.approve": ("同意", "Approve"),
        "decide.refuse": ("不同意", "Refuse"),
        "decide.reason": ("理由（不同意时必填）", "Reason (required to refuse)"),
        "decide.valid_until": ("授权有效期至", "Grant valid until"),
        "decide.rate": ("频率上限（次/分钟）", "Rate limit (per minute)"),
        "decide.grants": ("本部门数据的有效授权", "Active grants on your department's data"),
        "decide.revoke": ("撤销授权", "Revoke"),
        "decide.revoke_reason": ("撤销理由", "Reason to revoke"),
        "decide.done": ("申请 {id} 已办结。", "Application {id} decided."),
        "decide.revoked": ("授权 {id} 已撤销。", "Grant {id} revoked."),
        "apps.withdrawn": ("申请 {id} 已撤回。", "Application {id} withdrawn."),
    }
)
register_nav(
    NavItem("nav.applications", "/portal/applications", roles=("applicant",), order=20),
    NavItem("nav.decisions", "/portal/decisions", roles=("approver",), order=30),
)


def error_text(page: Page, exc: HubError) -> str:
    """A domain error in the reader's language."""
    en, zh = MESSAGES.get(exc.code, (exc.code, exc.code))
    return (en if page.lang == "en" else zh).format(**exc.params)


def deadline_note(page: Page, a: Application, today: dt.date) -> str:
    """“还剩 3 个工作日” / “已逾期 2 个工作日” / “超期办结”, by the hub's working-day calendar."""
    cal = page.hub.calendar
    if a.status != "pending":
        return page.t("deadline.late") if a.late else ""
    if today > a.deadline:
        return page.t("deadline.overdue", n=max(1, cal.working_days_between(a.deadline, today)))
    left = cal.working_days_between(today, a.deadline)
    return page.t("deadline.left", n=left) if left else page.t("deadline.today")


def _today() -> dt.date:
    return local_date(utc_now())


# ---- apply --------------------------------------------------------------------------------


def _own_apps(page: Page) -> list[app_registry.App]:
    user = page.require("applicant")
    if user.department_code is None:
        return []
    return [a for a in app_registry.list_apps(page.hub.engine, user.department_code) if a.status == "active"]


@router.get("/apply/{code}")
def apply_form(page: PageDep, code: str) -> Response:
    apps = _own_apps(page)
    d = visible_dataset(page, code)
    page.audit("portal.apply_form", dataset_code=d.spec.code)
    return page.render("apply.html", d=d, apps=apps, error=None, form={}, sensitive=Sensitivity.SENSITIVE)


@router.post("/apply/{code}")
def apply(
    page: PageDep,
    code: str,
    app_id: Annotated[str, Form(max_length=64)],
    purpose: Annotated[str, Form(max_length=2000)] = "",
    legal_basis: Annotated[str, Form(max_length=2000)] = "",
    requested_until: Annotated[str, Form(max_length=10)] = "",
    fields: Annotated[list[str] | None, Form()] = None,
    clear_fields: Annotated[list[str] | None, Form()] = None,
) -> Response:
    apps = _own_apps(page)
    d = visible_dataset(page, code)
    page.audit("portal.apply", dataset_code=d.spec.code)
    form = {
        "app_id": app_id,
        "purpose": purpose,
        "legal_basis": legal_basis,
        "requested_until": requested_until,
        "fields": fields or [],
        "clear_fields": clear_fields or [],
    }
    if app_id not in {a.app_id for a in apps}:  # another department's app, or a made-up one
        page.require("admin")  # never true for an applicant: a 403 page, audited
    settings = page.hub.settings
    try:
        until = dt.date.fromisoformat(requested_until) if requested_until else None
        a = applications.submit(
            page.hub.engine,
            app_id,
            d.spec.code,
            fields=fields or [],
            clear_fields=clear_fields or [],
            purpose=purpose,
            legal_basis=legal_basis,
            requested_until=until,
            calendar=page.hub.calendar,
            deadline_days=settings.working_days_deadline,
            policy=policy_of(page.hub.settings),
            default_rate_limit=settings.default_rate_limit,
        )
    except ValueError:
        return page.render(
            "apply.html",
            400,
            d=d,
            apps=apps,
            form=form,
            sensitive=Sensitivity.SENSITIVE,
            error=error_text(page, HubError("bad_date", field="requested_until")),
        )
    except HubError as exc:
        _reason(page, exc.code)
        return page.render(
            "apply.html",
            400,
            d=d,
            apps=apps,
            form=form,
            sensitive=Sensitivity.SENSITIVE,
            error=error_text(page, exc),
        )
    page.audit("portal.apply", dataset_code=d.spec.code, row_count=1)
    return page.redirect(f"/portal/applications?done={a.id}")


def _reason(page: Page, code: str) -> None:
    call = getattr(page.request.state, "call", None)
    if call is not None:
        call.reason = code


@router.get("/applications")
def my_applications(page: PageDep, done: int | None = None, withdrawn: int | None = None) -> Response:
    apps = _own_apps(page)
    page.audit("portal.applications")
    today = _today()
    mine = {a.app_id: a for a in apps}
    rows = [
        x
        for app_id in mine
        for x in applications.list_applications(page.hub.engine, app_id=app_id, today=today)
    ]
    rows.sort(key=lambda a: a.submitted_at, reverse=True)
    grants = [g for app_id in mine for g in applications.list_grants(page.hub.engine, app_id=app_id)]
    return page.render(
        "applications.html",
        rows=rows,
        grants=grants,
        apps=mine,
        today=today,
        now=utc_now(),
        note=lambda a: deadline_note(page, a, today),
        done=done,
        withdrawn=withdrawn,
    )


@router.post("/applications/{application_id}/withdraw")
def withdraw(page: PageDep, application_id: int) -> Response:
    apps = {a.app_id for a in _own_apps(page)}
    a = applications.get_application(page.hub.engine, application_id)
    if a is None or a.app_id not in apps:
        raise HubError("application_not_found", id=application_id)
    page.audit("portal.withdraw", dataset_code=a.dataset_code)
    applications.withdraw(page.hub.engine, application_id, a.app_id)
    return page.redirect(f"/portal/applications?withdrawn={application_id}")


# ---- decide -------------------------------------------------------------------------------


def _decidable(page: Page, application_id: int) -> Application:
    """The application if this approver may decide it; another department's answers 404."""
    user = page.require("approver")
    a = applications.get_application(page.hub.engine, application_id)
    if a is None or not user.covers(a.department_code):
        raise HubError("application_not_found", id=application_id)
    return a


@router.get("/decisions")
def decisions(page: PageDep, done: int | None = None, revoked: int | None = None) -> Response:
    user = page.require("approver")
    page.audit("portal.decisions")
    today = _today()
    dept = user.department_code
    rows = applications.list_applications(page.hub.engine, department_code=dept, today=today)
    # the hub's data authority also gives the second approvals (双人审批) of clear fields
    open_here = (
        ("pending", "second_approval")
        if user.department_code is None and "admin" in user.roles
        else ("pending",)
    )
    pending = sorted(
        (a for a in rows if a.status in open_here), key=lambda a: (not a.overdue, a.deadline, a.id)
    )
    decided = [a for a in rows if a.status not in open_here][:50]
    grants = applications.list_grants(page.hub.engine, department_code=dept, active_only=True)
    return page.render(
        "decisions.html",
        pending=pending,
        decided=decided,
        grants=grants,
        overdue=sum(a.overdue for a in pending),
        note=lambda a: deadline_note(page, a, today),
        uncovered=page.hub.calendar.beyond_coverage,
        app_names=_app_names(page),
        done=done,
        revoked=revoked,
    )


def _app_names(page: Page) -> dict[str, str]:
    return {a.app_id: f"{a.name}（{a.department_code}）" for a in app_registry.list_apps(page.hub.engine)}


@router.get("/decisions/{application_id}")
def decision_form(page: PageDep, application_id: int) -> Response:
    a = _decidable(page, application_id)
    page.audit("portal.decision_form", dataset_code=a.dataset_code)
    return _decision_page(page, a, None)


def _decision_page(page: Page, a: Application, error: str | None, status: int = 200) -> Response:
    today = _today()
    app = app_registry.get_app(page.hub.engine, a.app_id)
    spec = page.hub.dataset(a.dataset_code).spec
    labels = {f.name: f.label for f in spec.fields}
    return page.render(
        "decision.html",
        status,
        a=a,
        app=app,
        labels=labels,
        note=deadline_note(page, a, today),
        uncovered=page.hub.calendar.beyond_coverage(a.deadline),
        error=error,
    )


@router.post("/decisions/{application_id}")
def decide(
    page: PageDep,
    application_id: int,
    decision: Annotated[str, Form(pattern="^(approve|refuse)$")],
    reason: Annotated[str, Form(max_length=2000)] = "",
    fields: Annotated[list[str] | None, Form()] = None,
    clear_fields: Annotated[list[str] | None, Form()] = None,
    valid_until: Annotated[str, Form(max_length=10)] = "",
    rate_limit: Annotated[str, Form(max_length=7)] = "",
) -> Response:
    a = _decidable(page, application_id)
    user = page.require("approver", department=a.department_code)
    page.audit("portal.decide", dataset_code=a.dataset_code)
    try:
        until = dt.date.fromisoformat(valid_until) if valid_until else None
        limit = int(rate_limit) if rate_limit else None
    except ValueError:
        return _decision_page(page, a, error_text(page, HubError("bad_rate_limit")), 400)
    try:
        out = applications.decide(
            page.hub.engine,
            application_id,
            user,
            approve=decision == "approve",
            reason=reason,
            fields=(fields or []) if decision == "approve" else None,
            clear_fields=(clear_fields or []) if decision == "approve" else None,
            valid_until=until,
            rate_limit=limit,
            policy=policy_of(page.hub.settings),
            default_rate_limit=page.hub.settings.default_rate_limit,
        )
    except HubError as exc:
        _reason(page, exc.code)
        return _decision_page(page, a, error_text(page, exc), 400)
    page.audit("portal.decide", dataset_code=a.dataset_code, row_count=1)
    return page.redirect(f"/portal/decisions?done={out.id}")


@router.post("/grants/{grant_id}/revoke")
def revoke(page: PageDep, grant_id: int, reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    user = page.require("approver")
    g = applications.get_grant(page.hub.engine, grant_id)
    owner = page.hub.dataset(g.dataset_code).department.code if g else ""
    if g is None or not user.covers(owner):
        raise HubError("grant_not_found", id=grant_id)
    page.audit("portal.revoke", dataset_code=g.dataset_code)
    applications.revoke(page.hub.engine, grant_id, by=user.username, reason=reason)
    return page.redirect(f"/portal/decisions?revoked={grant_id}")
