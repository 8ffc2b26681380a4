"""Publish a directory (publishers) and review it (the hub's data authority): 目录 审核 then 发布.

The publisher edits the department's directory file in the browser (or uploads one), checks it
— problems are shown beside the line they concern — previews the diff against what is
published, and submits it for review. A hub-wide admin approves it (the one publish path runs)
or returns it with a reason. Rules: :mod:`catalog.submissions`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, UploadFile
from fastapi.responses import Response

from catalog import submissions
from catalog.directory.grades import policy_of
from catalog.errors import HubError
from catalog.portal import i18n
from catalog.portal.pages.applications import error_text
from catalog.portal.web import NavItem, Page, PageDep, register_nav

router = APIRouter(prefix="/portal")

i18n.register(
    {
        "nav.publish": ("目录编制", "Publish directory"),
        "nav.review": ("目录审核", "Directory review"),
        "pub.title": ("编制本部门数据目录", "Your department's directory"),
        "pub.text": ("目录文件（YAML）", "Directory file (YAML)"),
        "pub.annotated": ("逐行标注的问题", "The file, with each problem beside its line"),
        "pub.upload": ("或上传目录文件", "Or upload a directory file"),
        "pub.check": ("检查", "Check"),
        "pub.submit": ("提交审核", "Submit for review"),
        "pub.ok": ("检查通过，可以提交审核。", "The file is valid; you can submit it."),
        "pub.problems": ("发现 {n} 处问题：", "{n} problems found:"),
        "pub.line": ("第 {n} 行", "line {n}"),
        "pub.preview": ("与已发布目录的差异", "Changes against the published directory"),
        "pub.action.new": ("新增", "new"),
        "pub.action.changed": ("变更", "changed"),
        "pub.action.unchanged": ("无变化", "unchanged"),
        "pub.action.absent": ("文件中没有（保持已发布状态）", "not in the file (stays as published)"),
        "pub.submitted": ("已提交审核（编号 {id}）。", "Submitted for review (no. {id})."),
        "pub.history": ("提交记录", "Submissions"),
        "pub.withdraw": ("撤回", "Withdraw"),
        "sub.status.pending": ("待审核", "pending"),
        "sub.status.publishing": ("发布中", "publishing"),
        "sub.status.approved": ("已发布", "approved"),
        "sub.status.returned": ("已退回", "returned"),
        "sub.status.withdrawn": ("已撤回", "withdrawn"),
        "rev.title": ("目录审核", "Directory review"),
        "rev.one": ("目录提交 {id}：{dept}", "Submission {id}: {dept}"),
        "rev.approve": ("审核通过并发布", "Approve and publish"),
        "rev.return": ("退回", "Return"),
        "rev.reason": ("退回理由", "Reason"),
        "rev.none": ("没有待审核的目录。", "Nothing to review."),
        "rev.approved": ("目录提交 {id} 已审核通过并发布。", "Submission {id} approved and published."),
        "rev.returned": ("目录提交 {id} 已退回。", "Submission {id} returned."),
        "rev.file": ("提交的目录文件", "The file as submitted"),
        "col.department": ("部门", "Department"),
        "col.file": ("文件", "File"),
        "col.by": ("提交人", "Submitted by"),
        "col.reviewer": ("审核人", "Reviewer"),
    }
)
register_nav(
    NavItem("nav.publish", "/portal/publish", roles=("publisher",), order=40),
    NavItem("nav.review", "/portal/review", roles=("admin",), order=45),
)


def _department(page: Page) -> str:
    user = page.require("publisher")
    if user.department_code is None:  # a hub-wide admin edits no directory of its own
        page.refuse()
    return str(user.department_code)


def _editor(
    page: Page,
    dept: str,
    text: str,
    *,
    checked: bool,
    status: int = 200,
    error: str | None = None,
    done: int | None = None,
) -> Response:
    policy = policy_of(page.hub.settings)
    result = submissions.check_text(text, source_name="portal", policy=policy) if checked else None
    diffs = submissions.preview(page.hub.engine, result.directory) if result and result.directory else []
    by_line: dict[int, list[str]] = {}
    for p in result.problems if result else []:
        by_line.setdefault(p.line or 0, []).append(f"{p.field}: {p.message}" if p.field else p.message)
    return page.render(
        "publish.html",
        status,
        text=text,
        lines=text.splitlines(),
        result=result,
        by_line=by_line,
        diffs=diffs,
        history=submissions.list_submissions(page.hub.engine, department_code=dept, limit=20),
        error=error,
        done=done,
    )


@router.get("/publish")
def editor(page: PageDep, done: int | None = None) -> Response:
    dept = _department(page)
    page.audit("portal.publish_form")
    return _editor(page, dept, submissions.published_text(page.hub.engine, dept), checked=False, done=done)


@router.post("/publish")
async def check_or_submit(
    page: PageDep,
    action: Annotated[str, Form(pattern="^(check|submit)$")],
    text: Annotated[str, Form(max_length=submissions.MAX_TEXT)] = "",
    upload: UploadFile | None = None,
) -> Response:
    dept = _department(page)
    page.audit("portal.publish_" + action)
    if upload is not None and upload.filename:
        raw = await upload.read(submissions.MAX_TEXT * 4 + 1)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            return _editor(
                page, dept, "", checked=False, status=400, error=page.t("pub.problems", n=1) + " UTF-8"
            )
    text = text.replace("\r\n", "\n")
    if action == "check":
        return _editor(page, dept, text, checked=True)
    user = page.require("publisher", department=dept)
    try:
        s = submissions.submit(
            page.hub.engine,
            department_code=dept,
            content=text,
            source_name="portal",
            submitted_by=user.username,
        )
    except HubError as exc:
        call = getattr(page.request.state, "call", None)
        if call is not None:
            call.reason = exc.code
        return _editor(page, dept, text, checked=True, status=400, error=error_text(page, exc))
    page.audit("portal.publish_submit", row_count=1)
    return page.redirect(f"/portal/publish?done={s.id}")


@router.post("/publish/{submission_id}/withdraw")
def withdraw(page: PageDep, submission_id: int) -> Response:
    user = page.require("publisher")
    page.audit("portal.publish_withdraw")
    submissions.withdraw(page.hub.engine, submission_id, by=user)
    return page.redirect("/portal/publish")


# ---- review -------------------------------------------------------------------------------


def _reviewer(page: Page) -> None:
    user = page.require("admin")
    if user.department_code is not None:  # the hub's data authority reviews, not a department
        page.refuse()


@router.get("/review")
def review_list(page: PageDep, approved: int | None = None, returned: int | None = None) -> Response:
    _reviewer(page)
    page.audit("portal.review")
    return page.render(
        "review.html",
        pending=submissions.list_submissions(page.hub.engine, status="pending"),
        recent=[s for s in submissions.list_submissions(page.hub.engine, limit=30) if s.status != "pending"],
        approved=approved,
        returned=returned,
    )


@router.get("/review/{submission_id}")
def review_one(page: PageDep, submission_id: int) -> Response:
    _reviewer(page)
    s = submissions.get_submission(page.hub.engine, submission_id)
    if s is None:
        raise HubError("submission_not_found", id=submission_id)
    page.audit("portal.review_one")
    return _review_page(page, s, None)


def _review_page(page: Page, s: submissions.Submission, error: str | None, status: int = 200) -> Response:
    checked = submissions.check_text(
        s.content, source_name=s.source_name, policy=policy_of(page.hub.settings)
    )
    diffs = submissions.preview(page.hub.engine, checked.directory) if checked.directory else []
    return page.render("review_one.html", status, s=s, diffs=diffs, problems=checked.problems, error=error)


@router.post("/review/{submission_id}")
def decide(
    page: PageDep,
    submission_id: int,
    decision: Annotated[str, Form(pattern="^(approve|return)$")],
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    _reviewer(page)
    user = page.require("admin")
    s = submissions.get_submission(page.hub.engine, submission_id)
    if s is None:
        raise HubError("submission_not_found", id=submission_id)
    page.audit("portal.review_" + decision)
    try:
        if decision == "approve":
            submissions.approve(page.hub.engine, submission_id, by=user, policy=policy_of(page.hub.settings))
        else:
            submissions.return_submission(page.hub.engine, submission_id, by=user, reason=reason)
    except HubError as exc:
        call = getattr(page.request.state, "call", None)
        if call is not None:
            call.reason = exc.code
        return _review_page(page, s, error_text(page, exc), 400 if exc.code != "own_submission" else 403)
    page.audit("portal.review_" + decision, row_count=1)
    key = "approved" if decision == "approve" else "returned"
    return page.redirect(f"/portal/review?{key}={submission_id}")
