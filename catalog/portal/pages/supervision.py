"""Supervision (电子监察): each department's scorecard and the quarterly report (通报), for the
hub's admins and auditors. A department's own auditor sees its own scorecard only."""

from __future__ import annotations

import csv
import io
from typing import Annotated

from fastapi import APIRouter, Form, Query
from fastapi.responses import Response

from catalog import anomalies
from catalog.access import app_registry
from catalog.clock import utc_now
from catalog.errors import HubError
from catalog.portal import i18n
from catalog.portal.web import NavItem, Page, PageDep, register_nav
from catalog.supervision import Quarter, Scorecard, scorecards

router = APIRouter(prefix="/portal")

i18n.register(
    {
        "nav.supervision": ("电子监察", "Supervision"),
        "sup.title": ("电子监察：{quarter} 各部门履职情况", "Supervision: departments in {quarter}"),
        "sup.report_title": ("{quarter} 政务数据共享工作通报", "Data sharing report, {quarter}"),
        "sup.quarter": ("季度", "Quarter"),
        "sup.show": ("查看", "Show"),
        "sup.report": ("打印版通报", "Printable report"),
        "sup.department": ("部门", "Department"),
        "sup.datasets": ("目录数", "Datasets"),
        "sup.completeness": ("目录完整率", "Directory complete"),
        "sup.freshness": ("按时更新率", "Fresh"),
        "sup.quality": ("质量合格率", "Pass rate"),
        "sup.quality_before": ("上季度", "previous quarter"),
        "sup.applications": ("申请按时办结率", "Applications on time"),
        "sup.objections": ("异议按时答复率", "Objections on time"),
        "sup.corrections": ("未整改问题数据", "Open corrections"),
        "sup.ratio": ("{rate}（{ok}/{due}）", "{rate} ({ok}/{due})"),
        "sup.none_due": ("本季度无到期事项", "nothing due"),
        "sup.findings": ("问题清单", "Findings"),
        "sup.incomplete": ("{code} 目录信息不完整：{lacks}", "{code}: directory entry lacks {lacks}"),
        "sup.stale": ("{code} 未按更新周期更新", "{code} is not updated as declared"),
        "sup.late_apps": (
            "{n} 件共享申请逾期未办结或超期办结",
            "{n} applications decided late or still overdue",
        ),
        "sup.late_objections": (
            "{n} 件数据异议逾期未答复或超期答复",
            "{n} objections answered late or still overdue",
        ),
        "sup.no_findings": ("未发现问题。", "No findings."),
        "anom.title": ("异常访问", "Access anomalies"),
        "anom.intro": (
            "应用的调用与其自身历史明显不符：短时间内查询的主体数远超以往（疑似批量爬取），或在其从不使用的时段调用。"
            "按数据分级策略，重要、核心数据在处理前限制调用频率。",
            "Apps calling unlike their own history: far more distinct subjects than ever before (a "
            "scraping pattern), or calls at hours they never use. By the grade policy, important and core "
            "data are throttled until the anomaly is cleared.",
        ),
        "anom.none": ("当前没有未处理的异常访问。", "No open access anomalies."),
        "anom.app": ("应用", "App"),
        "anom.dataset": ("信息资源", "Dataset"),
        "anom.kind": ("类型", "Kind"),
        "anom.kind.distinct_subjects": ("查询主体数激增", "many more distinct subjects"),
        "anom.kind.off_hours": ("非惯常时段调用", "calls at unusual hours"),
        "anom.seen": ("本时段 / 以往峰值 / 阈值", "now / usual peak / threshold"),
        "anom.detected": ("发现时间", "Detected"),
        "anom.throttle": ("限速", "Throttle"),
        "anom.throttled": ("每分钟 {n} 次，至 {until}", "{n} a minute until {until}"),
        "anom.flag_only": ("仅提示", "flagged only"),
        "anom.reason": ("处理说明", "What was found"),
        "anom.clear": ("处理完毕", "Clear"),
        "anom.cleared": ("异常访问 {id} 已处理。", "Access anomaly {id} cleared."),
        "sup.generated": ("生成时间：{at}", "Generated {at}"),
        "sup.definitions": (
            "口径：目录完整指摘要、分类、全部数据项说明及同步计划齐全；"
            "按时更新指最近一次成功同步不晚于更新周期的 1.5 倍；"
            "按时办结与按时答复按工作日计算，截止日在本季度内的事项计入。",
            "Definitions: a complete entry has a summary, a category, a description of every field and a "
            "schedule; fresh means the last successful sync is within 1.5 update cycles; on time counts "
            "items whose working-day deadline fell in the quarter.",
        ),
    }
)
register_nav(NavItem("nav.supervision", "/portal/supervision", roles=("admin", "auditor"), order=80))


def _quarter(page: Page, text: str) -> Quarter:
    if not text:
        return Quarter.of(utc_now().date())
    try:
        return Quarter.parse(text)
    except ValueError:
        raise HubError("bad_quarter", value=text[:8]) from None


def _cards(page: Page, quarter: Quarter) -> list[Scorecard]:
    user = page.require("admin", "auditor")
    cards = scorecards(page.hub.engine, quarter)
    if user.department_code is not None:  # a department's auditor: its own scorecard only
        cards = [c for c in cards if c.department_code == user.department_code]
    return cards


def ratio(page: Page, rate: float | None, ok: int, due: int) -> str:
    if not due or rate is None:
        return page.t("sup.none_due")
    return page.t("sup.ratio", rate=i18n.format_percent(rate, page.lang), ok=ok, due=due)


def _scorecards_page(page: Page, quarter: str, *, report: bool, cleared: int | None = None) -> Response:
    q = _quarter(page, quarter)
    cards = _cards(page, q)
    user = page.require("admin", "auditor")
    page.audit("portal.supervision_report" if report else "portal.supervision")
    # access anomalies: the hub sees all; a department's staff its own datasets' only
    flags = anomalies.list_anomalies(page.hub.engine, department_code=user.department_code)
    names = {a.app_id: f"{a.name}（{a.department_code}）" for a in app_registry.list_apps(page.hub.engine)}
    return page.render(
        "supervision.html",
        quarter=q,
        cards=cards,
        ratio=lambda *a: ratio(page, *a),
        report=report,
        now=utc_now(),
        flags=flags,
        app_names=names,
        may_clear=user.department_code is None and user.has("admin"),
        cleared=cleared,
    )


@router.get("/supervision")
def supervision(
    page: PageDep, quarter: Annotated[str, Query(max_length=8)] = "", cleared: int | None = None
) -> Response:
    return _scorecards_page(page, quarter, report=False, cleared=cleared)


@router.post("/anomalies/{anomaly_id}/clear")
def clear_anomaly(
    page: PageDep, anomaly_id: int, reason: Annotated[str, Form(max_length=2000)] = ""
) -> Response:
    """A hub-wide admin closes an access anomaly (its throttle ends)."""
    user = page.require("admin")
    page.audit("portal.anomaly_clear")
    if user.department_code is not None:
        page.refuse()
    anomalies.clear(page.hub.engine, anomaly_id, by=user.username, reason=reason)
    page.hub.throttles.forget()
    return page.redirect(f"/portal/supervision?cleared={anomaly_id}")


@router.get("/supervision/report")
def report(page: PageDep, quarter: Annotated[str, Query(max_length=8)] = "") -> Response:
    return _scorecards_page(page, quarter, report=True)


@router.get("/supervision/report.csv")
def report_csv(page: PageDep, quarter: Annotated[str, Query(max_length=8)] = "") -> Response:
    q = _quarter(page, quarter)
    cards = _cards(page, q)
    page.audit("portal.supervision_csv")
    buf = io.StringIO()
    buf.write("\ufeff")
    w = csv.writer(buf)
    keys = (
        "sup.department",
        "sup.datasets",
        "sup.completeness",
        "sup.freshness",
        "sup.quality",
        "sup.quality_before",
        "sup.applications",
        "sup.objections",
        "sup.corrections",
    )
    w.writerow([page.t(k) for k in keys])
    for c in cards:
        w.writerow(
            [
                c.department_name,
                c.datasets,
                _num(c.completeness),
                _num(c.freshness),
                _num(c.pass_rate),
                _num(c.pass_rate_before),
                _num(c.applications.rate),
                _num(c.objections.rate if c.objections else None),
                "" if c.open_corrections is None else c.open_corrections,
            ]
        )
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="supervision-{q}.csv"'},
    )


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
