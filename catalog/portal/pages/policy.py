"""The grade policy (数据分级管控) as the hub applies it: anyone may read it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from catalog.directory.grades import FIELDS, policy_of
from catalog.portal import i18n
from catalog.portal.web import NavItem, PageDep, register_nav

router = APIRouter(prefix="/portal")

i18n.register(
    {
        "nav.policy": ("分级管控", "Grade policy"),
        "policy.title": ("数据分级管控策略", "The grade policy"),
        "policy.intro": (
            "数据的安全分级决定平台允许的操作。下表是本平台当前生效的策略（默认值及本平台的调整）。",
            "A dataset's security grade decides what the hub allows. This is the policy in force here "
            "(the defaults with this hub's changes).",
        ),
        "policy.rule": ("规则", "Rule"),
        "policy.unlimited": ("不限", "no limit"),
        "rule.may_be_open": ("可作为开放数据", "may be open data"),
        "rule.may_auto_grant": ("无条件共享时可自动授权", "may be granted automatically"),
        "rule.max_grant_days": ("授权最长期限（天）", "longest grant (days)"),
        "rule.clear_needs_second_approval": (
            "明文敏感字段需数据主管部门二次审批",
            "clear sensitive fields need a second approval",
        ),
        "rule.purpose_always": ("每次调用须说明经办人与办件", "every call states end user and case"),
        "rule.bulk_allowed": ("允许批量获取（下载、文件共享）", "bulk access (downloads, files)"),
        "rule.default_rate_limit": ("默认调用频率（次/分钟）", "default rate limit (per minute)"),
        "rule.max_rate_limit": ("最高调用频率（次/分钟）", "highest rate limit (per minute)"),
        "rule.audit_retention_days": ("日志保存期限（天）", "audit kept for (days)"),
        "rule.anomaly_rate_limit": (
            "异常访问时限速（次/分钟）",
            "while an access anomaly is open (per minute)",
        ),
    }
)
register_nav(NavItem("nav.policy", "/portal/policy", order=90))


@router.get("/policy")
def policy_page(page: PageDep) -> Response:
    page.audit("portal.policy")
    return page.render("policy.html", rows=policy_of(page.hub.settings).table(), fields=FIELDS)
