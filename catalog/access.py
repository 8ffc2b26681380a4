"""The gate every data call goes through: who is calling, what they may see, in what form.

The rules (docs/security.md has the full model):

* ``none`` data is never served, to anyone (403 ``not_shared``).
* Personal data (a person subject, or any sensitive field) needs the purpose of the call:
  the end user and the case number (400 ``purpose_required``).
* An app sees a dataset's records only through an active, unexpired grant. Without one the
  refusal says why in the app's own terms (no grant, application pending or refused, grant
  expired or revoked) — about the app's standing, never about any record.
* Within a grant, fields not granted are dropped; sensitive fields granted in masked form
  are masked by their field rule (a sensitive field without a rule is masked fully).
* Each grant has a rate limit (requests per minute, 429 with ``Retry-After``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from catalog.certificates import jsonable
from catalog.errors import ApiError
from catalog.masking import mask
from catalog.model import DatasetSpec, Sensitivity, ShareType, SubjectKind


@dataclass(frozen=True)
class Principal:
    """An authenticated party (or the anonymous public) and the purpose of its call."""

    kind: Literal["app", "staff", "anonymous"] = "anonymous"
    app_id: str | None = None
    app_name: str | None = None
    username: str | None = None
    department_code: str | None = None  # None for hub-wide staff and the public
    roles: frozenset[str] = frozenset()
    end_user: str | None = None
    case_number: str | None = None

    @property
    def has_purpose(self) -> bool:
        return bool(self.end_user and self.case_number)

    def has_role(self, role: str) -> bool:
        return self.kind == "staff" and (role in self.roles or "admin" in self.roles)

    def covers(self, department_code: str) -> bool:
        """Staff scope: its own department, or every department for hub-wide staff."""
        return self.kind == "staff" and (
            self.department_code is None or self.department_code == department_code
        )


ANONYMOUS = Principal()


def is_personal(spec: DatasetSpec) -> bool:
    """Personal data: about a person, or holding any sensitive field."""
    if spec.subject is not None and spec.subject.kind is SubjectKind.PERSON:
        return True
    return any(f.sensitivity is Sensitivity.SENSITIVE for f in spec.fields)


@dataclass(frozen=True)
class Decision:
    """What the caller may see of a dataset: which fields, which of them masked."""

    fields: list[str]
    masked: dict[str, str] = field(default_factory=dict)  # field -> mask kind
    grant_id: int | None = None
    rate_limit: int | None = None

    def shape(self, row: dict[str, Any]) -> dict[str, Any]:
        """Drop fields not allowed, mask the masked ones."""
        out = {}
        for name in self.fields:
            value = jsonable(row.get(name))
            kind = self.masked.get(name)
            out[name] = mask(kind, value) if kind and isinstance(value, str) else value
        return out

    @property
    def complete(self) -> bool:
        """True when nothing is masked (dropping is judged by the caller against its needs)."""
        return not self.masked


def grant_decision(spec: DatasetSpec, fields: list[str], clear_fields: list[str], **extra: Any) -> Decision:
    """The shape a grant gives: granted fields in the directory's order, masked unless clear."""
    granted = set(fields)
    clear = set(clear_fields)
    out_fields = [f.name for f in spec.fields if f.name in granted]
    masked = {
        f.name: (f.mask.value if f.mask is not None else "full")
        for f in spec.fields
        if f.name in granted and f.sensitivity is Sensitivity.SENSITIVE and f.name not in clear
    }
    return Decision(fields=out_fields, masked=masked, **extra)


def check_shared(spec: DatasetSpec) -> None:
    """``none`` data is never served."""
    if spec.share.type is ShareType.NONE:
        raise ApiError("not_shared", 403, code=spec.code)


def check_purpose(principal: Principal, spec: DatasetSpec) -> None:
    """Personal data needs the end user and the case number of the call."""
    if is_personal(spec) and not principal.has_purpose:
        raise ApiError("purpose_required", 400)


#: access_state kind -> (error code, HTTP status) for refusals
REFUSALS: dict[str, tuple[str, int]] = {
    "none": ("no_grant", 403),
    "pending": ("application_pending", 403),
    "refused": ("application_refused", 403),
    "expired": ("grant_expired", 403),
    "revoked": ("grant_revoked", 403),
}


def open_decision(spec: DatasetSpec) -> Decision:
    """What the public sees of open data: every field that is not sensitive."""
    return Decision(fields=[f.name for f in spec.fields if f.sensitivity is not Sensitivity.SENSITIVE])
