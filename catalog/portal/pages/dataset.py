"""The dataset page: what the directory declares, how fresh and how good the data is, its
versions, and how to use it. Open datasets are public; the rest need a signed-in account."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from catalog.access import disclosure
from catalog.api.routers.directory import open_rows
from catalog.clock import as_utc, utc_now
from catalog.directory import store
from catalog.directory.grades import policy_of
from catalog.directory.model import ShareType
from catalog.errors import HubError
from catalog.portal import i18n
from catalog.portal.charts import quality_chart
from catalog.portal.web import Page, PageDep
from catalog.runs import record as runs
from catalog.runs.freshness import freshness

router = APIRouter(prefix="/portal")

i18n.register(
    {
        "dataset.department": ("提供部门", "Provided by"),
        "dataset.code": ("信息资源代码", "Resource code"),
        "dataset.category": ("分类", "Category"),
        "dataset.format": ("格式", "Format"),
        "dataset.version": ("版本", "Version"),
        "dataset.published": ("发布时间", "Published"),
        "dataset.share": ("共享属性", "Sharing"),
        "dataset.share_condition": ("共享条件", "Condition"),
        "dataset.share_mode": ("共享方式", "Mode"),
        "dataset.open": ("开放属性", "Open data"),
        "dataset.grade": ("分级", "Grade"),
        "dataset.cycle": ("更新周期", "Update cycle"),
        "dataset.fields": ("数据项", "Fields"),
        "field.label": ("名称", "Label"),
        "field.name": ("字段", "Field"),
        "field.type": ("类型", "Type"),
        "field.sensitivity": ("敏感级别", "Sensitivity"),
        "field.mask": ("脱敏规则", "Masking"),
        "field.key": ("主键", "key"),
        "sensitivity.public": ("公开", "public"),
        "sensitivity.internal": ("内部", "internal"),
        "sensitivity.sensitive": ("敏感", "sensitive"),
        "dataset.freshness": ("数据时效", "Freshness"),
        "dataset.last_success": ("最近成功同步", "Last successful sync"),
        "dataset.next_run": ("下次计划同步", "Next scheduled sync"),
        "dataset.manual": ("手动同步", "manual only"),
        "dataset.on_time": ("按更新周期更新", "meets its update cycle"),
        "dataset.late": ("未按更新周期更新（应不晚于 {at}）", "late: should have synced by {at}"),
        "dataset.never": ("从未成功同步", "never synced successfully"),
        "dataset.runs": ("同步记录", "Sync runs"),
        "run.started": ("开始", "Started"),
        "run.status": ("状态", "Status"),
        "run.read": ("读取", "Read"),
        "run.published": ("发布", "Published"),
        "run.quarantined": ("隔离", "Quarantined"),
        "run.pass_rate": ("合格率", "Pass rate"),
        "run.none": ("尚无同步记录。", "No sync run yet."),
        "dataset.quality": ("质量趋势", "Quality history"),
        "dataset.quality_chart": (
            "最近 {n} 次同步的合格率（折线）与问题数据行数（柱）",
            "Pass rate (line) and bad rows (bars) of the last {n} runs",
        ),
        "dataset.latest_report": ("最新质量报告", "Latest quality report"),
        "dataset.versions": ("版本历史", "Version history"),
        "dataset.compare": ("比较版本", "Compare versions"),
        "dataset.compare_from": ("从版本", "From version"),
        "dataset.compare_to": ("到版本", "To version"),
        "dataset.no_changes": ("两个版本没有差异。", "The two versions do not differ."),
        "dataset.certificates": ("电子证照类型", "Certificate types"),
        "dataset.sample": ("样例数据", "Sample rows"),
        "dataset.sample_note": (
            "开放数据的前 {n} 行，不含敏感字段。",
            "The first {n} rows of the open data, sensitive fields left out.",
        ),
        "dataset.download": ("下载开放数据", "Download the open data"),
        "dataset.download_parquet": ("下载 Parquet", "Download Parquet"),
        "dataset.how": ("调用方式", "How to call it"),
        "dataset.how_note": (
            "应用以 OAuth2 客户端凭证获取令牌后调用；涉及个人信息时须携带 X-End-User-Id 与 X-Case-Number。",
            "Apps get a token with OAuth2 client credentials; "
            "calls on personal data carry X-End-User-Id and X-Case-Number.",
        ),
        "dataset.apply": ("申请使用", "Apply for access"),
        "dataset.apply_note": (
            "本部门的申请员可为本部门的应用申请使用此数据。",
            "An applicant of your department can apply for this data on behalf of your department's apps.",
        ),
    }
)

SAMPLE_ROWS = 5
CHART_RUNS = 30


def visible_dataset(page: Page, code: str) -> store.PublishedDataset:
    """The dataset if this reader may see its page: open data for anyone, the rest for staff.
    A dataset the reader may not see answers as one that does not exist."""
    try:
        d = store.get_dataset(page.hub.engine, code)
    except KeyError:
        raise HubError("dataset_not_found", code=code[:64]) from None
    if page.user is None and not (d.spec.open.open and d.spec.share.type is not ShareType.NONE):
        call = getattr(page.request.state, "call", None)
        if call is not None:
            call.reason = "not_open"
        raise HubError("dataset_not_found", code=code[:64])
    return d


@router.get("/datasets/{code}")
def dataset_page(
    page: PageDep,
    code: str,
    diff_from: Annotated[int | None, Query(alias="from", ge=1)] = None,
    diff_to: Annotated[int | None, Query(alias="to", ge=1)] = None,
) -> Response:
    d = visible_dataset(page, code)
    spec = d.spec
    page.audit("portal.dataset", dataset_code=spec.code)
    engine = page.hub.engine
    now = utc_now()
    recent = runs.recent_runs(engine, limit=CHART_RUNS, dataset_code=spec.code)
    last = runs.last_successful_run(engine, spec.code)
    last_at = as_utc(last["finished_at"]) if last and last.get("finished_at") else None
    fresh = freshness(spec.update_cycle, spec.schedule, last_at, now)
    history = store.history(engine, spec.code)
    diff: list[str] | None = None
    if diff_from is not None and diff_to is not None:
        old = store.version_spec(engine, spec.code, diff_from)
        new = store.version_spec(engine, spec.code, diff_to)
        if old is None or new is None:
            raise HubError("dataset_not_found", code=f"{spec.code} v{diff_from}/v{diff_to}")
        diff = store.diff_specs(old, new)
    sample: list[dict[str, Any]] = []
    public = disclosure.for_public(spec)
    if spec.open.open and spec.share.type is not ShareType.NONE:
        sample = list(open_rows(engine, spec, public, limit=SAMPLE_ROWS))
        call = getattr(page.request.state, "call", None)
        if call is not None and sample:
            call.fields = [public.audit_name(f) for f in public.fields]
            call.row_count = len(sample)
    latest_report = next((r.get("quality") for r in recent if r.get("quality")), None)
    return page.render(
        "dataset.html",
        d=d,
        spec=spec,
        fresh=fresh,
        runs=recent[:10],
        chart=quality_chart(list(reversed(recent)), page.lang),
        latest_report=latest_report,
        history=list(reversed(history)),
        diff=diff,
        diff_from=diff_from or (history[-2].version if len(history) > 1 else 1),
        diff_to=diff_to or history[-1].version,
        certificate_types=store.certificate_types_for(engine, spec.code),
        sample=sample,
        sample_fields=list(public.fields),
        key=set(spec.primary_key),
        base_url=str(page.request.base_url).rstrip("/"),
        open_data=spec.open.open and spec.share.type is not ShareType.NONE,
        bulk_allowed=policy_of(page.hub.settings)[spec.grade].bulk_allowed,
    )
