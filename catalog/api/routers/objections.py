"""Data objections (数据异议): raise (apps and staff), list, read, answer (the provider)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from catalog.access import objections
from catalog.access.gate import Principal
from catalog.api.context import AnyPrincipal, CallDep, HubDep, StaffPrincipal
from catalog.api.errors_doc import errors
from catalog.api.schemas.objections import AnswerIn, ObjectionIn, ObjectionList, ObjectionOut
from catalog.errors import HubError

router = APIRouter(prefix="/api/v1", tags=["objections"])

Id = Annotated[int, Path(ge=1, le=2_147_483_647)]


def _staff(hub: Any, principal: Principal) -> Any:
    from catalog.access import staff

    user = staff.get_staff(hub.engine, principal.username or "")
    if user is None:
        raise HubError("staff_not_found", username=principal.username or "")
    return user


def _visible(hub: Any, principal: Principal, o: objections.Objection) -> bool:
    if principal.kind == "app":
        return objections.visible_to_app(o, principal.app_id or "")
    return objections.visible_to_staff(o, _staff(hub, principal))


@router.post(
    "/objections",
    response_model=ObjectionOut,
    status_code=201,
    responses=errors(400, 401, 403, 404),
    summary="Raise a data objection on a served record or field",
)
def raise_objection(body: ObjectionIn, hub: HubDep, call: CallDep, principal: AnyPrincipal) -> dict[str, Any]:
    """An app may object only to a dataset it holds an active grant for, and only to fields that
    grant releases; staff of any department may object. The providing department answers
    within ``objection_answer_working_days`` working days."""
    call.action = "objections.raise"
    call.dataset_code = body.dataset
    kind: Literal["app", "staff"] = "app" if principal.kind == "app" else "staff"
    who = principal.app_id if kind == "app" else principal.username
    dept = principal.department_code
    if kind == "app":
        from catalog.access import app_registry

        app = app_registry.get_app(hub.engine, principal.app_id or "")
        dept = app.department_code if app else None
    o = objections.raise_objection(
        hub.engine,
        hub.calendar,
        dataset_code=body.dataset,
        record_key=body.record_key,
        field=body.field,
        reason=body.reason,
        evidence=body.evidence,
        raised_by_kind=kind,
        raised_by=who or "",
        raised_department=dept,
        answer_days=hub.settings.objection_answer_working_days,
    )
    call.row_count = 1
    return o.to_json()


@router.get(
    "/objections",
    response_model=ObjectionList,
    responses=errors(400, 401),
    summary="Data objections: an app's own; staff: on their department's data and raised by it",
)
def list_objections(
    hub: HubDep,
    call: CallDep,
    principal: AnyPrincipal,
    status: Annotated[Literal["open", "corrected", "confirmed", "rejected"] | None, Query()] = None,
    dataset: Annotated[str | None, Query(max_length=64)] = None,
    overdue: Annotated[bool | None, Query()] = None,
) -> dict[str, Any]:
    call.action = "objections.list"
    call.dataset_code = dataset
    if principal.kind == "app":
        items = objections.list_objections(
            hub.engine, raised_by=principal.app_id, dataset_code=dataset, status=status, overdue=overdue
        )
        items = [o for o in items if o.raised_by_kind == "app"]
    else:
        user = _staff(hub, principal)
        items = objections.list_objections(
            hub.engine, involving=user.department_code, dataset_code=dataset, status=status, overdue=overdue
        )
    call.row_count = len(items)
    return {"items": [o.to_json() for o in items], "count": len(items)}


@router.get(
    "/objections/{objection_id}",
    response_model=ObjectionOut,
    responses=errors(401, 404),
    summary="One data objection and its answer",
)
def get_objection(objection_id: Id, hub: HubDep, call: CallDep, principal: AnyPrincipal) -> dict[str, Any]:
    call.action = "objections.get"
    o = objections.get_objection(hub.engine, objection_id)
    if o is None or not _visible(hub, principal, o):
        raise HubError("objection_not_found", id=objection_id)
    call.dataset_code = o.dataset_code
    call.row_count = 1
    return o.to_json()


@router.post(
    "/objections/{objection_id}/answer",
    response_model=ObjectionOut,
    responses=errors(400, 401, 403, 404, 409),
    summary="Answer a data objection (a publisher of the providing department)",
)
def answer(
    objection_id: Id, body: AnswerIn, hub: HubDep, call: CallDep, principal: StaffPrincipal
) -> dict[str, Any]:
    call.action = "objections.answer"
    user = _staff(hub, principal)
    o = objections.answer_objection(hub.engine, objection_id, status=body.status, answer=body.answer, by=user)
    call.dataset_code = o.dataset_code
    call.row_count = 1
    return o.to_json()
