"""Who used what: apps list their own calls, department auditors the calls on their data."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from catalog import audit
from catalog.api.context import AnyPrincipal, CallDep, HubDep
from catalog.api.errors_doc import errors
from catalog.api.schemas.audit import AuditList
from catalog.directory import store
from catalog.errors import HubError

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
        raise HubError("bad_filter", field=name) from None


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
    department's datasets (hub-wide auditors see all). Ascending by sequence number.

    What each party sees of a record is itself cut to what it may know: an app sees the
    subject of a call only when it sent it (a key lookup or a certificate fetched by identifier
    records the row's subject for the owner, which the app may not have been granted); a
    department auditor sees, of a subject view or certificate list, only its own datasets, the
    fields released from them and the rows they gave. Hash and prev_hash are the stored
    record's; the chain is verified by ``sharehub audit verify`` or a hub-wide auditor."""
    call.action = "audit.list"
    app_id: str | None
    codes: list[str] | None = None
    if principal.kind == "app":
        app_id = principal.app_id
    else:
        if not principal.has_role("auditor"):
            raise HubError("forbidden_role", role="auditor")
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
    page_full = len(rows) == limit
    if principal.kind == "app":
        rows = [as_seen_by_app(r) for r in rows]
    elif principal.department_code is not None:
        own = set(codes or [])
        rows = [as_seen_by_department(r, own) for r in rows]
    return {"items": rows, "count": len(rows), "next_after": rows[-1]["seq"] if page_full else None}


#: actions whose subject is what the app itself sent
_SUBJECT_SENT = frozenset({"subject.view", "certificates.list"})


def as_seen_by_app(row: dict[str, Any]) -> dict[str, Any]:
    sent = row["action"] in _SUBJECT_SENT or (row["action"] == "records.lookup" and row.get("query") is None)
    return row if sent else {**row, "subject": None}


def as_seen_by_department(row: dict[str, Any], own: set[str]) -> dict[str, Any]:
    datasets = row.get("datasets")
    if not datasets:
        return row
    mine = {code: n for code, n in datasets.items() if code in own}
    fields = [f for f in row.get("fields") or [] if f.split(".", 1)[0] in own]
    return {
        **row,
        "datasets": mine,
        "fields": fields if row.get("fields") is not None else None,
        "row_count": sum(mine.values()),
    }
