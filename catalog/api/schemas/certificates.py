"""Bodies of the certificate endpoints: certificates, verification, annotated copies."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from catalog.api.schemas.common import InBody, OutBody

_WITHHELD = "null when the grant does not cover the field it comes from"


class CertificateOut(OutBody):
    """A certificate through the caller's disclosure projection (docs/security.md)."""

    identifier: str
    type_code: str
    type_name: str
    holder_kind: str
    number: str | None = Field(description="证照编号, from the mapping's number field; " + _WITHHELD)
    holder_id: str | None = Field(description="持证主体代码, from the subject field; " + _WITHHELD)
    holder_name: str | None = Field(description="持证主体名称, from its field; " + _WITHHELD)
    issuer_code: str
    issuer_name: str
    valid_from: str | None = Field(description="有效期起始; " + _WITHHELD)
    valid_until: str | None = Field(description="有效期截止 (null: no end); " + _WITHHELD)
    status: str | None = Field(
        description="valid / revoked / expired; null unless its source fields are granted in clear"
    )
    version: int
    face: dict[str, Any] = Field(description="the face entries the grant covers, masked as the grant says")
    issued_at: str
    complete: bool = Field(description="true when nothing was dropped or masked for this caller")
    signed: dict[str, Any] | None = Field(
        description="the signed document {certificate, signature}; only when complete"
    )


class CertificateList(OutBody):
    items: list[CertificateOut]
    count: int


class KeyStateOut(OutBody):
    kid: str
    status: str = Field(description="active, retired or withdrawn")
    withdrawn_since: str | None = Field(
        default=None, description="a withdrawn key's signatures from this time (UTC) are not trusted"
    )


class VerifyOut(OutBody):
    valid: bool
    identifier: str | None
    status: str | None
    checks: dict[str, bool] = Field(
        description="each check run; only `signature` when a document's signature does not verify"
    )
    problems: list[str]
    superseded_by: str | None = Field(
        default=None,
        description="the newer version's identifier, given only for a document the hub signed",
    )
    key: KeyStateOut | None = Field(
        default=None, description="the state of the certificate key the signature names, if the hub knows it"
    )


class VerifyRequest(InBody):
    document: dict[str, Any] | None = Field(
        default=None, description="a signed certificate or signed copy as the hub handed it out"
    )
    qr: str | None = Field(default=None, description="the QR payload of a copy (SH1.…)")


class CopyRequest(InBody):
    reason: str = Field(min_length=2, max_length=500, description="用途: why the copy is made")
    valid_days: int = Field(default=30, ge=1, le=90)


class CopyOut(OutBody):
    copy_id: str
    document: dict[str, Any]
    qr: str
    expires_at: dt.datetime
