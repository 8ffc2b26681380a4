"""The gate every data call goes through: who is calling, what they may see, in what form.

Today the caller is anonymous and the gate enforces the directory's own rules: ``none``
data is never served, and sensitive fields are masked by their field rule. The
access-control layer replaces :func:`current_caller` (tokens) and extends :func:`decide`
(grants, expiry, rate limits, audit) without changing the endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from catalog.certificates import jsonable
from catalog.errors import ApiError
from catalog.masking import mask
from catalog.model import DatasetSpec, Sensitivity, ShareType


@dataclass(frozen=True)
class Caller:
    """Who is calling and for what (X-Road style purpose context)."""

    app_id: str | None = None
    end_user: str | None = None
    case_number: str | None = None


def current_caller() -> Caller:
    """The caller of this request (anonymous until authentication is added)."""
    return Caller()


def require_caller(caller: Caller) -> None:
    """Placeholder for the authentication requirement of certificate endpoints."""
    return None


@dataclass(frozen=True)
class Decision:
    """What the caller may see of a dataset: which fields, which of them masked."""

    fields: list[str]
    masked: dict[str, str] = field(default_factory=dict)  # field -> mask kind

    def shape(self, row: dict[str, Any]) -> dict[str, Any]:
        """Drop fields not allowed, mask the masked ones."""
        out = {}
        for name in self.fields:
            value = jsonable(row.get(name))
            kind = self.masked.get(name)
            out[name] = mask(kind, value) if kind and isinstance(value, str) else value
        return out


def decide(caller: Caller, spec: DatasetSpec) -> Decision:
    """The decision for one call; raises ApiError when refused."""
    if spec.share.type is ShareType.NONE:
        raise ApiError("not_shared", 403, code=spec.code)
    masked = {
        f.name: f.mask.value
        for f in spec.fields
        if f.sensitivity is Sensitivity.SENSITIVE and f.mask is not None
    }
    return Decision(fields=[f.name for f in spec.fields], masked=masked)


def certificate_view(c: dict[str, Any]) -> dict[str, Any]:
    """A certificate record as the API shows it."""
    keys = (
        "identifier",
        "type_code",
        "type_name",
        "holder_kind",
        "number",
        "holder_id",
        "holder_name",
        "issuer_code",
        "issuer_name",
        "valid_from",
        "valid_until",
        "status",
        "version",
        "face",
        "issued_at",
        "updated_at",
    )
    out = {k: jsonable(c.get(k)) for k in keys}
    if c.get("holder_kind") == "person":  # a citizen ID is personal data
        out["holder_id"] = mask("citizen_id", out["holder_id"])
    return out
