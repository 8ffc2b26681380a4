"""Bulk sharing over the Delta Sharing protocol (delta-io/delta-sharing PROTOCOL.md), under
``/api/v1/delta-sharing`` — the endpoint a recipient profile names.

The recipient is an app, authenticated by its access token or by a recipient token from a
profile (:mod:`catalog.sharing.recipients`). What it sees is :func:`catalog.sharing.files.shared_tables`:
its active grants on datasets shared by file whose grade allows bulk access. ``query`` hands
out, per grant and snapshot, a Parquet file of the granted fields with masked fields masked,
through a link that expires: a link to this API (``/api/v1/delta-sharing/files/<sealed>``) or,
on an S3 warehouse, a pre-signed S3 URL (:mod:`catalog.sharing.links`, setting
``sharing_links``); the curated data files are never exposed. Every call is audited like any
other, with the dataset, the fields released, the rows the handed-out files hold and the kind
of link (``query``: ``{"links": "hub" | "presigned", ...}``); every download through the hub is
audited too. Responses are the protocol's parquet format (``responseformat=parquet``).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse

from catalog.access import app_registry, disclosure
from catalog.api.context import (
    CallDep,
    Hub,
    HubDep,
    _unauthorized,
    app_principal_of,
    resolve_principal,
)
from catalog.api.cursors import BadCursor
from catalog.api.errors_doc import errors
from catalog.errors import HubError
from catalog.sharing import files as sharing
from catalog.sharing import links, recipients

router = APIRouter(prefix="/api/v1/delta-sharing", tags=["delta sharing"])

#: how long a handed-out file link works unless the settings say (``sharing_link_seconds``)
FILE_URL_TTL_S = links.DEFAULT_SECONDS
_NDJSON = "application/x-ndjson; charset=utf-8"
_VERSION_HEADER = {"Delta-Table-Version": {"schema": {"type": "integer"}, "description": "the table version"}}
#: what the listing endpoints can answer besides 200
_LIST = errors(401, 403, 404)
#: a table's endpoints: JSON lines (NDJSON) with the table version in a header
_LINES = {
    **errors(401, 403, 404),
    200: {"content": {"application/x-ndjson": {}}, "headers": _VERSION_HEADER, "description": "NDJSON lines"},
}
_SHARE_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "sharehub:share"))
#: per hub (by id, with a weak reference that tells a live hub from a dead one whose id was
#: reused): its lake and, on S3 with pre-signed links, its shared-files store
_OPENED: dict[int, tuple[weakref.ref[Hub], dict[str, Any]]] = {}
_LAKE_LOCK = threading.Lock()


def _opened(hub: Hub) -> dict[str, Any]:
    with _LAKE_LOCK:
        for key in [k for k, (ref, _) in _OPENED.items() if ref() is None]:
            del _OPENED[key]
        hit = _OPENED.get(id(hub))
        if hit is None or hit[0]() is not hub:
            hit = _OPENED[id(hub)] = (weakref.ref(hub), {})
        return hit[1]


def _lake(hub: Hub) -> Any:
    """The lake of this hub (opened once per process)."""
    opened = _opened(hub)
    with _LAKE_LOCK:
        lake = opened.get("lake")
        if lake is None:
            from lake import open_lake

            s: Any = hub.settings
            lake = opened["lake"] = open_lake(s.hub_db_url, s.warehouse, s3=s.s3_options())
        return lake


def _s3_files(hub: Hub) -> links.S3Files | None:
    """Where pre-signed files go, or None when the hub hands out its own links."""
    if links.link_kind(hub.settings) != "presigned":
        return None
    opened = _opened(hub)
    with _LAKE_LOCK:
        store: links.S3Files | None = opened.get("s3_files")
        if store is None:
            store = opened["s3_files"] = links.S3Files.from_settings(hub.settings)
        return store


def _cache(hub: Hub) -> Path:
    return Path(getattr(hub.settings, "var_dir", ".")) / "sharing"


def recipient(request: Request, hub: HubDep, call: CallDep) -> str:
    """The app reading: by a recipient token (``shr_…``) or its own access token."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("not_authenticated")
    if token.startswith(recipients.PREFIX):
        app_id = recipients.authenticate(hub.engine, token)
        if app_id is None:
            raise _unauthorized("invalid_token", why="recipient profile unknown, expired or revoked")
        app = app_registry.get_app(hub.engine, app_id)
        principal = app_principal_of(app, app.secret_generation if app else None)
    else:
        principal = resolve_principal(hub, token)
        if principal.kind != "app":
            raise HubError("wrong_party", party="apps")
    call.principal = principal
    assert principal.app_id is not None
    return principal.app_id


Recipient = Annotated[str, Depends(recipient)]


def _tables(hub: Hub, app_id: str) -> list[sharing.SharedTable]:
    return sharing.shared_tables(hub.engine, app_id, hub.grade_policy)


def _page(items: list[dict[str, Any]], max_results: int | None, page_token: str | None) -> dict[str, Any]:
    start = int(page_token) if page_token and page_token.isdigit() else 0
    end = len(items) if max_results is None else start + max_results
    out: dict[str, Any] = {"items": items[start:end]}
    if end < len(items):
        out["nextPageToken"] = str(end)
    return out


_MaxResults = Annotated[int | None, Query(alias="maxResults", ge=0, le=1000)]
_PageToken = Annotated[str | None, Query(alias="pageToken", max_length=20)]


def _share_item() -> dict[str, Any]:
    return {"name": sharing.SHARE, "id": _SHARE_ID}


def _table_item(t: sharing.SharedTable) -> dict[str, Any]:
    return {
        "name": t.name,
        "schema": t.schema,
        "share": sharing.SHARE,
        "shareId": _SHARE_ID,
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sharehub:{t.code}")),
    }


def _check_share(share: str) -> None:
    if share.lower() != sharing.SHARE:
        raise HubError("share_not_found", name=share[:100])


@router.get("/shares", responses=_LIST, summary="Shares the recipient may read (Delta Sharing)")
def list_shares(
    hub: HubDep,
    call: CallDep,
    app_id: Recipient,
    max_results: _MaxResults = None,
    page_token: _PageToken = None,
) -> dict[str, Any]:
    call.action = "sharing.shares"
    items = [_share_item()] if _tables(hub, app_id) else []
    return _page(items, max_results, page_token)


@router.get("/shares/{share}", responses=_LIST, summary="One share (Delta Sharing)")
def get_share(share: str, hub: HubDep, call: CallDep, app_id: Recipient) -> dict[str, Any]:
    call.action = "sharing.share"
    _check_share(share)
    if not _tables(hub, app_id):
        raise HubError("share_not_found", name=share[:100])
    return {"share": _share_item()}


@router.get("/shares/{share}/schemas", responses=_LIST, summary="Schemas of a share (Delta Sharing)")
def list_schemas(
    share: str,
    hub: HubDep,
    call: CallDep,
    app_id: Recipient,
    max_results: _MaxResults = None,
    page_token: _PageToken = None,
) -> dict[str, Any]:
    call.action = "sharing.schemas"
    _check_share(share)
    schemas = sorted({t.schema for t in _tables(hub, app_id)})
    return _page([{"name": s, "share": sharing.SHARE} for s in schemas], max_results, page_token)


@router.get(
    "/shares/{share}/schemas/{schema}/tables", responses=_LIST, summary="Tables of a schema (Delta Sharing)"
)
def list_tables(
    share: str,
    schema: str,
    hub: HubDep,
    call: CallDep,
    app_id: Recipient,
    max_results: _MaxResults = None,
    page_token: _PageToken = None,
) -> dict[str, Any]:
    call.action = "sharing.tables"
    _check_share(share)
    items = [_table_item(t) for t in _tables(hub, app_id) if t.schema == schema.lower()]
    return _page(items, max_results, page_token)


@router.get("/shares/{share}/all-tables", responses=_LIST, summary="All tables of a share (Delta Sharing)")
def list_all_tables(
    share: str,
    hub: HubDep,
    call: CallDep,
    app_id: Recipient,
    max_results: _MaxResults = None,
    page_token: _PageToken = None,
) -> dict[str, Any]:
    call.action = "sharing.tables"
    _check_share(share)
    return _page([_table_item(t) for t in _tables(hub, app_id)], max_results, page_token)


def _table(hub: Hub, call: Any, app_id: str, share: str, schema: str, table: str) -> sharing.SharedTable:
    found = sharing.find_table(_tables(hub, app_id), share, schema, table)
    call.dataset_code = found.code
    return found


@router.get(
    "/shares/{share}/schemas/{schema}/tables/{table}/version",
    response_class=Response,
    responses={**errors(401, 403, 404), 200: {"headers": _VERSION_HEADER, "description": "empty body"}},
    summary="Table version (Delta Sharing)",
)
def table_version(
    share: str,
    schema: str,
    table: str,
    hub: HubDep,
    call: CallDep,
    app_id: Recipient,
    starting_timestamp: Annotated[str | None, Query(alias="startingTimestamp", max_length=40)] = None,
) -> Response:
    call.action = "sharing.version"
    t = _table(hub, call, app_id, share, schema, table)
    found = sharing.versions(_lake(hub), t.code)
    if starting_timestamp is not None:
        version = sharing.first_since(found, t.name, starting_timestamp)
    else:
        version = sharing.pick(found, t.name)
    return Response(status_code=200, headers={"Delta-Table-Version": str(version.number)})


def _protocol_and_metadata(t: sharing.SharedTable, schema_string: str) -> list[dict[str, Any]]:
    p = t.dataset.spec
    return [
        {"protocol": {"minReaderVersion": 1}},
        {
            "metaData": {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sharehub:{t.code}")),
                "name": t.name,
                "description": p.summary or p.name,
                "format": {"provider": "parquet", "options": {}},
                "schemaString": schema_string,
                "partitionColumns": [],
                "configuration": {"enableChangeDataFeed": "true"},
            }
        },
    ]


def _ndjson(lines: list[dict[str, Any]], version: int) -> StreamingResponse:
    def body() -> Iterator[bytes]:
        for line in lines:
            yield (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode()

    return StreamingResponse(body(), media_type=_NDJSON, headers={"Delta-Table-Version": str(version)})


def _released(call: Any, projection: disclosure.Projection, rows: int) -> None:
    call.fields = projection.audit_names()
    call.row_count = rows


@router.get(
    "/shares/{share}/schemas/{schema}/tables/{table}/metadata",
    response_class=StreamingResponse,
    responses=_LINES,
    summary="Table metadata (Delta Sharing)",
)
def table_metadata(
    share: str, schema: str, table: str, hub: HubDep, call: CallDep, app_id: Recipient
) -> StreamingResponse:
    call.action = "sharing.metadata"
    t = _table(hub, call, app_id, share, schema, table)
    lake = _lake(hub)
    version = sharing.pick(sharing.versions(lake, t.code), t.name)
    f = sharing.granted_file(lake, _cache(hub), t, version.snapshot_id)
    return _ndjson(_protocol_and_metadata(t, sharing.schema_string(f.schema)), version.number)


@router.post(
    "/shares/{share}/schemas/{schema}/tables/{table}/query",
    response_class=StreamingResponse,
    responses=_LINES,
    summary="Read a table (Delta Sharing)",
)
async def query_table(
    share: str, schema: str, table: str, request: Request, hub: HubDep, call: CallDep, app_id: Recipient
) -> StreamingResponse:
    call.action = "sharing.query"
    try:
        body = await request.json() if await request.body() else {}
    except ValueError:
        raise HubError("bad_document", why="the body is not JSON") from None
    if not isinstance(body, dict):
        raise HubError("bad_document", why="the body is not a JSON object")
    if body.get("startingVersion") is not None or body.get("endingVersion") is not None:
        raise HubError("bad_document", why="startingVersion queries are not supported yet; use version")

    def work() -> tuple[sharing.SharedTable, sharing.Version, sharing.GrantedFile, _Handed]:
        t = _table(hub, call, app_id, share, schema, table)
        lake = _lake(hub)
        found = sharing.versions(lake, t.code)
        version = sharing.pick(found, t.name, version=body.get("version"), timestamp=body.get("timestamp"))
        f = sharing.granted_file(lake, _cache(hub), t, version.snapshot_id)
        return t, version, f, _hand_out(hub, request, f, t, app_id, None, version.snapshot_id)

    t, version, f, handed = await hub.run_db(work)
    file_action = {
        "file": {
            "url": handed.url,
            "id": f.id,
            "partitionValues": {},
            "size": handed.size,
            "stats": json.dumps({"numRecords": f.rows}),
            "version": version.number,
            "timestamp": round(version.committed_at.timestamp() * 1000),
            "expirationTimestamp": handed.expires_ms,
        }
    }
    _released(call, t.projection, f.rows)
    _handed_out(call, handed.kind, handed.expires_ms, version=version.number, file=f.id)
    return _ndjson([*_protocol_and_metadata(t, sharing.schema_string(f.schema)), file_action], version.number)


@dataclass(frozen=True)
class _Handed:
    """A link handed out for one file."""

    kind: links.LinkKind
    url: str
    expires_ms: int  # the protocol's expirationTimestamp
    size: int  # of the file as the link serves it


def _hand_out(
    hub: Hub,
    request: Request,
    f: sharing.GrantedFile,
    t: sharing.SharedTable,
    app_id: str,
    before: int | None,
    after: int,
) -> _Handed:
    """The link to ``f`` the settings ask for (``sharing_links``): a pre-signed S3 URL of the
    file put into the lake bucket, or the hub's own sealed link."""
    seconds = links.link_seconds(hub.settings)
    store = _s3_files(hub)
    if store is not None:
        p = store.hand_out(f, seconds)
        return _Handed("presigned", p.url, p.expires_ms, p.size)
    url, expires_ms = _link(hub, request, f, t, app_id, before, after, seconds)
    return _Handed("hub", url, expires_ms, f.size)


def _handed_out(call: Any, kind: links.LinkKind, expires_ms: int | None, **what: Any) -> None:
    """Record in the call's audit record the kind of link handed out and when it expires: a
    pre-signed URL is never seen by the hub again, so this record is all there is of it."""
    doc: dict[str, Any] = {"links": kind, **what}
    if expires_ms is not None:
        doc["expires"] = (
            dt.datetime.fromtimestamp(expires_ms / 1000, dt.UTC).isoformat().replace("+00:00", "Z")
        )
    call.query = json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _link(
    hub: Hub,
    request: Request,
    f: sharing.GrantedFile,
    t: sharing.SharedTable,
    app_id: str,
    before: int | None,
    after: int,
    seconds: int = FILE_URL_TTL_S,
) -> tuple[str, int]:
    """A link to ``f`` that works for ``seconds`` (and its expiry in ms): sealed by the hub,
    naming the file, the dataset, the app and the snapshots it was made from."""
    expires = int(time.time()) + seconds
    kind = "snapshot" if before is None and f.id == sharing.file_id(t, after) else "changes"
    sealed = hub.cursors.seal([kind, f.id, t.code, app_id, expires, before, after], "delta-sharing-file")
    return f"{str(request.base_url).rstrip('/')}/api/v1/delta-sharing/files/{sealed}", expires * 1000


@router.get(
    "/shares/{share}/schemas/{schema}/tables/{table}/changes",
    response_class=StreamingResponse,
    responses=_LINES,
    summary="Read the change data feed of a table (Delta Sharing)",
)
def table_changes(
    share: str,
    schema: str,
    table: str,
    request: Request,
    hub: HubDep,
    call: CallDep,
    app_id: Recipient,
    starting_version: Annotated[int | None, Query(alias="startingVersion", ge=0)] = None,
    starting_timestamp: Annotated[str | None, Query(alias="startingTimestamp", max_length=40)] = None,
    ending_version: Annotated[int | None, Query(alias="endingVersion", ge=0)] = None,
    ending_timestamp: Annotated[str | None, Query(alias="endingTimestamp", max_length=40)] = None,
    include_historical_metadata: Annotated[str | None, Query(alias="includeHistoricalMetadata")] = None,
) -> StreamingResponse:
    """Row changes between two versions (inclusive), derived from the curated snapshots: each
    version's inserts, deletes and updates of what the grant shows, one file per version."""
    call.action = "sharing.changes"
    t = _table(hub, call, app_id, share, schema, table)
    lake = _lake(hub)
    found = sharing.versions(lake, t.code)
    if not found:
        raise HubError("version_not_found", table=t.name, version="any")
    if starting_version is not None:
        start = starting_version
    elif starting_timestamp is not None:
        start = sharing.first_since(found, t.name, starting_timestamp).number
    else:
        raise HubError("bad_document", why="give startingVersion or startingTimestamp")
    if ending_version is not None:
        end = ending_version
    elif ending_timestamp is not None:
        end = sharing.pick(found, t.name, timestamp=ending_timestamp).number
    else:
        end = found[-1].number
    if start >= len(found) or end >= len(found) or end < start:
        raise HubError("version_not_found", table=t.name, version=f"{start}..{end}")
    kind = links.link_kind(hub.settings)
    lines = []
    rows = 0
    last_expiry: int | None = None  # of the links handed out: the last one to stop working
    for v in found[start : end + 1]:
        prev = found[v.number - 1].snapshot_id if v.number > 0 else None
        f = sharing.change_file(lake, _cache(hub), t, prev, v.snapshot_id)
        if not f.rows:
            continue
        handed = _hand_out(hub, request, f, t, app_id, prev, v.snapshot_id)
        last_expiry = max(last_expiry or 0, handed.expires_ms)
        rows += f.rows
        lines.append(
            {
                "cdf": {
                    "url": handed.url,
                    "id": f.id,
                    "partitionValues": {},
                    "size": handed.size,
                    "timestamp": round(v.committed_at.timestamp() * 1000),
                    "version": v.number,
                    "expirationTimestamp": handed.expires_ms,
                }
            }
        )
    snapshot_file = sharing.granted_file(lake, _cache(hub), t, found[end].snapshot_id)
    head = _protocol_and_metadata(t, sharing.schema_string(snapshot_file.schema))
    _released(call, t.projection, rows)
    _handed_out(call, kind, last_expiry, versions=f"{start}..{end}", files=len(lines))
    return _ndjson([*head, *lines], found[end].number)


@router.get(
    "/files/{sealed}",
    response_class=FileResponse,
    responses={**errors(403), 200: {"content": {"application/octet-stream": {}}, "description": "Parquet"}},
    summary="A file handed out by a query (hub link)",
)
def download(sealed: str, hub: HubDep, call: CallDep) -> Response:
    """The hub link a query handed out (``sharing_links`` hub, or auto on a local warehouse),
    until it expires. The link is the credential (as S3's pre-signed URLs are): sealed by the
    hub, naming the file, the dataset, the app and the expiry. Unlike a pre-signed URL it is
    re-checked at download: the app must still hold the grant (a revoked grant stops the links
    handed out before)."""
    call.action = "sharing.file"
    try:
        sealed_values = hub.cursors.open(sealed, "delta-sharing-file")
        kind, file_id, code, app_id, expires, before, after = sealed_values
    except (BadCursor, ValueError):
        raise HubError("sharing_file_expired") from None
    call.dataset_code = str(code)
    from catalog.access.gate import Principal

    call.principal = Principal(kind="app", app_id=str(app_id))
    if int(expires) < time.time():
        raise HubError("sharing_file_expired")
    # the app's grant now must still give exactly this file (a revoked or changed grant stops it)
    now = [t for t in _tables(hub, str(app_id)) if t.code == code]
    expected = None
    if now:
        t = now[0]
        if kind == "snapshot":
            expected = sharing.file_id(t, int(after))
        else:
            expected = sharing.change_id(t, before, int(after))
    if expected != file_id:
        raise HubError("sharing_file_expired")
    # from the cache, or written again when this process's cache lacks it (another replica
    # handed the link out, the cache was cleared): the same snapshots and projection, the same file
    if kind == "snapshot":
        f = sharing.granted_file(_lake(hub), _cache(hub), now[0], int(after))
    else:
        f = sharing.change_file(_lake(hub), _cache(hub), now[0], before, int(after))
    if f.id != file_id:  # cannot happen: the id is derived from the same inputs
        raise HubError("sharing_file_expired")
    call.row_count = f.rows
    return FileResponse(f.path, media_type="application/octet-stream", headers={"Cache-Control": "no-store"})
