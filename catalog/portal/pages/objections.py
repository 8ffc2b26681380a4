"""Data objections (数据异议) in the portal: staff raise them, the providing department's
publishers answer them; both see the answer. The rules are :mod:`catalog.access.objections`."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Form, Query
from fastapi.responses import Response

from catalog.access import objections
from catalog.access.applications import local_date
from catalog.clock import utc_now
from catalog.errors import HubError
from catalog.portal import i18n
from catalog.portal.pages.applications import error_text
from catalog.portal.pages.dataset import visible_dataset
from catalog.portal.web import NavItem, Page, PageDep, register_nav

router = APIRouter(prefix="/portal")

i18n.register(
    {
        "nav.objections": ("数据异议", "Objections"),
        "obj.title": ("数据异议", "Data objections"),
        "obj.to_answer": ("待本部门答复", "To answer (your department's data)"),
        "obj.raised": ("本部门提出的", "Raised by your department"),
        "obj.others": ("全部异议", "All objections"),
        "obj.none": ("暂无。", "None."),
        "obj.new": ("提出数据异议", "Raise a data objection"),
        "obj.new_for": ("对「{name}」提出数据异议", "Object to data in {name}"),
        "obj.record_key": ("记录主键", "Record key"),
        "obj.field": ("有误的数据项（可不选，表示整条记录）", "Wrong field (none: the whole record)"),
        "obj.whole_record": ("整条记录", "the whole record"),
        "obj.reason": ("异议理由", "Why it is wrong"),
        "obj.evidence": ("佐证材料说明（可不填）", "Evidence (optional)"),
        "obj.submit": ("提交异议", "Submit"),
        "obj.raised_ok": (
            "异议 {id} 已提交，提供部门将在答复期限内答复。",
            "Objection {id} raised; the provider answers by its due date.",
        ),
        "obj.answer": ("答复", "Answer"),
        "obj.answer_status": ("核实结果", "Outcome"),
        "obj.answer_text": ("答复说明（“已在源头更正”时可不填）", "Answer (optional when corrected)"),
        "obj.answered_ok": ("异议 {id} 已答复。", "Objection {id} answered."),
        "obj.status.open": ("待答复", "open"),
        "obj.status.corrected": ("已在源头更正", "corrected at source"),
        "obj.status.confirmed": ("经核实数据无误", "confirmed correct"),
        "obj.status.rejected": ("不予采纳", "rejected"),
        "obj.due": ("答复期限", "Due"),
        "obj.overdue": ("已逾期", "overdue"),
        "obj.late": ("超期答复", "answered late"),
        "obj.by": ("提出方", "Raised by"),
        "obj.one": ("异议 {id}", "Objection {id}"),
        "obj.raise_link": ("对本数据提出异议", "Object to this data"),
    }
)
register_nav(
    NavItem(
        "nav.objections",
        "/portal/objections",
        roles=("publisher", "applicant", "approver", "auditor"),
        order=50,
    )
)


def _label(page: Page, o: objections.Objection) -> str:
    return page.t("obj.status." + o.status)


@router.get("/objections")
def objections_page(page: PageDep, raised: int | None = None, answered: int | None = None) -> Response:
    user = page.require()
    page.audit("portal.objections")
    today = local_date(utc_now())
    items = objections.list_objections(page.hub.engine, involving=user.department_code, today=today)
    to_answer = [o for o in items if user.covers(o.department_code)]
    to_answer.sort(key=lambda o: (o.status != "open", not o.overdue, o.due_date))
    mine = [o for o in items if not user.covers(o.department_code)]  # raised by the department
    return page.render(
        "objections.html",
        to_answer=to_answer,
        mine=mine,
        can_answer=user.has("publisher"),
        label=lambda o: _label(page, o),
        key_text=lambda o: ", ".join(f"{k}={v}" for k, v in json.loads(o.record_key).items()),
        raised=raised,
        answered=answered,
    )


@router.get("/objections/new")
def new_objection(page: PageDep, dataset: Annotated[str, Query(max_length=64)]) -> Response:
    page.require()
    d = visible_dataset(page, dataset)
    page.audit("portal.objection_form", dataset_code=d.spec.code)
    return page.render("objection_new.html", d=d, form={}, error=None)


@router.post("/objections/new")
async def raise_objection(page: PageDep, dataset: Annotated[str, Query(max_length=64)]) -> Response:
    user = page.require()
    d = visible_dataset(page, dataset)
    page.audit("portal.objection_raise", dataset_code=d.spec.code)
    form = await page.request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    key = {name: values.get(f"key_{name}", "").strip() for name in d.spec.primary_key}
    field = values.get("field") or None
    try:
        o = objections.raise_objection(
            page.hub.engine,
            page.hub.calendar,
            dataset_code=d.spec.code,
            record_key=key,
            field=field,
            reason=values.get("reason", ""),
            evidence=values.get("evidence"),
            raised_by_kind="staff",
            raised_by=user.username,
            raised_department=user.department_code,
            answer_days=page.hub.settings.objection_answer_working_days,
        )
    except HubError as exc:
        call = getattr(page.request.state, "call", None)
        if call is not None:
            call.reason = exc.code
        return page.render("objection_new.html", 400, d=d, form=values, error=error_text(page, exc))
    page.audit("portal.objection_raise", dataset_code=d.spec.code, row_count=1)
    return page.redirect(f"/portal/objections?raised={o.id}")


@router.post("/objections/{objection_id}/answer")
def answer(
    page: PageDep,
    objection_id: int,
    status: Annotated[str, Form(max_length=16)],
    answer: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    user = page.require("publisher")
    o = objections.get_objection(page.hub.engine, objection_id)
    if o is None or not user.covers(o.department_code):
        raise HubError("objection_not_found", id=objection_id)
    page.audit("portal.objection_answer", dataset_code=o.dataset_code)
    objections.answer_objection(page.hub.engine, objection_id, status=status, answer=answer, by=user)
    page.audit("portal.objection_answer", dataset_code=o.dataset_code, row_count=1)
    return page.redirect(f"/portal/objections?answered={objection_id}")
