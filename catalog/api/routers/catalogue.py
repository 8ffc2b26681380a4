"""The public directory as DCAT-AP 3.0 for other catalogues (CKAN's ckanext-dcat harvester and
the like): ``GET /api/v1/catalog.ttl`` (Turtle) and ``GET /api/v1/catalog.jsonld`` (JSON-LD).

No credentials: the graph holds only what the directory shows the public (see
:mod:`catalog.api.dcat`). Answers carry an ``ETag`` (the SHA-256 of the body) and
``Last-Modified`` (the directory's latest publication); ``If-None-Match`` with the current tag
answers 304 without a body.
"""

from __future__ import annotations

import hashlib
from email.utils import format_datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from catalog.api import dcat
from catalog.api.context import CallDep, HubDep
from catalog.api.errors_doc import errors

router = APIRouter(prefix="/api/v1", tags=["directory"])

_MEDIA = {"ttl": "text/turtle", "jsonld": "application/ld+json"}


def _responses(media: str) -> dict[int | str, dict[str, Any]]:
    body = {"type": "object"} if media == _MEDIA["jsonld"] else {"type": "string"}  # JSON-LD is JSON
    return {
        200: {
            "content": {media: {"schema": body}},
            "description": "the public directory as DCAT-AP 3.0",
            "headers": {
                "ETag": {"schema": {"type": "string"}, "description": "SHA-256 of the body"},
                "Last-Modified": {
                    "schema": {"type": "string"},
                    "description": "the directory's latest publication (absent while nothing is published)",
                },
            },
        },
        304: {"description": "not modified since the ETag given in If-None-Match"},
        **errors(),
    }


def _answer(request: Request, hub: HubDep, call: CallDep, kind: str) -> Response:
    call.action = "directory.dcat"
    info = dcat.CatalogInfo.of(hub.settings, str(request.base_url))
    export = dcat.build(hub.engine, info, hub.grade_policy)
    body = dcat.serialise(export.graph, kind)
    call.row_count = export.datasets
    etag = '"' + hashlib.sha256(body).hexdigest() + '"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=60"}
    if info.from_request:  # IRIs built from the Host header: a shared cache must not mix hosts
        headers["Vary"] = "Host, X-Forwarded-Proto"
    if export.modified is not None:
        headers["Last-Modified"] = format_datetime(export.modified, usegmt=True)
    wanted = [t.strip() for t in request.headers.get("if-none-match", "").split(",")]
    if etag in wanted or f"W/{etag}" in wanted or "*" in wanted:
        call.row_count = 0
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=_MEDIA[kind], headers=headers)


@router.get(
    "/catalog.ttl",
    response_class=Response,
    responses=_responses(_MEDIA["ttl"]),
    openapi_extra={"security": [{}]},
    summary="The public directory as DCAT-AP 3.0 (Turtle)",
)
def catalog_turtle(request: Request, hub: HubDep, call: CallDep) -> Response:
    """Open datasets (开放数据) with their departments, update cycles, access rights and
    distributions (the access API, open-data downloads, Delta Sharing), and the access API as a
    ``dcat:DataService``. No credentials needed."""
    return _answer(request, hub, call, "ttl")


@router.get(
    "/catalog.jsonld",
    response_class=Response,
    responses=_responses(_MEDIA["jsonld"]),
    openapi_extra={"security": [{}]},
    summary="The public directory as DCAT-AP 3.0 (JSON-LD)",
)
def catalog_jsonld(request: Request, hub: HubDep, call: CallDep) -> Response:
    """The same graph as ``/api/v1/catalog.ttl``, as JSON-LD."""
    return _answer(request, hub, call, "jsonld")
