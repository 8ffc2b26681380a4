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

_ISO = r"^\d{4}-\d{2}-\d{2}([T ].*)?$"


def _time(name: str, value: str | None) -> dt.datetime | None:
    """An ISO 8601 time; a time without zone is taken as UTC."""
    if value is None:
        return None
    try:
        t = dt.datetime.fromisoformat(value)
        # in UTC here: an offset can carry a time past the calendar's ends (9999-12-31T23:59-23:59)
        return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise ApiError("bad_filter", 400, field=name) from None


@router.get("/audit", response_model=AuditList, responses=errors(400, 401, 403), summary="The access log")
def list_audit(
    hub: HubDep,
    call: CallDep,
    principal: AnyPrincipal,
    dataset: Annotated[str | None, Query(max_length=64)] = None,
    app: Annotated[str | None, Query(max_length=64, description="staff only: one app's calls")] = None,
    decision: Annotated[Literal["allow", "deny"] | None, Query()] = None,
    since: Annotated[
        str | None, Query(max_length=40, pattern=_ISO, description="ISO 8601 time, inclusive")
    ] = None,
    until: Annotated[
        str | None, Query(max_length=40, pattern=_ISO, description="ISO 8601 time, exclusive")
    ] = None,
    after: Annotated[int | None, Query(ge=0, le=2**62, description="next_after of the previous page")] = None,
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
        since=_time("since", since),
        until=_time("until", until),
        after_seq=after,
        limit=limit,
        decision=decision,
    )
    call.row_count = len(rows)
    return {"items": rows, "count": len(rows), "next_after": rows[-1]["seq"] if len(rows) == limit else None}
