"""Bodies of the audit endpoints."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from catalog.api.schemas.common import OutBody


class AuditOut(OutBody):
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


class AuditList(OutBody):
    items: list[AuditOut]
    count: int
    next_after: int | None = Field(description="pass as `after` for the next page")
