"""Electronic certificates (电子证照): list, fetch, verify, annotated copies (加注件)."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Request

from catalog.access import disclosure
from catalog.access.gate import Principal, check_purpose
from catalog.api import cert_views
from catalog.api.context import (
    AppPrincipal,
    CallAudit,
    CallDep,
    Hub,
    HubDep,
    client_address,
    identify_quietly,
    limit,
    limit_grant,
    request_call,
    request_hub,
)
from catalog.api.errors_doc import errors
from catalog.api.schemas.certificates import (
    CertificateList,
    CertificateOut,
    CopyOut,
    CopyRequest,
    VerifyOut,
    VerifyRequest,
)
from catalog.certificates import issuing, signing
from catalog.certificates import verify as certificate_verify
from catalog.db import tables
from catalog.errors import HubError

router = APIRouter(prefix="/api/v1", tags=["certificates"])

_IDENT = Path(min_length=10, max_length=200, description="GB/T 36904 identifier 1.2.156.3005.2.…")


def _visible_row(
    hub: Hub, call: CallAudit, principal: Principal, identifier: str
) -> tuple[dict[str, Any], cert_views.TypeAccess]:
    """The certificate if the app may see it; 404 both when missing and when not visible."""
    call.certificate_id = identifier
    type_code = cert_views.type_of(identifier)
    ta = cert_views.type_access(hub, principal).get(type_code or "")
    if ta is None:
        call.reason = "no_grant" if type_code else "certificate_not_found"
        raise HubError("certificate_not_found", identifier=identifier)
    call.dataset_code = ta.dataset.spec.code
    check_purpose(
        principal, ta.dataset.spec, hub.purpose, always=hub.grade_policy[ta.dataset.spec.grade].purpose_always
    )
    assert principal.app_id is not None
    limit_grant(hub, principal.app_id, ta.dataset.spec, ta.grant.rate_limit)
    row = issuing.certificate(hub.engine, identifier)
    if row is None:
        raise HubError("certificate_not_found", identifier=identifier)
    call.subject = str(row["holder_id"])
    return row, ta


@router.get(
    "/subjects/{subject_id}/certificates",
    response_model=CertificateList,
    responses=errors(400, 401, 403, 429),
    summary="A holder's certificates, optionally of one type",
)
def subject_certificates(
    subject_id: Annotated[str, Path(min_length=1, max_length=32)],
    hub: HubDep,
    call: CallDep,
    principal: AppPrincipal,
    type: Annotated[
        str | None, Query(max_length=32, description="certificate type code (证照类型代码)")
    ] = None,
) -> dict[str, Any]:
    call.action = "certificates.list"
    call.subject = subject_id
    released = disclosure.Released()
    consulted: dict[str, int] = {}
    call.datasets = consulted
    items = cert_views.visible_certificates(
        hub, principal, subject_id, type, released=released, consulted=consulted
    )
    call.row_count = len(items)
    call.fields = released.names()
    return {"items": items, "count": len(items)}


@router.get(
    "/certificates/{identifier}",
    response_model=CertificateOut,
    responses=errors(400, 401, 403, 404, 429),
    summary="One certificate by identifier",
)
def certificate(
    identifier: Annotated[str, _IDENT], hub: HubDep, call: CallDep, principal: AppPrincipal
) -> dict[str, Any]:
    call.action = "certificates.get"
    row, ta = _visible_row(hub, call, principal, identifier)
    released = disclosure.Released()
    out = ta.projection.certificate(row, released)
    call.fields = released.names()
    call.row_count = 1
    return out


@router.get(
    "/certificates/{identifier}/verify",
    response_model=VerifyOut,
    responses=errors(429),
    summary="Verify a certificate held by the hub (public)",
)
async def verify_identifier(identifier: Annotated[str, _IDENT], request: Request) -> dict[str, Any]:
    """Signature over the stored content, current status (valid / revoked / expired) and the
    validity period. Anyone may call it (rate-limited per client address); it says nothing
    about the holder."""
    hub, call = request_hub(request), request_call(request)
    call.action = "certificates.verify"
    call.certificate_id = identifier
    limit(hub, f"verify:{client_address(request)}", hub.settings.public_verify_rate_limit)
    identify_quietly(request)  # a caller with a token is named in the audit record
    result = await hub.run_db(_verify_stored, hub, identifier)
    call.dataset_code = result.dataset_code  # so the owner's auditor sees who checks its certificates
    call.row_count = 1
    return result.to_json()


def _verify_stored(hub: Hub, identifier: str) -> certificate_verify.VerifyResult:
    with hub.reads() as reads:
        return certificate_verify.verify_identifier(
            hub.read_engine, hub.keys, identifier, lookup_with=reads.certificate
        )


@router.post(
    "/verify",
    response_model=VerifyOut,
    responses=errors(400, 429),
    summary="Verify a handed-out certificate, copy or QR payload (public)",
)
def verify_document(body: VerifyRequest, request: Request, hub: HubDep, call: CallDep) -> dict[str, Any]:
    """Give ``document`` (a signed certificate or signed copy as the hub handed it out) or
    ``qr`` (the payload of a copy's QR code). Checks the signature against the hub's keys;
    only when it holds, also that the content matches the hub's record, the status, and the
    copy's expiry. A document whose signature fails gets that answer and nothing else, so
    the endpoint cannot be used to test guesses against the hub's records. Rate-limited per
    client address."""
    call.action = "certificates.verify"
    limit(hub, f"verify:{client_address(request)}", hub.settings.public_verify_rate_limit)
    identify_quietly(request)
    if (body.document is None) == (body.qr is None):
        raise HubError("bad_document", why="give exactly one of document or qr")
    if body.qr is not None:
        result = certificate_verify.verify_qr(hub.engine, hub.keys, body.qr)
    else:
        assert body.document is not None
        result = certificate_verify.verify_document(hub.engine, hub.keys, body.document)
    call.certificate_id = result.identifier
    call.dataset_code = result.dataset_code
    call.row_count = 1
    return result.to_json()


@router.post(
    "/certificates/{identifier}/copies",
    response_model=CopyOut,
    status_code=201,
    responses=errors(400, 401, 403, 404, 429),
    summary="Issue an annotated copy (加注件) with the reason for use and an expiry",
)
def make_copy(
    identifier: Annotated[str, _IDENT], body: CopyRequest, hub: HubDep, call: CallDep, principal: AppPrincipal
) -> dict[str, Any]:
    """A signed copy for one case: it names the app, the reason, the end user and case, and
    expires after ``valid_days``. Its QR payload can be checked offline with the JWKS. Needs a
    grant that shows the whole certificate (nothing dropped or masked)."""
    call.action = "certificates.copy"
    row, ta = _visible_row(hub, call, principal, identifier)
    released = disclosure.Released()
    view = ta.projection.certificate(row, released)
    if not view["complete"]:
        raise HubError("copy_needs_full_grant", identifier=identifier)
    if row["status"] != "valid":
        raise HubError("certificate_not_valid", identifier=identifier, status=row["status"])
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    expires_at = now + dt.timedelta(days=body.valid_days)
    copy_id = "cp-" + secrets.token_hex(8)
    key = hub.keys.active("certificate")
    document = signing.make_copy(
        key,
        signing.document_of(view),
        copy_id=copy_id,
        app_id=principal.app_id or "",
        app_name=principal.app_name or "",
        reason=body.reason,
        end_user=principal.end_user,
        case_number=principal.case_number,
        issued_at=now,
        expires_at=expires_at,
    )
    qr = signing.qr_payload(key, view, copy_id=copy_id, expires_at=expires_at)
    with hub.engine.begin() as conn:
        conn.execute(
            sa.insert(tables.certificate_copies).values(
                copy_id=copy_id,
                identifier=identifier,
                app_id=principal.app_id,
                reason=body.reason,
                end_user=principal.end_user,
                case_number=principal.case_number,
                issued_at=now,
                expires_at=expires_at,
                document=document,
            )
        )
    call.fields = released.names()
    call.row_count = 1
    return {"copy_id": copy_id, "document": document, "qr": qr, "expires_at": expires_at}
