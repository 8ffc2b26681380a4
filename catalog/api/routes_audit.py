"""Who used what: apps list their own calls, department auditors the calls on their data."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from catalog import audit, store
from catalog.api.context import AnyPrincipal, CallDep, HubDep
from catalog.api.errors_doc import errors
from catalog.api.models import AuditList
from catalog.errors import ApiError

router = APIRouter(prefix="/api/v1", tags=["audit"])


@router.get("/audit", response_model=AuditList, responses=errors(401, 403), summary="The access log")
def list_audit(
    hub: HubDep,
    call: CallDep,
    principal: AnyPrincipal,
    dataset: Annotated[str | None, Query(max_length=64)] = None,
    app: Annotated[str | None, Query(max_length=64, description="staff only: one app's calls")] = None,
    decision: Annotated[Literal["allow", "deny"] | None, Query()] = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    after: Annotated[int | None, Query(ge=0, description="next_after of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """An app sees only its own calls. A department auditor sees every call on the
    department's datasets (hub-wide auditors see all). Ascending by sequence number."""
    call.action = "audit.list"
    app_id: str | None
    codes: list[str] | None = None
    if principal.kind == "app":
        app_id = principal.app_id
    else:
        if not principal.has_role("auditor"):
            raise ApiError("forbidden_role", 403, role="auditor")
        app_id = app
        if principal.department_code is not None:
            codes = [
                d.spec.code
                for d in store.list_datasets(hub.engine)
                if d.department.code == principal.department_code
            ]
    if dataset is not None:
        codes = [dataset] if codes is None or dataset in codes else []
    rows = audit.query(
        hub.engine,
        app_id=app_id,
        dataset_codes=codes,
        since=since,
        until=until,
        after_seq=after,
        limit=limit,
        decision=decision,
    )
    call.row_count = len(rows)
    return {"items": rows, "count": len(rows), "next_after": rows[-1]["seq"] if len(rows) == limit else None}
