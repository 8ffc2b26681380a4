"""Response and request bodies of the access API (they make the OpenAPI document complete)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from catalog.errors import HubError


def _text_problem(value: Any, depth: int = 0) -> str | None:
    """Why a JSON value cannot be stored as text: a lone surrogate or NUL in a string, or a
    number that is not finite (JSON has no NaN; Python's parser lets it through)."""
    if isinstance(value, str):
        if "\x00" in value:
            return "text may not contain NUL characters"
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "text must be valid Unicode (a lone surrogate was sent)"
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return "numbers must be finite (NaN and Infinity are not JSON)"
    if depth > 32:
        return "the document is nested too deeply"
    if isinstance(value, dict):
        for k, v in value.items():
            problem = _text_problem(k, depth + 1) or _text_problem(v, depth + 1)
            if problem:
                return problem
    elif isinstance(value, list):
        for v in value:
            problem = _text_problem(v, depth + 1)
            if problem:
                return problem
    return None


class _In(BaseModel):
    """A request body: unknown members refused, every string storable as UTF-8 text.

    Unstorable text is answered 400 ``bad_text`` (a ``HubError`` passes through pydantic and
    FastAPI to the app's handler), not 422: the body has the schema's shape, its content is
    what the hub refuses."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        problem = _text_problem(data)
        if problem:
            raise HubError("bad_text", why=problem)
        return data


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(_Out):
    code: str = Field(description="stable error code; clients branch on it")
    message: str
    message_zh: str


class ErrorBody(_Out):
    error: ErrorDetail


class TokenResponse(_Out):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_in: int = Field(description="seconds until the token expires")


class TokenError(_Out):
    """RFC 6749 §5.2 error body (OAuth2 clients expect this shape at the token endpoint)."""

    error: str
    error_description: str
    error_description_zh: str


class DepartmentRef(_Out):
    code: str
    name: str


class FieldOut(_Out):
    name: str
    label: str
    type: str
    sensitivity: str
    mask: str | None
    description: str


class Freshness(_Out):
    last_published_at: dt.datetime | None
    snapshot_id: int | None
    rows_published: int | None
    pass_rate: float | None
    rows_quarantined: int | None


class QualityRun(_Out):
    run_id: str
    status: str
    started_at: dt.datetime
    rows_read: int | None
    rows_published: int | None
    rows_quarantined: int | None
    pass_rate: float | None


class DatasetEntry(_Out):
    code: str
    name: str
    summary: str
    department: DepartmentRef
    share: dict[str, Any]
    open: dict[str, Any]
    grade: str
    update_cycle: str
    format: str
    version: int
    subject_kind: str | None
    personal_data: bool = Field(description="calls need X-End-User-Id and X-Case-Number")


class DatasetDetail(DatasetEntry):
    primary_key: list[str]
    subject_field: str | None
    fields: list[FieldOut]
    freshness: Freshness | None
    quality_record: list[QualityRun] = Field(description="the latest sync runs, newest first")
    certificate_types: list[str]


class DatasetList(_Out):
    items: list[DatasetEntry]
    count: int


class RecordsPage(_Out):
    dataset: str
    fields: list[str] = Field(description="fields returned (granted); others are dropped")
    masked: list[str] = Field(description="returned fields shown masked")
    items: list[dict[str, Any]]
    count: int
    next_cursor: str | None


_WITHHELD = "null when the grant does not cover the field it comes from"


class CertificateOut(_Out):
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


class CertificateList(_Out):
    items: list[CertificateOut]
    count: int


class SubjectDataset(_Out):
    code: str
    name: str
    department: DepartmentRef
    fields: list[str]
    masked: list[str]
    items: list[dict[str, Any]]
    count: int
    truncated: bool


class SubjectView(_Out):
    subject: str
    datasets: list[SubjectDataset]
    certificates: list[CertificateOut]


class VerifyOut(_Out):
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


class VerifyRequest(_In):
    document: dict[str, Any] | None = Field(
        default=None, description="a signed certificate or signed copy as the hub handed it out"
    )
    qr: str | None = Field(default=None, description="the QR payload of a copy (SH1.…)")


class CopyRequest(_In):
    reason: str = Field(min_length=2, max_length=500, description="用途: why the copy is made")
    valid_days: int = Field(default=30, ge=1, le=90)


class CopyOut(_Out):
    copy_id: str
    document: dict[str, Any]
    qr: str
    expires_at: dt.datetime


class ApplicationIn(_In):
    dataset: str = Field(min_length=1, max_length=64)
    fields: list[str] | None = Field(default=None, description="fields asked for; omitted = all")
    clear_fields: list[str] = Field(default_factory=list, description="sensitive fields asked unmasked")
    purpose: str = Field(max_length=2000)
    legal_basis: str = Field(max_length=2000)
    requested_until: dt.date | None = None


class DecisionIn(_In):
    decision: Literal["approve", "refuse"]
    reason: str = Field(default="", max_length=2000)
    fields: list[str] | None = None
    clear_fields: list[str] | None = None
    valid_until: dt.date | None = None
    rate_limit: int | None = Field(default=None, ge=1, le=100_000)


class RevokeIn(_In):
    reason: str = Field(min_length=1, max_length=2000)


class ApplicationOut(_Out):
    id: int
    app_id: str
    dataset_code: str
    department_code: str
    dataset_version: int
    fields: list[str]
    clear_fields: list[str]
    purpose: str
    legal_basis: str
    requested_until: dt.date | None
    status: str
    submitted_at: dt.datetime
    deadline: dt.date
    decided_at: dt.datetime | None
    decided_by: str | None
    reason: str | None
    grant_id: int | None
    overdue: bool = Field(description="pending and past its deadline")
    late: bool = Field(description="decided (or withdrawn) after its deadline")


class ApplicationList(_Out):
    items: list[ApplicationOut]
    count: int


class GrantOut(_Out):
    id: int
    app_id: str
    dataset_code: str
    application_id: int
    fields: list[str]
    clear_fields: list[str]
    valid_from: dt.datetime
    valid_until: dt.datetime | None
    rate_limit: int
    status: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    revoked_by: str | None
    revoke_reason: str | None


class GrantList(_Out):
    items: list[GrantOut]
    count: int


class AuditOut(_Out):
    seq: int
    at: dt.datetime
    request_id: str
    actor_kind: str
    app_id: str | None
    staff: str | None
    end_user: str | None
    case_number: str | None
    method: str
    path: str
    action: str
    dataset_code: str | None
    datasets: dict[str, int] | None = Field(
        description="a subject view or certificate list: each dataset consulted, with the rows it gave"
    )
    certificate_id: str | None
    subject: str | None
    query: str | None = Field(description="what a lookup asked for besides the subject (JSON)")
    fields: list[str] | None = Field(
        description="what the disclosure projection released: <dataset>.<field>, or …:masked"
    )
    decision: str
    reason: str | None
    status: int
    row_count: int
    prev_hash: str
    hash: str


class AuditList(_Out):
    items: list[AuditOut]
    count: int
    next_after: int | None = Field(description="pass as `after` for the next page")


class Jwk(BaseModel):
    model_config = ConfigDict(extra="allow")
    kty: str
    crv: str
    x: str
    kid: str
    use: str
    alg: str


class Jwks(_Out):
    keys: list[Jwk]


class Health(_Out):
    status: Literal["ok"]
