"""Bodies of the application and grant endpoints."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from catalog.api.schemas.common import InBody, OutBody


class ApplicationIn(InBody):
    dataset: str = Field(min_length=1, max_length=64)
    fields: list[str] | None = Field(default=None, description="fields asked for; omitted = all")
    clear_fields: list[str] = Field(default_factory=list, description="sensitive fields asked unmasked")
    purpose: str = Field(max_length=2000)
    legal_basis: str = Field(max_length=2000)
    requested_until: dt.date | None = None


class DecisionIn(InBody):
    decision: Literal["approve", "refuse"]
    reason: str = Field(default="", max_length=2000)
    fields: list[str] | None = None
    clear_fields: list[str] | None = None
    valid_until: dt.date | None = None
    rate_limit: int | None = Field(default=None, ge=1, le=100_000)


class RevokeIn(InBody):
    reason: str = Field(min_length=1, max_length=2000)


class ApplicationOut(OutBody):
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
    first_decided_by: str | None = Field(
        default=None,
        description="双人审批: the owner who approved it for the data authority's second approval",
    )
    first_decided_at: dt.datetime | None = None
    late: bool = Field(description="decided (or withdrawn) after its deadline")


class ApplicationList(OutBody):
    items: list[ApplicationOut]
    count: int


class GrantOut(OutBody):
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
    narrowed_at: dt.datetime | None = Field(default=None, description="when the grade policy narrowed it")
    narrowed_reason: str | None = Field(default=None, description="why: the dataset's grade was raised")


class GrantList(OutBody):
    items: list[GrantOut]
    count: int
