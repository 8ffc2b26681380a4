"""Bodies of the record and subject-view endpoints."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from catalog.api.schemas.certificates import CertificateOut
from catalog.api.schemas.common import OutBody
from catalog.api.schemas.directory import DepartmentRef


class RecordsPage(OutBody):
    dataset: str
    fields: list[str] = Field(description="fields returned (granted); others are dropped")
    masked: list[str] = Field(description="returned fields shown masked")
    items: list[dict[str, Any]]
    count: int
    next_cursor: str | None


class SubjectDataset(OutBody):
    code: str
    name: str
    department: DepartmentRef
    fields: list[str]
    masked: list[str]
    items: list[dict[str, Any]]
    count: int
    truncated: bool


class SubjectView(OutBody):
    subject: str
    datasets: list[SubjectDataset]
    certificates: list[CertificateOut]
