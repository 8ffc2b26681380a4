"""OpenAPI declarations of the error responses an endpoint can give."""

from __future__ import annotations

from typing import Any

from catalog.api.schemas.common import ErrorBody

_DESCRIPTIONS = {
    400: "bad request (stable error code in the body)",
    401: "no token, or the token is not valid",
    403: "refused: not shared, no grant, wrong role or party",
    404: "not found (or not visible to this caller: the two are not told apart)",
    408: "the request body did not arrive in time",
    409: "conflict with the current state",
    413: "the request body is too large",
    429: "rate limit reached; see Retry-After",
    503: "the audit log could not be written; nothing was served",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for these statuses, plus those any call can give: 400 (an unknown
    query parameter, too many of them), 408 and 413 (a body too slow or too large: see
    ``catalog.api.limits``) and 503 (the audit record could not be written)."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted({400, 408, 413, *statuses, 503}):
        entry: dict[str, Any] = {"model": ErrorBody, "description": _DESCRIPTIONS[status]}
        if status == 429:
            entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
        out[status] = entry
    return out
