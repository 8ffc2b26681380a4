"""What every body of the access API shares: strict inputs, outputs, the error body, health."""

from __future__ import annotations

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


class InBody(BaseModel):
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


class OutBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(OutBody):
    code: str = Field(description="stable error code; clients branch on it")
    message: str
    message_zh: str


class ErrorBody(OutBody):
    error: ErrorDetail


class Health(OutBody):
    status: Literal["ok"]
