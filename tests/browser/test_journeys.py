"""The portal's journeys as people walk them, in Chromium."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import yaml
from openpyxl import load_workbook

from catalog import corrections
from catalog.access import applications, objections
from catalog.access.workdays import Calendar
from catalog.directory import store
from catalog.runs import record as runs
from tests.browser.conftest import Live, check_accessibility, sign_in
from tests.catalog.api_hub import SCJ, USCC

pytestmark = pytest.mark.browser


def test_search_dataset_apply_then_the_approver_decides(live: Live, page) -> None:
    sign_in(page, live, "zgj_app")
    page.get_by_label("关键词").fill("营业执照")
    page.wait_for_function("document.querySelector('#result-count').innerText.includes('共 1 个')")
    page.get_by_role("link", name="营业执照信息").click()
    page.get_by_role("link", name="申请使用").click()
    check_accessibility(page)
    page.get_by_label("法定代表人").uncheck()  # not needed
    page.get_by_label("用途").fill("不动产登记时核验企业名称")
    page.get_by_label("依据").fill("《不动产登记暂行条例》")
    page.get_by_role("button", name="提交申请").click()
    page.wait_for_url(re.compile(r"/portal/applications\?done="))
    assert "待审批" in page.content() and "还剩" in page.content()
    check_accessibility(page)

    page.get_by_role("button", name="退出").click()
    sign_in(page, live, "scj_appr")
    page.get_by_role("link", name="审批").click()
    page.get_by_role("link", name=re.compile(r"^申请 \d+$")).first.click()
    check_accessibility(page)
    assert "不动产登记时核验企业名称" in page.content()
    page.get_by_label("注册资本 capital").uncheck()  # the approver narrows what was asked
    page.get_by_label("频率上限（次/分钟）").fill("20")
    page.get_by_role("button", name="同意", exact=True).click()
    page.wait_for_url(re.compile(r"/portal/decisions\?done="))
    (grant,) = applications.list_grants(
        live.hub.engine, app_id=live.hub.apps["不动产登记"][0], active_only=True
    )
    assert grant.fields == ["uscc", "ent_name", "est_date", "valid_until", "status"], grant
    assert grant.rate_limit == 20


def test_an_overdue_application_stands_out_and_is_decided_late(live: Live, page) -> None:
    a = applications.submit(
        live.hub.engine,
        live.hub.apps["企业开办"][0],
        "SCJ-LIC",
        fields=None,
        purpose="早已提交的申请",
        legal_basis="条例",
        calendar=Calendar.china(),
        deadline_days=10,
        default_rate_limit=60,
        now=dt.datetime(2026, 9, 1, 2, tzinfo=dt.UTC),
    )
    sign_in(page, live, "scj_appr")
    page.goto(f"{live.url}/portal/decisions")
    assert page.locator("#overdue-count").is_visible()
    row = page.locator("#pending tr.overdue").first
    assert "已逾期" in row.inner_text()
    page.goto(f"{live.url}/portal/decisions/{a.id}")
    page.get_by_label("理由（不同意时必填）").fill("超出共享范围")
    page.get_by_role("button", name="不同意").click()
    page.wait_for_url(re.compile(r"/portal/decisions\?done="))
    assert "超期办结" in page.locator("#decided").inner_text()


def test_publisher_fixes_an_error_submits_and_the_admin_approves(live: Live, page) -> None:
    doc = {**SCJ, "datasets": [dict(d) for d in SCJ["datasets"]]}
    doc["datasets"][1] = {**doc["datasets"][1], "summary": "浏览器里改的摘要"}
    good = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    bad = good.replace("type: unconditional", "type: whenever", 1)
    version = store.get_dataset(live.hub.engine, "SCJ-OPEN").version
    sign_in(page, live, "scj_pub")
    page.goto(f"{live.url}/portal/publish")
    check_accessibility(page)
    page.get_by_label("目录文件（YAML）").fill(bad)
    page.get_by_role("button", name="检查").click()
    assert page.locator("#problems").is_visible()
    bad_line = next(i for i, t in enumerate(bad.splitlines(), 1) if "whenever" in t)
    assert "bad" in (page.locator(f"#L{bad_line}").get_attribute("class") or "")
    check_accessibility(page)
    page.get_by_label("目录文件（YAML）").fill(good)
    page.get_by_role("button", name="检查").click()
    assert (
        page.locator("#check-ok").is_visible() and "浏览器里改的摘要" in page.locator("#preview").inner_text()
    )
    page.get_by_role("button", name="提交审核").click()
    page.wait_for_url(re.compile(r"/portal/publish\?done="))

    page.get_by_role("button", name="退出").click()
    sign_in(page, live, "hub_admin")
    page.get_by_role("link", name="目录审核").click()
    page.get_by_role("link", name=re.compile(r"目录提交 \d+")).first.click()
    check_accessibility(page)
    page.get_by_role("button", name="审核通过并发布").click()
    page.wait_for_url(re.compile(r"/portal/review\?approved="))
    assert store.get_dataset(live.hub.engine, "SCJ-OPEN").version == version + 1
    page.goto(f"{live.url}/portal/datasets/SCJ-OPEN")
    assert "浏览器里改的摘要" in page.content()


def test_department_downloads_its_correction_list_as_xlsx(live: Live, page, tmp_path) -> None:
    runs.start_run(live.hub.engine, "run-b1", "SCJ-LIC", 1, full=True, trigger="cli")
    runs.finish_run(live.hub.engine, "run-b1", "success")
    with live.hub.engine.begin() as conn:
        corrections.replace_run(
            conn,
            "SCJ-LIC",
            "run-b1",
            [
                {
                    "source": "营业执照_202612.xlsx",
                    "row": 42,
                    "reasons": [{"field": "est_date", "rule": "cast", "message": "不是有效日期"}],
                    "record": {"uscc": "X9", "est_date": "2026-02-30"},
                }
            ],
            ["uscc"],
        )
    sign_in(page, live, "scj_pub")
    page.get_by_role("link", name="整改清单").click()
    page.get_by_label("数据资源").select_option("SCJ-LIC")
    page.get_by_role("button", name="查看").click()
    check_accessibility(page)
    assert "营业执照_202612.xlsx" in page.content()
    with page.expect_download() as info:
        page.locator("#download-xlsx").click()
    path = tmp_path / "list.xlsx"
    info.value.save_as(path)
    ws = load_workbook(path).active
    assert ws["C2"].value == "营业执照_202612.xlsx" and ws["D2"].value == 42 and ws["F2"].value == "成立日期"


def test_an_app_objects_through_the_api_and_the_department_answers_in_the_portal(live: Live, page) -> None:
    from catalog.access import staff

    engine = live.hub.engine
    app_id = live.hub.apps["不动产登记"][0]
    if applications.access_state(engine, app_id, "SCJ-LIC").kind != "granted":
        a = applications.submit(
            engine,
            app_id,
            "SCJ-LIC",
            fields=["uscc", "ent_name"],
            purpose="核验",
            legal_basis="条例",
            calendar=Calendar(),
            deadline_days=10,
            default_rate_limit=600,
        )
        approver = staff.get_staff(engine, "scj_appr") or staff.create_staff(
            engine, "scj_appr", "SCJ", ["approver"], "correct horse battery"
        )
        applications.decide(engine, a.id, approver, approve=True, default_rate_limit=600)
    r = live.hub.client.post(
        "/api/v1/objections",
        json={
            "dataset": "SCJ-LIC",
            "record_key": {"uscc": USCC[2]},
            "field": "ent_name",
            "reason": "企业已更名",
        },
        headers=live.hub.as_app("不动产登记", purpose=False),
    )
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    sign_in(page, live, "scj_pub")
    page.get_by_role("link", name="数据异议").click()
    check_accessibility(page)
    row = page.locator("#to-answer tr", has_text="企业已更名")
    row.get_by_label("核实结果").select_option("corrected")
    row.get_by_label("答复说明（“已在源头更正”时可不填）").fill("已在登记系统更正")
    row.get_by_role("button", name="答复").click()
    page.wait_for_url(re.compile(r"answered="))
    seen = live.hub.client.get(
        f"/api/v1/objections/{oid}", headers=live.hub.as_app("不动产登记", purpose=False)
    ).json()
    assert seen["status"] == "corrected" and seen["answer"] == "已在登记系统更正"
    assert objections.get_objection(engine, oid).answered_by == "scj_pub"


def test_the_auditor_filters_the_log(live: Live, page) -> None:
    live.hub.client.get("/api/v1/datasets/SCJ-OPEN/download")  # something to find
    sign_in(page, live, "hub_auditor")
    page.get_by_role("link", name="数据使用").click()
    check_accessibility(page)
    page.get_by_label("数据资源").select_option("SCJ-OPEN")
    page.get_by_role("button", name="查询").click()
    page.wait_for_url(re.compile(r"dataset=SCJ-OPEN"))
    table = page.locator("#audit-records").inner_text()
    assert "open.download" in table and "SCJ-LIC" not in table
    page.get_by_role("button", name="立即校验整条日志链").click()
    assert "校验通过" in page.locator("#verify-result").inner_text()
