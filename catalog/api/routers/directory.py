"""The directory (数据目录): browse, search, dataset detail, open data download."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from catalog.access import disclosure, gate
from catalog.api.context import CallDep, HubDep, OptionalPrincipal, client_address, limit
from catalog.api.errors_doc import errors
from catalog.api.schemas.directory import DatasetDetail, DatasetList
from catalog.directory import store
from catalog.directory.grades import policy_of
from catalog.directory.model import ShareType
from catalog.errors import HubError
from catalog.runs import record as run_store
from catalog.serving import tables as serving

router = APIRouter(prefix="/api/v1", tags=["directory"])


def _entry(d: store.PublishedDataset) -> dict[str, Any]:
    s = d.spec
    return {
        "code": s.code,
        "name": s.name,
        "summary": s.summary,
        "department": {"code": d.department.code, "name": d.department.name},
        "share": s.share.model_dump(mode="json"),
        "open": s.open.model_dump(mode="json"),
        "grade": s.grade.value,
        "update_cycle": s.update_cycle,
        "format": s.format,
        "version": d.version,
        "subject_kind": s.subject.kind.value if s.subject else None,
        "personal_data": gate.is_personal(s),
    }


def _visible(principal: gate.Principal, d: store.PublishedDataset) -> bool:
    """The public sees open data only; registered parties see the whole directory."""
    return principal.kind != "anonymous" or d.spec.open.open


_OPTIONAL_AUTH: dict[str, Any] = {"security": [{}]}  # a token is optional: the public sees open data


@router.get(
    "/datasets",
    response_model=DatasetList,
    responses=errors(401, 403),
    openapi_extra=_OPTIONAL_AUTH,
    summary="Browse and search the directory",
)
def list_datasets(
    hub: HubDep,
    call: CallDep,
    principal: OptionalPrincipal,
    q: Annotated[
        str | None, Query(max_length=100, description="search in code, name, summary, field labels")
    ] = None,
    department: Annotated[str | None, Query(max_length=32)] = None,
    share_type: Annotated[Literal["unconditional", "conditional", "none"] | None, Query()] = None,
    open: Annotated[bool | None, Query(description="only open data (开放数据)")] = None,
) -> dict[str, Any]:
    """Datasets in the directory. Without a token only open data is listed."""
    call.action = "directory.search"
    items = []
    for d in store.list_datasets(hub.engine):
        if not _visible(principal, d):
            continue
        if department and d.department.code != department:
            continue
        if share_type and d.spec.share.type.value != share_type:
            continue
        if open is not None and d.spec.open.open != open:
            continue
        if q:
            hay = " ".join([d.spec.code, d.spec.name, d.spec.summary, *[f.label for f in d.spec.fields]])
            if q.lower() not in hay.lower():
                continue
        items.append(_entry(d))
    call.row_count = len(items)
    return {"items": items, "count": len(items)}


@router.get(
    "/datasets/{code}",
    response_model=DatasetDetail,
    responses=errors(401, 403, 404),
    openapi_extra=_OPTIONAL_AUTH,
    summary="One dataset: fields, share type, freshness, quality record",
)
def show_dataset(code: str, hub: HubDep, call: CallDep, principal: OptionalPrincipal) -> dict[str, Any]:
    call.action = "directory.show"
    d = hub.dataset(code)
    if not _visible(principal, d):
        call.reason = "not_open"
        raise HubError("dataset_not_found", code=code)
    call.dataset_code = d.spec.code
    s = d.spec
    out = _entry(d)
    out["primary_key"] = s.primary_key
    out["subject_field"] = s.subject.field if s.subject else None
    out["fields"] = [
        {
            "name": f.name,
            "label": f.label,
            "type": f.type,
            "sensitivity": f.sensitivity.value,
            "mask": f.mask,
            "description": f.description,
        }
        for f in s.fields
    ]
    last = run_store.last_successful_run(hub.engine, s.code)
    out["freshness"] = (
        {
            "last_published_at": last["finished_at"],
            "snapshot_id": last["snapshot_id"],
            "rows_published": last["rows_published"],
            "pass_rate": last["pass_rate"],
            "rows_quarantined": last["rows_quarantined"],
        }
        if last
        else None
    )
    out["quality_record"] = [
        {
            k: r[k]
            for k in (
                "run_id",
                "status",
                "started_at",
                "rows_read",
                "rows_published",
                "rows_quarantined",
                "pass_rate",
            )
        }
        for r in run_store.recent_runs(hub.engine, limit=10, dataset_code=s.code)
    ]
    out["certificate_types"] = [c["code"] for c in store.certificate_types_for(hub.engine, s.code)]
    call.row_count = 1
    return out


@router.get(
    "/datasets/{code}/download",
    responses={
        200: {
            "content": {"text/csv": {}, "application/x-ndjson": {}, "application/vnd.apache.parquet": {}},
            "description": "the open dataset, sensitive fields left out",
        },
        **errors(404, 429),
    },
    response_class=StreamingResponse,
    summary="Download open data (no credentials needed)",
)
def download(
    code: str,
    request: Request,
    hub: HubDep,
    call: CallDep,
    format: Annotated[Literal["csv", "jsonl", "parquet"], Query()] = "csv",
) -> Response:
    """Open data (开放数据) for anyone: every row, without the sensitive fields. A dataset that
    is not open answers exactly as one that does not exist (404 ``dataset_not_found``); the
    audit record keeps the real reason. Rate-limited per client address."""
    call.action = "open.download"
    limit(hub, f"download:{client_address(request)}", hub.settings.open_download_rate_limit)
    d = hub.dataset(code)
    if d.spec.share.type is ShareType.NONE or not d.spec.open.open:
        call.reason = "not_shared" if d.spec.share.type is ShareType.NONE else "not_open"
        raise HubError("dataset_not_found", code=code)
    call.dataset_code = d.spec.code
    if not policy_of(hub.settings)[d.spec.grade].bulk_allowed:  # the grade policy: no bulk access
        call.reason = "bulk_not_allowed"
        raise HubError("dataset_not_found", code=code)
    projection = disclosure.for_public(d.spec)
    call.fields = [projection.audit_name(f) for f in projection.fields]
    call.row_count = serving.count(hub.engine, d.spec)
    rows = open_rows(hub.engine, d.spec, projection)
    filename = f"{d.spec.code}.{format}"
    disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if format == "parquet":
        return Response(
            _parquet(list(projection.fields), rows),
            media_type="application/vnd.apache.parquet",
            headers=disposition,
        )
    body: Iterator[str]
    if format == "csv":
        body = _csv(list(projection.fields), rows)
        media = "text/csv; charset=utf-8"
    else:
        body = (json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        media = "application/x-ndjson"
    return StreamingResponse(body, media_type=media, headers=disposition)


def _parquet(fields: list[str], rows: Iterator[dict[str, Any]]) -> bytes:
    """The rows as one Parquet file (columns typed by pyarrow from the JSON-ready values)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    batch = list(rows)
    table = pa.Table.from_pylist(batch) if batch else pa.table({f: pa.array([], pa.string()) for f in fields})
    table = table.select(fields) if batch else table
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return bytes(sink.getvalue().to_pybytes())


def open_rows(
    engine: sa.Engine, spec: Any, projection: disclosure.Projection, *, limit: int | None = None
) -> Iterator[dict[str, Any]]:
    """The served rows in key order, each through ``projection`` (the portal's sample rows too)."""
    table = serving.serving_table(spec)
    if not sa.inspect(engine).has_table(table.name):
        return
    q = sa.select(*[table.c[f] for f in projection.fields]).order_by(*[table.c[k] for k in spec.primary_key])
    if limit is not None:
        q = q.limit(limit)
    with engine.connect() as conn:
        for row in conn.execution_options(yield_per=5000).execute(q):
            yield projection.record(row._mapping)


def _csv(fields: list[str], rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields)
    buf.write("\ufeff")  # Excel opens UTF-8 CSV with Chinese text correctly only with a BOM
    w.writeheader()
    for i, row in enumerate(rows, 1):
        w.writerow(row)
        if i % 1000 == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()
