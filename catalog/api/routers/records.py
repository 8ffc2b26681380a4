"""Shared records: by primary key or subject, and the subject view (一人一档 / 一企一档)."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from catalog.access import applications, disclosure
from catalog.api import cert_views
from catalog.api.context import (
    AppClaims,
    AppClaimsDep,
    AppPrincipal,
    CallAudit,
    CallDep,
    Hub,
    HubDep,
    app_dataset_gate,
    limit_grant,
    request_call,
    request_hub,
)
from catalog.api.errors_doc import errors
from catalog.api.schemas.records import RecordsPage, SubjectView
from catalog.directory.model import DatasetSpec, ShareType
from catalog.errors import HubError
from catalog.serving import tables as serving

router = APIRouter(prefix="/api/v1", tags=["records"])

SUBJECT_LIMIT = 100  # records per dataset in the subject view
_SUBJECT = Path(
    min_length=1, max_length=32, description="citizen ID (公民身份号码) or credit code (统一社会信用代码)"
)


def _cursor_context(app_id: str, spec: DatasetSpec, subject: str) -> tuple[str, str, str]:
    """A cursor works only for the app, dataset and subject it was made for."""
    return (app_id, spec.code, subject)


def _open_cursor(hub: Hub, context: tuple[str, str, str], spec: DatasetSpec, cursor: str) -> list[Any]:
    from catalog.api.cursors import BadCursor

    try:
        value = hub.cursors.open(cursor, *context)
    except BadCursor:
        raise HubError("bad_cursor") from None
    if len(value) != len(spec.primary_key):
        raise HubError("bad_cursor")
    return [
        _coerce_key(spec, k, str(v)) if v is not None else None
        for k, v in zip(spec.primary_key, value, strict=True)
    ]


#: what the audit keeps of the query besides the subject: the filters as given
_NOT_FILTERS = frozenset({"subject", "limit", "cursor"})


def asked(query: list[tuple[str, str]]) -> str | None:
    """The filters a lookup asked for (everything but subject, limit and cursor), as JSON text."""
    filters = {k: v for k, v in query if k not in _NOT_FILTERS}
    if not filters:
        return None
    return json.dumps(filters, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


_INT64 = re.compile(r"-?[0-9]{1,19}")


def _coerce_key(spec: DatasetSpec, name: str, raw: str) -> Any:
    f = spec.field(name)
    try:
        if f.type == "integer":
            # ASCII digits that fit the column (a BIGINT at most); int() would take ２, 1_0, 2**70
            if not _INT64.fullmatch(raw) or not -(2**63) <= int(raw) < 2**63:
                raise ValueError(raw)
            return int(raw)
        if f.type == "date":
            return dt.date.fromisoformat(raw)
    except ValueError:
        raise HubError("bad_filter", field=name) from None
    return raw


@router.get(
    "/datasets/{code}/records",
    response_model=RecordsPage,
    responses=errors(400, 401, 403, 404, 429),
    openapi_extra={"x-dynamic-query": True},  # the key fields are query parameters named after them
    summary="Records by primary key or by subject",
)
async def records(
    code: str,
    request: Request,
    claims: AppClaimsDep,
    subject: Annotated[
        str | None, Query(max_length=32, description="citizen ID or credit code the records are about")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=1000, description="next_cursor of the previous page")
    ] = None,
) -> dict[str, Any]:
    """Filters are the primary key fields (all of them, as query parameters named after the
    fields) or ``subject``; nothing else. Fields the grant does not cover are dropped, sensitive
    fields granted masked are masked. A record that does not exist and one the app may not see
    give the same answer."""
    hub, call = request_hub(request), request_call(request)
    call.action = "records.lookup"
    query = list(request.query_params.multi_items())
    return await hub.run_db(_records, hub, call, claims, code, query, subject, limit, cursor)


def _records(
    hub: Hub,
    call: CallAudit,
    claims: AppClaims,
    code: str,
    query: list[tuple[str, str]],
    subject: str | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """The gate and the lookup on one pooled connection, in one worker thread."""
    call.subject = subject  # what was asked is recorded even when the gate refuses
    call.query = asked(query)
    with hub.reads() as reads:
        _principal, d, projection = app_dataset_gate(hub, call, claims, code, reads)
        spec = d.spec
        released = disclosure.Released()
        call.fields = []
        allowed = {*spec.primary_key, "subject", "limit", "cursor"}
        unknown = [k for k, _ in query if k not in allowed]
        if unknown:
            raise HubError("filter_not_allowed", field=unknown[0])
        key_filters = dict((k, v) for k, v in query if k in spec.primary_key)
        page: dict[str, Any] = {
            "dataset": spec.code,
            "fields": list(projection.fields),
            "masked": sorted(projection.masked),
        }
        if key_filters:
            if set(key_filters) != set(spec.primary_key):
                raise HubError("incomplete_key", fields=",".join(spec.primary_key))
            # a lookup by a key field the grant withholds (or masks) would answer "exists or not"
            # for guessed values of it: key lookups need every key field but the subject in clear
            subject_field = spec.subject.field if spec.subject else None
            for k in spec.primary_key:
                if k != subject_field and (k not in projection.fields or k in projection.masked):
                    raise HubError("filter_not_granted", field=k)
            key = {k: _coerce_key(spec, k, v) for k, v in key_filters.items()}
            row = reads.lookup_key(spec, key)
            if row and spec.subject:
                call.subject = str(row.get(spec.subject.field))
            items = [projection.record(row, released)] if row else []
            call.row_count = len(items)
            call.fields = released.names()
            return {**page, "items": items, "count": len(items), "next_cursor": None}
        if subject is None:
            raise HubError("filter_required", fields=",".join([*spec.primary_key, "subject"]))
        if spec.subject is None:
            raise HubError("no_subject", code=code)
        context = _cursor_context(claims.app_id, spec, subject)
        after = _open_cursor(hub, context, spec, cursor) if cursor else None
        rows = reads.lookup_subject(spec, subject, limit=limit + 1, after=after)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = hub.cursors.seal([rows[-1][k] for k in spec.primary_key], *context)
    items = [projection.record(r, released) for r in rows]
    call.row_count = len(items)
    call.fields = released.names()
    return {**page, "items": items, "count": len(items), "next_cursor": next_cursor}


@router.get(
    "/subjects/{subject_id}",
    response_model=SubjectView,
    responses=errors(400, 401, 403, 429),
    summary="Everything about one citizen or enterprise the app may see (一人一档 / 一企一档)",
)
def subject_view(
    subject_id: Annotated[str, _SUBJECT], hub: HubDep, call: CallDep, principal: AppPrincipal
) -> dict[str, Any]:
    """Records from every dataset the app holds an active grant on, and the certificates of
    the types it may see, in one call. Datasets the app may not see are left out silently.
    Always needs the purpose headers: a dossier about a subject is personal data."""
    call.action = "subject.view"
    call.subject = subject_id
    hub.purpose.check(principal.end_user, principal.case_number)
    assert principal.app_id is not None
    out: list[dict[str, Any]] = []
    released = disclosure.Released()
    consulted: dict[str, int] = {}  # dataset -> rows it gave (records and certificates)
    call.datasets = consulted
    total = 0
    for grant in applications.list_grants(hub.engine, app_id=principal.app_id, active_only=True):
        try:
            d = hub.dataset(grant.dataset_code)
        except HubError:
            continue
        spec = d.spec
        if spec.subject is None or spec.share.type is ShareType.NONE:
            continue
        limit_grant(hub, principal.app_id, spec, grant.rate_limit)
        projection = disclosure.for_grant(spec, grant.fields, grant.clear_fields, grant_id=grant.id)
        rows = serving.lookup_subject(hub.engine, spec, subject_id, limit=SUBJECT_LIMIT + 1)
        truncated = len(rows) > SUBJECT_LIMIT
        items = [projection.record(r, released) for r in rows[:SUBJECT_LIMIT]]
        consulted[spec.code] = len(items)
        if not items:
            continue
        total += len(items)
        out.append(
            {
                "code": spec.code,
                "name": spec.name,
                "department": {"code": d.department.code, "name": d.department.name},
                "fields": list(projection.fields),
                "masked": sorted(projection.masked),
                "items": items,
                "count": len(items),
                "truncated": truncated,
            }
        )
    certs = cert_views.visible_certificates(
        hub, principal, subject_id, released=released, consulted=consulted
    )
    total += len(certs)
    call.fields = released.names()
    call.row_count = total
    return {"subject": subject_id, "datasets": out, "certificates": certs}
