"""Who used my data (数据使用记录): the audit log for a department's auditors and publishers (the
records concerning its datasets) and for hub-wide auditors (everything) — filters, daily totals
per app, CSV export, and the chain's state. The scope and what each reader sees of a record are
the API's (:mod:`catalog.api.routers.audit`)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading
import time
from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from catalog import audit
from catalog.access import app_registry
from catalog.api.routers.audit import as_seen_by_department
from catalog.directory import store
from catalog.errors import HubError
from catalog.portal import i18n
from catalog.portal.charts import bar_chart
from catalog.portal.web import NavItem, Page, PageDep, register_nav
from catalog.values import spreadsheet_text

router = APIRouter(prefix="/portal")

i18n.register(
    {
        "nav.audit": ("数据使用", "Data use"),
        "aud.title": ("数据使用记录", "Who used the data"),
        "aud.app": ("应用", "App"),
        "aud.dataset": ("数据资源", "Dataset"),
        "aud.end_user": ("经办人", "End user"),
        "aud.case": ("办件编号", "Case number"),
        "aud.from": ("起始日期", "From"),
        "aud.to": ("截止日期", "To"),
        "aud.any": ("全部", "any"),
        "aud.filter": ("查询", "Filter"),
        "aud.export": ("导出 CSV", "Export CSV"),
        "aud.time": ("时间", "Time"),
        "aud.staff": ("工作人员", "Staff"),
        "aud.action": ("操作", "Action"),
        "aud.fields": ("提供的数据项", "Fields released"),
        "aud.decision": ("结果", "Decision"),
        "aud.rows": ("行数", "Rows"),
        "aud.allow": ("允许", "allowed"),
        "aud.deny": ("拒绝", "refused"),
        "aud.none": ("没有符合条件的记录。", "No record matches."),
        "aud.older": ("更早的记录", "Older records"),
        "aud.daily": ("每日调用量", "Calls per day"),
        "aud.per_app": ("各应用调用次数", "Calls by app"),
        "aud.app_chart": ("{app} 每日调用次数", "{app}: calls per day"),
        "aud.busiest": ("调用最多的应用，每日调用量", "The busiest apps, calls per day"),
        "aud.totals_csv": ("按日按应用的调用次数（CSV）", "Calls per day and app (CSV)"),
        "aud.chart": ("{from_} 至 {to} 每日调用次数", "Calls per day, {from_} to {to}"),
        "aud.day": ("日期", "Day"),
        "aud.calls": ("调用次数", "Calls"),
        "aud.chain": ("日志链", "The chain"),
        "aud.head": ("当前链尾：第 {seq} 条，哈希 {hash}", "Head: record {seq}, hash {hash}"),
        "aud.empty": ("日志为空。", "The log is empty."),
        "aud.verify": ("立即校验整条日志链", "Verify the whole chain now"),
        "aud.verified_ok": (
            "校验通过：{n} 条记录，链尾第 {seq} 条，哈希 {hash}。",
            "Verified: {n} records, head {seq}, hash {hash}.",
        ),
        "aud.verified_bad": ("校验发现问题：", "Verification found problems:"),
        "aud.no_app": ("（工作人员或匿名）", "(staff or anonymous)"),
        "aud.archived": (
            "第 {seq} 条及之前的记录（均早于 {date}）已过留存期归档，不在本页显示。",
            "Records up to number {seq} (all before {date}) are past their retention and archived: "
            "they are not shown here.",
        ),
        "aud.verified_archives": (
            "在此之前的 {n} 条记录已归档（{k} 个归档文件），归档链连续。",
            "Before them, {n} records are archived ({k} archive files), a continuous chain.",
        ),
    }
)
register_nav(NavItem("nav.audit", "/portal/audit", roles=("auditor", "publisher"), order=60))

PAGE = 50
EXPORT_MAX = 100_000
#: the daily totals are up to this old: counting a month of a busy log takes a while, and the
#: chart need not change with every call (the records below it are always current)
TOTALS_TTL_S = 60.0
_TOTALS: dict[tuple[Any, ...], tuple[float, list[tuple[str, str | None, int]]]] = {}
_TOTALS_LOCK = threading.Lock()


def _daily_totals(page: Page, f: dict[str, Any]) -> list[tuple[str, str | None, int]]:
    codes = f["dataset_codes"]
    key = (
        id(page.hub.engine),
        page.hub.engine.url.render_as_string(hide_password=True),
        *(v for k, v in sorted(f.items()) if k != "dataset_codes"),
        None if codes is None else tuple(sorted(codes)),
    )
    now = time.monotonic()
    with _TOTALS_LOCK:
        hit = _TOTALS.get(key)
    if hit is not None and now - hit[0] < TOTALS_TTL_S:
        return hit[1]
    totals = audit.daily_totals(page.hub.engine, **f)
    with _TOTALS_LOCK:
        if len(_TOTALS) > 512:
            _TOTALS.clear()
        _TOTALS[key] = (now, totals)
    return totals


DAYS_DEFAULT = 30


#: more datasets than this in scope: the dataset filter is a text field, not a list
SELECT_MAX = 300


def _scope(page: Page) -> tuple[list[str] | None, list[store.DatasetName]]:
    """The dataset codes the reader's records are limited to (None: all), and the datasets."""
    user = page.require("auditor", "publisher")
    if user.department_code is None:
        if not user.has("auditor"):
            page.refuse()
        return None, store.dataset_names(page.hub.engine, limit=SELECT_MAX + 1)
    own = store.dataset_names(page.hub.engine, user.department_code)
    return [d.code for d in own], own


def _day(text: str, name: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise HubError("bad_filter", field=name) from None


def _period(frm: str, to: str) -> tuple[dt.date, dt.date, dt.datetime, dt.datetime]:
    today = i18n.local(dt.datetime.now(dt.UTC)).date()
    end = _day(to, "to") or today
    start = _day(frm, "from") or end - dt.timedelta(days=DAYS_DEFAULT - 1)
    since = dt.datetime.combine(start, dt.time.min, tzinfo=i18n.LOCAL_TZ).astimezone(dt.UTC)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=i18n.LOCAL_TZ).astimezone(
        dt.UTC
    )
    return start, end, since, until


def _filters(
    page: Page,
    codes: list[str] | None,
    dataset: str,
    app: str,
    end_user: str,
    case: str,
    since: dt.datetime,
    until: dt.datetime,
) -> dict[str, Any]:
    if dataset:
        codes = [dataset] if codes is None or dataset in codes else []
    return {
        "app_id": app or None,
        "dataset_codes": codes,
        "since": since,
        "until": until,
        "end_user": end_user or None,
        "case_number": case or None,
    }


def _seen(page: Page, codes: list[str] | None, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if codes is None:
        return rows
    own = set(codes)
    return [as_seen_by_department(r, own) for r in rows]


Q = Annotated[str, Query(max_length=100)]


@router.get("/audit")
def audit_page(
    page: PageDep,
    dataset: Q = "",
    app: Q = "",
    end_user: Q = "",
    case: Q = "",
    frm: Annotated[str, Query(alias="from", max_length=10)] = "",
    to: Annotated[str, Query(max_length=10)] = "",
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    codes, datasets = _scope(page)
    start, end, since, until = _period(frm, to)
    f = _filters(page, codes, dataset, app, end_user, case, since, until)
    engine = page.hub.engine
    rows = _seen(page, codes, audit.query(engine, **f, limit=PAGE, before_seq=before, newest_first=True))
    totals = _daily_totals(page, f)
    per_day: dict[str, int] = defaultdict(int)
    per_app: dict[str | None, int] = defaultdict(int)
    app_days: dict[str | None, dict[str, int]] = defaultdict(dict)
    for day, app_id, n in totals:
        per_day[day] += n
        per_app[app_id] += n
        app_days[app_id][day] = n
    names = {a.app_id: a.name for a in app_registry.list_apps(engine)}
    page.audit("portal.audit", dataset_code=dataset or None, row_count=len(rows))
    head = audit.head(engine)
    archived = audit.archived_through(engine)
    query = {
        "dataset": dataset,
        "app": app,
        "end_user": end_user,
        "case": case,
        "from": start.isoformat(),
        "to": end.isoformat(),
    }
    return page.render(
        "audit.html",
        rows=rows,
        datasets=datasets if len(datasets) <= SELECT_MAX else None,
        apps=names,
        query=query,
        older=rows[-1]["seq"] if len(rows) == PAGE else None,
        chart=bar_chart(
            sorted(per_day.items()), page.t("aud.chart", from_=start.isoformat(), to=end.isoformat())
        ),
        per_app=sorted(per_app.items(), key=lambda kv: (-kv[1], kv[0] or "")),
        app_charts=_app_charts(page, names, per_day, per_app, app_days),
        head=head,
        can_verify=page.user is not None and page.user.department_code is None,
        report=None,
        archived=_archived_note(archived, since),
    )


def _archived_note(
    archived: tuple[int, dt.datetime, int] | None, since: dt.datetime
) -> dict[str, Any] | None:
    """What the note on archived records says, when the page's period reaches back to them."""
    if archived is None or since >= archived[1]:
        return None
    return {"seq": archived[0], "date": i18n.local(archived[1]).date().isoformat()}


#: the busiest apps get a chart of their own calls per day (the rest are in the table and CSV)
APP_CHARTS = 5


def _app_charts(
    page: Page,
    names: dict[str, str],
    per_day: dict[str, int],
    per_app: dict[str | None, int],
    app_days: dict[str | None, dict[str, int]],
) -> list[tuple[str, Any]]:
    """Calls per day of each of the busiest apps, on the same days as the main chart."""
    days = sorted(per_day)
    busiest = [a for a, _ in sorted(per_app.items(), key=lambda kv: -kv[1]) if a is not None][:APP_CHARTS]
    out = []
    for app_id in busiest:
        label = names.get(app_id, app_id)
        series = [(d, app_days[app_id].get(d, 0)) for d in days]
        out.append((label, bar_chart(series, page.t("aud.app_chart", app=label))))
    return out


@router.get("/audit.csv")
def audit_csv(
    page: PageDep,
    dataset: Q = "",
    app: Q = "",
    end_user: Q = "",
    case: Q = "",
    frm: Annotated[str, Query(alias="from", max_length=10)] = "",
    to: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    codes, _ = _scope(page)
    _start, _end, since, until = _period(frm, to)
    f = _filters(page, codes, dataset, app, end_user, case, since, until)
    rows = _seen(page, codes, audit.query(page.hub.engine, **f, limit=EXPORT_MAX, newest_first=True))
    page.audit("portal.audit_csv", dataset_code=dataset or None, row_count=len(rows))
    cols = [
        "seq",
        "at",
        "actor_kind",
        "app_id",
        "staff",
        "end_user",
        "case_number",
        "method",
        "path",
        "action",
        "dataset_code",
        "fields",
        "decision",
        "reason",
        "status",
        "row_count",
        "hash",
    ]
    buf = io.StringIO()
    buf.write("\ufeff")
    w = csv.writer(buf)
    w.writerow(cols)
    for r in rows:
        line = []
        for c in cols:
            v = r.get(c)
            v = (
                ""
                if v is None
                else ";".join(v)
                if isinstance(v, list)
                else i18n.local(v).isoformat()
                if isinstance(v, dt.datetime)
                else v
            )
            line.append(spreadsheet_text(v))
        w.writerow(line)
    return Response(
        buf.getvalue().encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )


@router.get("/audit/totals.csv")
def totals_csv(
    page: PageDep,
    dataset: Q = "",
    app: Q = "",
    end_user: Q = "",
    case: Q = "",
    frm: Annotated[str, Query(alias="from", max_length=10)] = "",
    to: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    """Calls per day and app for the filters (the numbers behind the chart), as CSV."""
    codes, _ = _scope(page)
    _start, _end, since, until = _period(frm, to)
    f = _filters(page, codes, dataset, app, end_user, case, since, until)
    totals = _daily_totals(page, f)
    page.audit("portal.audit_totals_csv", dataset_code=dataset or None, row_count=len(totals))
    buf = io.StringIO()
    buf.write("\ufeff")
    w = csv.writer(buf)
    w.writerow(["day", "app_id", "calls"])
    for day, app_id, n in totals:
        w.writerow([day, app_id or "", n])
    return Response(
        buf.getvalue().encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit-totals.csv"'},
    )


@router.post("/audit/verify")
def verify_chain(page: PageDep) -> Response:
    user = page.require("auditor")
    if user.department_code is not None:  # the whole chain: hub-wide auditors and admins
        page.refuse()
    page.audit("portal.audit_verify")
    report = audit.verify(page.hub.engine)
    return page.render(
        "audit.html",
        rows=[],
        datasets=[],
        apps={},
        query={"dataset": "", "app": "", "end_user": "", "case": "", "from": "", "to": ""},
        older=None,
        chart=bar_chart([], ""),
        per_app=[],
        app_charts=[],
        head=audit.head(page.hub.engine),
        can_verify=True,
        report=report,
        archived=None,
    )
