"""The gate every data call goes through: who is calling, what they may see, in what form.

The rules (docs/security.md has the full model):

* ``none`` data is never served, to anyone (403 ``not_shared``).
* Personal data (a person subject, or any sensitive field) needs the purpose of the call:
  the end user and the case number (400 ``purpose_required``).
* An app sees a dataset's records only through an active, unexpired grant. Without one the
  refusal says why in the app's own terms (no grant, application pending or refused, grant
  expired or revoked) — about the app's standing, never about any record.
* Within a grant, what the app sees is the one disclosure projection of ``catalog.access.disclosure``.
* Each grant has a rate limit (requests per minute, 429 with ``Retry-After``), counted per
  app and dataset: a new grant does not reset it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from catalog.access.purpose import DEFAULT_RULES, PurposeRules
from catalog.directory.model import DatasetSpec, Sensitivity, ShareType, SubjectKind
from catalog.errors import HubError


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


def check_shared(spec: DatasetSpec) -> None:
    """``none`` data is never served."""
    if spec.share.type is ShareType.NONE:
        raise HubError("not_shared", code=spec.code)


def check_purpose(
    principal: Principal, spec: DatasetSpec, rules: PurposeRules = DEFAULT_RULES, *, always: bool = False
) -> None:
    """Personal data — and, with ``always``, any data of a grade whose policy says so (important
    and core by default) — needs the end user and the case number of the call, in the
    deployment's formats (400 ``purpose_required`` / ``purpose_invalid``)."""
    if always or is_personal(spec):
        rules.check(principal.end_user, principal.case_number)


#: access_state kind -> the error code of the refusal
REFUSALS: dict[str, str] = {
    "none": "no_grant",
    "pending": "application_pending",
    "refused": "application_refused",
    "expired": "grant_expired",
    "revoked": "grant_revoked",
}


def rate_key(app_id: str, dataset_code: str) -> str:
    """The rate-limit budget of an app on a dataset: one per pair, whatever grant it holds."""
    return f"rate:{app_id}:{dataset_code}"
