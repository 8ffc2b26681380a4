"""The directory (数据目录): search with facets, sorts and pages. Anyone may read it; the
public sees open datasets only."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import Response

from catalog.portal import i18n
from catalog.portal.search import FACETS, SORTS, index_for
from catalog.portal.web import NavItem, PageDep, register_nav

router = APIRouter(prefix="/portal")

i18n.register(
    {
        "directory.title": ("数据目录", "Data directory"),
        "directory.query": ("关键词", "Keywords"),
        "directory.query_hint": ("名称、摘要或字段名称", "name, summary or field label"),
        "directory.public_only": (
            "未登录时只显示开放数据。工作人员登录后可查看全部目录。",
            "Signed out, only open data is listed. Staff see the whole directory after signing in.",
        ),
        "directory.count": ("共 {n} 个数据资源", "{n} datasets"),
        "directory.none": ("没有符合条件的数据资源。", "No dataset matches."),
        "directory.sort": ("排序", "Sort by"),
        "directory.sort.name": ("名称", "name"),
        "directory.sort.fresh": ("最近更新", "freshness"),
        "directory.sort.use": ("使用次数", "use"),
        "directory.filters": ("筛选", "Filters"),
        "directory.clear": ("清除筛选", "Clear filters"),
        "directory.apply": ("筛选", "Apply"),
        "directory.last_sync": ("最近同步：{at}", "last sync: {at}"),
        "directory.never_synced": ("尚未同步", "never synced"),
        "directory.uses": ("调用 {n} 次", "{n} calls"),
        "facet.department": ("提供部门", "Department"),
        "facet.category": ("分类", "Category"),
        "facet.share_type": ("共享类型", "Share type"),
        "facet.open": ("开放属性", "Open data"),
        "facet.grade": ("分级", "Grade"),
        "facet.update_cycle": ("更新周期", "Update cycle"),
        "share.unconditional": ("无条件共享", "unconditional"),
        "share.conditional": ("有条件共享", "conditional"),
        "share.none": ("不予共享", "not shared"),
        "open.open": ("开放", "open"),
        "open.closed": ("不开放", "not open"),
        "grade.general": ("一般数据", "general"),
        "grade.important": ("重要数据", "important"),
        "grade.core": ("核心数据", "core"),
        "cycle.realtime": ("实时", "real time"),
        "cycle.hourly": ("每小时", "hourly"),
        "cycle.daily": ("每日", "daily"),
        "cycle.weekly": ("每周", "weekly"),
        "cycle.monthly": ("每月", "monthly"),
        "cycle.quarterly": ("每季度", "quarterly"),
        "cycle.yearly": ("每年", "yearly"),
    }
)
register_nav(NavItem("nav.directory", "/portal/", order=0))

_FACET_PREFIX = {"share_type": "share.", "open": "open.", "grade": "grade.", "update_cycle": "cycle."}


def facet_label(page: PageDep, facet: str, value: str, departments: dict[str, str]) -> str:
    """How a facet value is shown: the department's name, the Chinese word of an enum."""
    if facet == "department":
        return departments.get(value, value)
    prefix = _FACET_PREFIX.get(facet)
    if prefix and i18n.known(prefix + value):
        return page.t(prefix + value)
    return value or page.t("common.none")


@router.get("/")
def directory(
    page: PageDep,
    q: Annotated[str, Query(max_length=200)] = "",
    department: Annotated[str, Query(max_length=64)] = "",
    category: Annotated[str, Query(max_length=200)] = "",
    share_type: Annotated[str, Query(max_length=32)] = "",
    open: Annotated[str, Query(max_length=16)] = "",
    grade: Annotated[str, Query(max_length=32)] = "",
    update_cycle: Annotated[str, Query(max_length=32)] = "",
    sort: Annotated[str, Query(max_length=16)] = "name",
    page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> Response:
    page.audit("portal.directory")
    filters = {
        "department": department,
        "category": category,
        "share_type": share_type,
        "open": open,
        "grade": grade,
        "update_cycle": update_cycle,
    }
    sort = sort if sort in SORTS else "name"
    index = index_for(page.hub.engine)
    results = index.search(query=q, filters=filters, sort=sort, page=page_no, public=page.user is None)
    departments = index.department_names()
    active = {k: v for k, v in filters.items() if v}

    def link(**changes: object) -> str:
        params: dict[str, object] = {"q": q, **active, "sort": sort}
        params.update(changes)
        return "/portal/?" + urlencode({k: v for k, v in params.items() if v not in ("", None)})

    template = "directory_results.html" if page.request.headers.get("hx-request") else "directory.html"
    return page.render(
        template,
        q=q,
        results=results,
        filters=filters,
        active=active,
        sort=sort,
        sorts=SORTS,
        facets=FACETS,
        departments=departments,
        facet_label=lambda f, v: facet_label(page, f, v, departments),
        link=link,
        clear_link=link(**dict.fromkeys(active, ""), page=""),
    )
