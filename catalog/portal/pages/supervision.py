"""Supervision (电子监察): each department's scorecard and the quarterly report (通报), for the
hub's admins and auditors. A department's own auditor sees its own scorecard only."""

from __future__ import annotations

import csv
import io
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

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


def _scorecards_page(page: Page, quarter: str, *, report: bool) -> Response:
    q = _quarter(page, quarter)
    cards = _cards(page, q)
    page.audit("portal.supervision_report" if report else "portal.supervision")
    return page.render(
        "supervision.html",
        quarter=q,
        cards=cards,
        ratio=lambda *a: ratio(page, *a),
        report=report,
        now=utc_now(),
    )


@router.get("/supervision")
def supervision(page: PageDep, quarter: Annotated[str, Query(max_length=8)] = "") -> Response:
    return _scorecards_page(page, quarter, report=False)


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
