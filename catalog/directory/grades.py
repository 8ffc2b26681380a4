"""The grade policy (数据分级管控): what a dataset's security grade (一般 / 重要 / 核心, GB/T
43697-2024) allows, in one table a data authority can read.

Per grade: whether the data may be open; whether a grant may be made automatically; the
longest grant period; whether sensitive fields in clear need a second approval by the hub's
data authority (双人审批) after the owner's; whether the purpose headers are required on every
call; whether bulk access (open download, file sharing) is allowed; the default and maximum rate
limit of a grant; how long audit records are kept at least (``audit_retention_days``: the
minimum ``sharehub audit archive`` enforces, never below :data:`AUDIT_RETENTION_FLOOR_DAYS`);
how far an app is slowed on the dataset while an access anomaly about it is open
(``anomaly_rate_limit``, :mod:`catalog.anomalies`).

Defaults are in :data:`DEFAULTS`; a deployment overrides any of them per grade with the
``grade_policy`` setting (``SHAREHUB_GRADE_POLICY='{"important": {"max_grant_days": 180}}'``).
``sharehub policy show`` and the portal print the effective table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from catalog.directory.model import Grade

#: the shortest audit retention a deployment may set: 网络安全法 第二十一条 requires network logs
#: to be kept at least six months
AUDIT_RETENTION_FLOOR_DAYS = 180

#: N years of audit retention in days, counting every leap day N years can hold: 365 × N days
#: would fall up to three days short of the years the law asks for
YEARS_3, YEARS_5, YEARS_10 = 365 * 3 + 1, 365 * 5 + 2, 365 * 10 + 3

GRADE_NAMES = {Grade.GENERAL: "一般数据", Grade.IMPORTANT: "重要数据", Grade.CORE: "核心数据"}


@dataclass(frozen=True)
class GradeRules:
    """What one grade allows."""

    may_be_open: bool
    may_auto_grant: bool
    max_grant_days: int | None  # None: no limit
    clear_needs_second_approval: bool
    purpose_always: bool
    bulk_allowed: bool
    default_rate_limit: int  # requests per minute
    max_rate_limit: int
    audit_retention_days: int  # the minimum: records are archived only after it
    #: calls a minute an app may make on the dataset while an access anomaly (异常访问) about
    #: it is open (catalog.anomalies); None: the anomaly is flagged, not throttled
    anomaly_rate_limit: int | None = None


DEFAULTS: dict[Grade, GradeRules] = {
    Grade.GENERAL: GradeRules(
        may_be_open=True,
        may_auto_grant=True,
        max_grant_days=None,
        clear_needs_second_approval=False,
        purpose_always=False,
        bulk_allowed=True,
        default_rate_limit=600,
        max_rate_limit=6000,
        audit_retention_days=YEARS_3,
    ),
    Grade.IMPORTANT: GradeRules(
        may_be_open=False,
        may_auto_grant=True,
        max_grant_days=365,
        clear_needs_second_approval=False,
        purpose_always=True,
        bulk_allowed=False,
        default_rate_limit=120,
        max_rate_limit=600,
        audit_retention_days=YEARS_5,
        anomaly_rate_limit=30,
    ),
    Grade.CORE: GradeRules(
        may_be_open=False,
        may_auto_grant=False,
        max_grant_days=90,
        clear_needs_second_approval=True,
        purpose_always=True,
        bulk_allowed=False,
        default_rate_limit=60,
        max_rate_limit=120,
        audit_retention_days=YEARS_10,
        anomaly_rate_limit=10,
    ),
}

FIELDS = tuple(f.name for f in dataclasses.fields(GradeRules))


class GradePolicy:
    """The effective policy: :data:`DEFAULTS` with the deployment's overrides."""

    def __init__(self, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        rules = dict(DEFAULTS)
        for grade_name, changes in (overrides or {}).items():
            try:
                grade = Grade(grade_name)
            except ValueError:
                raise ValueError(
                    f"grade_policy: unknown grade {grade_name!r} (general, important, core)"
                ) from None
            unknown = set(changes) - set(FIELDS)
            if unknown:
                raise ValueError(f"grade_policy.{grade_name}: unknown rule(s) {', '.join(sorted(unknown))}")
            rules[grade] = dataclasses.replace(rules[grade], **dict(changes))
        for grade, r in rules.items():
            if r.default_rate_limit > r.max_rate_limit:
                raise ValueError(f"grade_policy.{grade.value}: default_rate_limit is above max_rate_limit")
            if r.max_grant_days is not None and r.max_grant_days < 1:
                raise ValueError(f"grade_policy.{grade.value}: max_grant_days must be at least 1")
            if r.anomaly_rate_limit is not None and r.anomaly_rate_limit < 1:
                raise ValueError(
                    f"grade_policy.{grade.value}: anomaly_rate_limit must be at least 1 (or null)"
                )
            days = r.audit_retention_days
            if isinstance(days, bool) or not isinstance(days, int) or days < AUDIT_RETENTION_FLOOR_DAYS:
                raise ValueError(
                    f"grade_policy.{grade.value}: audit_retention_days must be a whole number of days, "
                    f"at least {AUDIT_RETENTION_FLOOR_DAYS} (网络安全法 第二十一条: network logs are kept "
                    f"at least six months), not {days!r}"
                )
        self.rules = rules

    def __getitem__(self, grade: Grade | str) -> GradeRules:
        return self.rules[Grade(grade)]

    def table(self) -> list[dict[str, Any]]:
        """The effective table, one row per grade (for ``sharehub policy show`` and the portal)."""
        return [
            {"grade": g.value, "name": GRADE_NAMES[g], **dataclasses.asdict(r)} for g, r in self.rules.items()
        ]


DEFAULT_POLICY = GradePolicy()


def policy_of(settings: Any) -> GradePolicy:
    """The policy of the settings (``grade_policy``; the defaults when unset)."""
    overrides = getattr(settings, "grade_policy", None)
    return GradePolicy(overrides) if overrides else DEFAULT_POLICY
