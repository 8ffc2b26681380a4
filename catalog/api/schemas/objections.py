"""Bodies of the data-objection endpoints (数据异议)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, StrictInt, StrictStr

from catalog.api.schemas.common import InBody, OutBody


class ObjectionIn(InBody):
    dataset: str = Field(min_length=1, max_length=64)
    record_key: dict[str, StrictStr | StrictInt] = Field(
        description="the record's key fields and values", max_length=10
    )
    field: str | None = Field(
        default=None, max_length=100, description="the field said to be wrong; omitted = the record"
    )
    reason: str = Field(max_length=2000)
    evidence: str | None = Field(default=None, max_length=4000)


class AnswerIn(InBody):
    status: Literal["corrected", "confirmed", "rejected"]
    answer: str = Field(default="", max_length=2000, description="required unless corrected")


class ObjectionOut(OutBody):
    id: int
    dataset_code: str
    department_code: str = Field(description="the providing department, which answers")
    record_key: dict[str, str | int | float]
    field: str | None
    reason: str
    evidence: str | None
    raised_by_kind: str
    raised_by: str
    raised_department: str | None
    raised_at: dt.datetime
    due_date: dt.date = Field(description="last working day for the answer")
    status: str
    overdue: bool = Field(description="open and past its due date")
    late: bool = Field(description="answered after its due date")
    answer: str | None
    answered_by: str | None
    answered_at: dt.datetime | None


class ObjectionList(OutBody):
    items: list[ObjectionOut]
    count: int
