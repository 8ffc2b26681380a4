"""The correction list page: the department's own rows, downloads that open in Excel, scope."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from catalog import corrections
from catalog.runs import record as runs

SECRET_NAME = "只属于市场监管局的问题值-5d1"


def _quarantine(hub, code: str, run_id: str, rows: list[dict]) -> None:
    runs.start_run(hub.engine, run_id, code, 1, full=True, trigger="cli")
    runs.finish_run(hub.engine, run_id, "success")
    with hub.engine.begin() as conn:
        corrections.replace_run(
            conn, code, run_id, rows, ["uscc"] if code.startswith("SCJ") else ["person_id"]
        )


def _row(uscc: str, value: str, row: int) -> dict:
    return {
        "source": "营业执照_2026.xlsx",
        "row": row,
        "reasons": [{"field": "ent_name", "rule": "max_length", "message": "超过 100 个字符"}],
        "record": {"uscc": uscc, "ent_name": value},
    }


def test_the_department_reads_and_downloads_its_list(portal_hub, as_staff) -> None:
    _quarantine(
        portal_hub, "SCJ-LIC", "run-a", [_row("91330100MA27XL0B5H", SECRET_NAME, 12), _row("X2", "=1+2", 13)]
    )
    client = as_staff("scj_pub")
    page = client.get("/portal/corrections?dataset=SCJ-LIC").text
    assert "营业执照_2026.xlsx" in page and ">12<" in page and "企业名称" in page  # the field's label
    assert SECRET_NAME in page
    r = client.get("/portal/corrections.xlsx?dataset=SCJ-LIC&state=open")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    ws = load_workbook(io.BytesIO(r.content)).active
    values = [[c.value for c in row] for row in ws.iter_rows(min_row=2)]
    assert [v[3] for v in values] == [12, 13]
    assert values[1][6] == "=1+2" and ws["G3"].data_type == "s"
    csv_text = client.get("/portal/corrections.csv?dataset=SCJ-LIC").content.decode("utf-8-sig")
    assert SECRET_NAME in csv_text and "'=1+2" in csv_text


def test_another_department_sees_none_of_it(portal_hub, as_staff) -> None:
    _quarantine(portal_hub, "SCJ-LIC", "run-a", [_row("91330100MA27XL0B5H", SECRET_NAME, 12)])
    other = as_staff("rsj_pub")
    assert SECRET_NAME not in other.get("/portal/corrections").text
    for url in (
        "/portal/corrections?dataset=SCJ-LIC",
        "/portal/corrections.csv?dataset=SCJ-LIC",
        "/portal/corrections.xlsx?dataset=SCJ-LIC",
    ):
        r = other.get(url)
        assert r.status_code == 404 and SECRET_NAME not in r.text, url
    assert as_staff("zgj_app").get("/portal/corrections").status_code == 403  # not a provider's role
    assert SECRET_NAME in as_staff("hub_auditor").get("/portal/corrections?dataset=SCJ-LIC").text
