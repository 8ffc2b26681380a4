"""The read API (``/api/v1``): the directory, record lookups, certificates.

Every data endpoint goes through one gate, :func:`catalog.access.decide`, with the caller
and the purpose of the call. Today the gate enforces the directory's own rules (``none``
data is never served; sensitive fields are masked); the access-control layer (apps, tokens,
grants, audit) replaces the anonymous caller and extends the same gate.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from catalog import access, certificates, serving, store
from catalog import runs as run_store
from catalog.errors import ApiError, error_body
from catalog.model import DatasetSpec


def _engine(request: Request) -> sa.Engine:
    engine: sa.Engine = request.app.state.engine
    return engine


EngineDep = Annotated[sa.Engine, Depends(_engine)]
CallerDep = Annotated[access.Caller, Depends(access.current_caller)]


def _dataset(engine: sa.Engine, code: str) -> store.PublishedDataset:
    try:
        return store.get_dataset(engine, code)
    except KeyError:
        raise ApiError("dataset_not_found", 404, code=code) from None


def _entry(d: store.PublishedDataset, engine: sa.Engine, *, detail: bool) -> dict[str, Any]:
    s = d.spec
    out: dict[str, Any] = {
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
    }
    if detail:
        out["primary_key"] = s.primary_key
        out["subject_field"] = s.subject.field if s.subject else None
        out["fields"] = [
            {
                "name": f.name,
                "label": f.label,
                "type": f.type,
                "sensitivity": f.sensitivity.value,
                "mask": f.mask.value if f.mask else None,
                "description": f.description,
            }
            for f in s.fields
        ]
        last = run_store.last_successful_run(engine, s.code)
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
    return out


def _encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, default=str).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> list[Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise ApiError("bad_cursor", 400) from None
    if not isinstance(value, list):
        raise ApiError("bad_cursor", 400)
    return value


def _coerce_key(spec: DatasetSpec, name: str, raw: str) -> Any:
    f = spec.field(name)
    try:
        if f.type == "integer":
            return int(raw)
        if f.type == "date":
            return dt.date.fromisoformat(raw)
    except ValueError:
        raise ApiError("bad_filter", 400, field=name) from None
    return raw


def create_app(settings: Any = None) -> FastAPI:
    """The FastAPI application (uvicorn factory: ``catalog.api:create_app``)."""
    from sharehub.settings import get_settings

    s = settings or get_settings()
    app = FastAPI(
        title="sharehub access API",
        version="1",
        description="Government data sharing hub: directory, shared records, electronic certificates.",
    )
    app.state.engine = store.engine_for(s.hub_db_url)

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content=error_body(exc))

    @app.get("/api/v1/health", tags=["meta"])
    def health(engine: EngineDep) -> dict[str, Any]:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return {"status": "ok"}

    @app.get("/api/v1/datasets", tags=["directory"])
    def list_datasets(
        engine: EngineDep,
        q: Annotated[str | None, Query(description="search in code, name, summary, field labels")] = None,
        department: str | None = None,
        share_type: str | None = None,
    ) -> dict[str, Any]:
        items = []
        for d in store.list_datasets(engine):
            if department and d.department.code != department:
                continue
            if share_type and d.spec.share.type.value != share_type:
                continue
            if q:
                hay = " ".join(
                    [d.spec.code, d.spec.name, d.spec.summary, *[f.label for f in d.spec.fields]]
                ).lower()
                if q.lower() not in hay:
                    continue
            items.append(_entry(d, engine, detail=False))
        return {"items": items, "count": len(items)}

    @app.get("/api/v1/datasets/{code}", tags=["directory"])
    def show_dataset(code: str, engine: EngineDep) -> dict[str, Any]:
        return _entry(_dataset(engine, code), engine, detail=True)

    @app.get("/api/v1/datasets/{code}/records", tags=["records"])
    def records(
        code: str,
        request: Request,
        engine: EngineDep,
        caller: CallerDep,
        subject: Annotated[
            str | None, Query(description="citizen ID or credit code the records are about")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    ) -> dict[str, Any]:
        d = _dataset(engine, code)
        spec = d.spec
        decision = access.decide(caller, spec)
        key_filters = {k: v for k, v in request.query_params.items() if k in spec.primary_key}
        unknown = [
            k for k in request.query_params if k not in {*spec.primary_key, "subject", "limit", "cursor"}
        ]
        if unknown:
            raise ApiError("filter_not_allowed", 400, field=unknown[0])
        if key_filters:
            if set(key_filters) != set(spec.primary_key):
                raise ApiError("incomplete_key", 400, fields=",".join(spec.primary_key))
            key = {k: _coerce_key(spec, k, v) for k, v in key_filters.items()}
            row = serving.lookup_key(engine, spec, key)
            items = [decision.shape(row)] if row else []
            return {"items": items, "count": len(items), "next_cursor": None}
        if subject is None:
            raise ApiError("filter_required", 400, fields=",".join([*spec.primary_key, "subject"]))
        if spec.subject is None:
            raise ApiError("no_subject", 400, code=code)
        after = _decode_cursor(cursor) if cursor else None
        rows = serving.lookup_subject(engine, spec, subject, limit=limit + 1, after=after)
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = _encode_cursor([rows[-1][k] for k in spec.primary_key])
        return {"items": [decision.shape(r) for r in rows], "count": len(rows), "next_cursor": next_cursor}

    @app.get("/api/v1/subjects/{subject_id}/certificates", tags=["certificates"])
    def subject_certificates(
        subject_id: str, engine: EngineDep, caller: CallerDep, type: str | None = None
    ) -> dict[str, Any]:
        access.require_caller(caller)
        items = [access.certificate_view(c) for c in certificates.certificates_of(engine, subject_id, type)]
        return {"items": items, "count": len(items)}

    @app.get("/api/v1/certificates/{identifier}", tags=["certificates"])
    def certificate(identifier: str, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
        access.require_caller(caller)
        c = certificates.certificate(engine, identifier)
        if c is None:
            raise ApiError("certificate_not_found", 404, identifier=identifier)
        return access.certificate_view(c)

    return app
