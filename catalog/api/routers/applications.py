"""Applications (共享申请) and grants (授权): apply, list, decide, withdraw, revoke."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from catalog.access import applications
from catalog.access.gate import Principal
from catalog.api.context import AnyPrincipal, AppPrincipal, CallDep, HubDep, StaffPrincipal
from catalog.api.errors_doc import errors
from catalog.api.schemas.applications import (
    ApplicationIn,
    ApplicationList,
    ApplicationOut,
    DecisionIn,
    GrantList,
    GrantOut,
    RevokeIn,
)
from catalog.directory.grades import policy_of
from catalog.errors import HubError

router = APIRouter(prefix="/api/v1", tags=["applications"])

Id = Annotated[int, Path(ge=1, le=2_147_483_647)]  # the ids are 32-bit integers in every database


def _own_or_covered(principal: Principal, app_id: str, department_code: str) -> bool:
    if principal.kind == "app":
        return principal.app_id == app_id
    return principal.covers(department_code)


def _application(hub: Any, principal: Principal, application_id: int) -> applications.Application:
    a = applications.get_application(hub.engine, application_id)
    if a is None or not _own_or_covered(principal, a.app_id, a.department_code):
        raise HubError("application_not_found", id=application_id)
    return a


@router.post(
    "/applications",
    response_model=ApplicationOut,
    status_code=201,
    responses=errors(400, 401, 403, 404, 409),
    summary="Apply for a dataset (apps)",
)
def create_application(
    body: ApplicationIn, hub: HubDep, call: CallDep, principal: AppPrincipal
) -> dict[str, Any]:
    """Unconditional data without clear-text fields is granted at once (and still recorded);
    conditional data, or any sensitive field asked in clear, waits for the owning department,
    which has ``working_days_deadline`` working days to decide."""
    call.action = "applications.create"
    call.dataset_code = body.dataset
    assert principal.app_id is not None
    s = hub.settings
    a = applications.submit(
        hub.engine,
        principal.app_id,
        body.dataset,
        fields=body.fields,
        clear_fields=list(body.clear_fields),
        purpose=body.purpose,
        legal_basis=body.legal_basis,
        requested_until=body.requested_until,
        calendar=hub.calendar,
        deadline_days=s.working_days_deadline,
        policy=policy_of(hub.settings),
        default_rate_limit=s.default_rate_limit,
    )
    call.row_count = 1
    return a.to_json()


@router.get(
    "/applications",
    response_model=ApplicationList,
    responses=errors(401, 403),
    summary="Applications: an app's own, or those a department must decide",
)
def list_applications(
    hub: HubDep,
    call: CallDep,
    principal: AnyPrincipal,
    status: Annotated[Literal["pending", "approved", "refused", "withdrawn"] | None, Query()] = None,
    overdue: Annotated[bool, Query(description="only pending applications past their deadline")] = False,
) -> dict[str, Any]:
    call.action = "applications.list"
    if principal.kind == "app":
        items = applications.list_applications(
            hub.engine, app_id=principal.app_id, status=status, overdue_only=overdue
        )
    else:
        items = applications.list_applications(
            hub.engine, department_code=principal.department_code, status=status, overdue_only=overdue
        )
    call.row_count = len(items)
    return {"items": [a.to_json() for a in items], "count": len(items)}


@router.get(
    "/applications/{application_id}",
    response_model=ApplicationOut,
    responses=errors(401, 403, 404),
    summary="One application",
)
def get_application(
    application_id: Id, hub: HubDep, call: CallDep, principal: AnyPrincipal
) -> dict[str, Any]:
    call.action = "applications.get"
    a = _application(hub, principal, application_id)
    call.dataset_code = a.dataset_code
    call.row_count = 1
    return a.to_json()


@router.post(
    "/applications/{application_id}/decision",
    response_model=ApplicationOut,
    responses=errors(400, 401, 403, 404, 409),
    summary="Approve or refuse an application (the owning department's approver)",
)
def decide(
    application_id: Id, body: DecisionIn, hub: HubDep, call: CallDep, principal: StaffPrincipal
) -> dict[str, Any]:
    """Approval may narrow the fields, the clear-text fields and the expiry, and set the rate
    limit; a refusal needs a reason."""
    call.action = "applications.decide"
    a = _application(hub, principal, application_id)
    call.dataset_code = a.dataset_code
    user = _staff_user(hub, principal)
    decided = applications.decide(
        hub.engine,
        application_id,
        user,
        approve=body.decision == "approve",
        reason=body.reason,
        fields=body.fields,
        clear_fields=body.clear_fields,
        valid_until=body.valid_until,
        rate_limit=body.rate_limit,
        policy=policy_of(hub.settings),
        default_rate_limit=hub.settings.default_rate_limit,
    )
    call.row_count = 1
    return decided.to_json()


@router.post(
    "/applications/{application_id}/withdraw",
    response_model=ApplicationOut,
    responses=errors(401, 403, 404, 409),
    summary="Withdraw a pending application (the app)",
)
def withdraw(application_id: Id, hub: HubDep, call: CallDep, principal: AppPrincipal) -> dict[str, Any]:
    call.action = "applications.withdraw"
    a = _application(hub, principal, application_id)
    call.dataset_code = a.dataset_code
    assert principal.app_id is not None
    out = applications.withdraw(hub.engine, application_id, principal.app_id)
    call.row_count = 1
    return out.to_json()


@router.get(
    "/grants",
    response_model=GrantList,
    responses=errors(401, 403),
    summary="Grants: an app's own, or a department's",
)
def list_grants(
    hub: HubDep,
    call: CallDep,
    principal: AnyPrincipal,
    active: Annotated[bool, Query(description="only active, unexpired grants")] = False,
) -> dict[str, Any]:
    call.action = "grants.list"
    if principal.kind == "app":
        items = applications.list_grants(hub.engine, app_id=principal.app_id, active_only=active)
    else:
        items = applications.list_grants(
            hub.engine, department_code=principal.department_code, active_only=active
        )
    call.row_count = len(items)
    return {"items": [g.to_json() for g in items], "count": len(items)}


@router.post(
    "/grants/{grant_id}/revoke",
    response_model=GrantOut,
    responses=errors(400, 401, 403, 404, 409),
    summary="Revoke a grant (the owning department's approver, or the app giving it up)",
)
def revoke(
    grant_id: Id, body: RevokeIn, hub: HubDep, call: CallDep, principal: AnyPrincipal
) -> dict[str, Any]:
    call.action = "grants.revoke"
    g = applications.get_grant(hub.engine, grant_id)
    owner = hub.dataset(g.dataset_code).department.code if g else ""
    if g is None or not _own_or_covered(principal, g.app_id, owner):
        raise HubError("grant_not_found", id=grant_id)
    call.dataset_code = g.dataset_code
    if principal.kind == "staff" and not principal.has_role("approver"):
        raise HubError("forbidden_role", role="approver")
    by = principal.username if principal.kind == "staff" else applications.app_actor(principal.app_id or "")
    out = applications.revoke(
        hub.engine, grant_id, by=by or "", reason=body.reason, now=dt.datetime.now(dt.UTC)
    )
    call.row_count = 1
    return out.to_json()


def _staff_user(hub: Any, principal: Principal) -> Any:
    from catalog.access import staff

    assert principal.username is not None
    user = staff.get_staff(hub.engine, principal.username)
    if user is None:
        raise HubError("staff_not_found", username=principal.username)
    return user
