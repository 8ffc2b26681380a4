"""The correction list (整改清单) of a providing department: each run's quarantined rows with
the rule each broke, in the department's own files and row numbers, open or fixed since;
downloadable as CSV and Excel. Rules: :mod:`catalog.corrections`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from catalog import corrections
from catalog.directory import store
from catalog.errors import HubError
from catalog.portal import i18n
from catalog.portal.web import NavItem, Page, PageDep, register_nav

router = APIRouter(prefix="/portal")

i18n.register(
    {
        "nav.corrections": ("整改清单", "Corrections"),
        "cor.title": ("整改清单", "Correction list"),
        "cor.dataset": ("数据资源", "Dataset"),
        "cor.state": ("状态", "State"),
        "cor.all": ("全部", "all"),
        "cor.state.open": ("待整改", "open"),
        "cor.state.fixed": ("已修正", "fixed"),
        "cor.state.superseded": ("已被后续批次取代", "superseded"),
        "cor.show": ("查看", "Show"),
        "cor.count": ("共 {n} 行问题数据", "{n} rows"),
        "cor.none": ("没有问题数据。", "No quarantined rows."),
        "cor.file": ("来源文件", "File"),
        "cor.row": ("行号", "Row"),
        "cor.problems": ("问题", "Problems"),
        "cor.run": ("同步批次", "Run"),
        "cor.fixed_by": ("由 {run} 修正", "fixed by {run}"),
        "cor.no_datasets": ("本部门还没有数据资源。", "Your department has no dataset yet."),
    }
)
register_nav(NavItem("nav.corrections", "/portal/corrections", roles=("publisher", "auditor"), order=42))

SHOWN = 500


def _datasets(page: Page) -> list[store.DatasetName]:
    user = page.require("publisher", "auditor")
    return store.dataset_names(page.hub.engine, user.department_code)


def _chosen(page: Page, code: str) -> tuple[list[store.DatasetName], store.PublishedDataset | None]:
    datasets = _datasets(page)
    wanted = code or (datasets[0].code if datasets else "")
    if not wanted:
        return datasets, None
    if wanted not in {d.code for d in datasets}:  # another department's: as if missing
        raise HubError("dataset_not_found", code=code[:64])
    return datasets, store.get_dataset(page.hub.engine, wanted)


@router.get("/corrections")
def correction_page(
    page: PageDep,
    dataset: Annotated[str, Query(max_length=64)] = "",
    state: Annotated[str, Query(pattern="^(|open|fixed|superseded)$")] = "open",
) -> Response:
    datasets, chosen = _chosen(page, dataset)
    rows = corrections.correction_list(page.hub.engine, chosen.spec, state=state or None) if chosen else []
    page.audit("portal.corrections", dataset_code=chosen.spec.code if chosen else None, row_count=len(rows))
    return page.render(
        "corrections.html",
        datasets=datasets,
        chosen=chosen,
        state=state,
        rows=rows[:SHOWN],
        total=len(rows),
    )


def _download(page: Page, dataset: str, state: str, fmt: str) -> Response:
    _, chosen = _chosen(page, dataset)
    if chosen is None:
        raise HubError("dataset_not_found", code=dataset[:64])
    rows = corrections.correction_list(page.hub.engine, chosen.spec, state=state or None)
    page.audit("portal.corrections_" + fmt, dataset_code=chosen.spec.code, row_count=len(rows))
    if fmt == "csv":
        body, media = corrections.to_csv(rows, page.lang), "text/csv; charset=utf-8"
    else:
        body = corrections.to_xlsx(rows, page.lang)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    name = f"corrections-{chosen.spec.code}.{fmt}"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/corrections.csv")
def correction_csv(
    page: PageDep,
    dataset: Annotated[str, Query(max_length=64)] = "",
    state: Annotated[str, Query(pattern="^(|open|fixed|superseded)$")] = "open",
) -> Response:
    return _download(page, dataset, state, "csv")


@router.get("/corrections.xlsx")
def correction_xlsx(
    page: PageDep,
    dataset: Annotated[str, Query(max_length=64)] = "",
    state: Annotated[str, Query(pattern="^(|open|fixed|superseded)$")] = "open",
) -> Response:
    return _download(page, dataset, state, "xlsx")
