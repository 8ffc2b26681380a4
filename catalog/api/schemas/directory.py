"""Bodies of the directory endpoints: datasets, fields, freshness, quality."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from catalog.api.schemas.common import OutBody


class DepartmentRef(OutBody):
    code: str
    name: str


class FieldOut(OutBody):
    name: str
    label: str
    type: str
    sensitivity: str
    mask: str | None
    description: str


class Freshness(OutBody):
    last_published_at: dt.datetime | None
    snapshot_id: int | None
    rows_published: int | None
    pass_rate: float | None
    rows_quarantined: int | None


class QualityRun(OutBody):
    run_id: str
    status: str
    started_at: dt.datetime
    rows_read: int | None
    rows_published: int | None
    rows_quarantined: int | None
    pass_rate: float | None


class DatasetEntry(OutBody):
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


class DatasetList(OutBody):
    items: list[DatasetEntry]
    count: int
