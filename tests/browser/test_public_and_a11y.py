"""The public and every page's accessibility, in Chromium."""

from __future__ import annotations

import csv
import io
import re

import pytest

from tests.browser.conftest import Live, check_accessibility, sign_in

pytestmark = pytest.mark.browser


def _count(page) -> str:
    return page.locator("#result-count").inner_text()


def test_search_as_you_type_facet_dataset_and_csv_download(live: Live, page) -> None:
    page.goto(f"{live.url}/portal/")
    check_accessibility(page)
    assert "营业执照信息" not in page.content()  # not open: not for the public
    before = _count(page)
    page.get_by_label("关键词").fill("不存在的数据xyz")
    page.wait_for_function("document.querySelector('#result-count').innerText.includes('共 0 个')")
    assert "q=" in page.url  # htmx pushed the search into the address
    assert _count(page) != before
    page.get_by_label("关键词").fill("")
    page.wait_for_function("!document.querySelector('#result-count').innerText.includes('共 0 个')")
    page.get_by_role("link", name=re.compile("无条件共享")).first.click()
    page.wait_for_url(re.compile(r"share_type=unconditional"))
    page.get_by_role("link", name="企业年报公示信息").click()
    page.wait_for_url(f"{live.url}/portal/datasets/SCJ-OPEN")
    check_accessibility(page)
    html = page.content()
    assert "甲公司" in html and "13812345678" not in html
    with page.expect_download() as info:
        page.get_by_role("link", name="下载 CSV").click()
    text = info.value.path().read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["ent_name"] for r in rows] == ["甲公司", "乙公司", "丙公司"] and "contact_mobile" not in rows[0]


def test_staff_see_closed_data_until_they_sign_out(live: Live, page) -> None:
    sign_in(page, live, "zgj_pub")
    assert "营业执照信息" in page.content()
    page.get_by_role("link", name="营业执照信息").click()
    check_accessibility(page)
    page.get_by_role("button", name="退出").click()
    page.wait_for_url(f"{live.url}/portal/")
    assert "营业执照信息" not in page.content()
    page.goto(f"{live.url}/portal/datasets/SCJ-LIC")
    assert "营业执照信息" not in page.content()
    check_accessibility(page)  # the error page


def test_english_and_back(live: Live, page) -> None:
    page.goto(f"{live.url}/portal/login")
    check_accessibility(page)
    page.get_by_role("link", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("heading", name="Staff sign-in").is_visible()
    page.get_by_role("link", name="中文").click()
    assert page.locator("html").get_attribute("lang") == "zh-CN"


def test_a_forged_post_is_refused(live: Live, page) -> None:
    sign_in(page, live, "scj_pub")
    forged = (
        "async () => (await fetch('/portal/logout', {method: 'POST', body: 'csrf_token=forged',"
        " headers: {'Content-Type': 'application/x-www-form-urlencoded'}})).status"
    )
    status = page.evaluate(forged)
    assert status == 403
    page.goto(f"{live.url}/portal/")
    assert "scj_pub" in page.locator("header").inner_text()  # still signed in


@pytest.mark.parametrize(
    ("user", "path"),
    [
        ("zgj_app", "/portal/applications"),
        ("zgj_app", "/portal/apply/SCJ-LIC"),
        ("scj_appr", "/portal/decisions"),
        ("scj_pub", "/portal/publish"),
        ("scj_pub", "/portal/corrections"),
        ("scj_pub", "/portal/objections"),
        ("scj_aud", "/portal/audit"),
        ("hub_admin", "/portal/review"),
        ("hub_admin", "/portal/supervision"),
        ("hub_admin", "/portal/supervision/report"),
    ],
)
def test_every_signed_in_page_has_no_serious_accessibility_violation(
    live: Live, page, user: str, path: str
) -> None:
    sign_in(page, live, user)
    page.goto(f"{live.url}{path}")
    assert page.locator("h1").count() == 1
    check_accessibility(page)


def test_the_accessibility_check_catches_violations(page) -> None:
    """The check itself: a page with an unlabelled field and unreadable text fails it."""
    page.set_content(
        '<html lang="zh-CN"><head><title>x</title></head><body><main>'
        '<p style="color:#ddd;background:#fff">看不清的文字</p><input type="text"><img src="x.png">'
        "</main></body></html>"
    )
    with pytest.raises(AssertionError) as e:
        check_accessibility(page)
    assert "label" in str(e.value) and "color-contrast" in str(e.value)


def test_the_subscription_pages_have_no_serious_accessibility_violation(live: Live, page) -> None:
    import datetime as dt

    from catalog.access import app_registry
    from catalog.db import tables

    engine = live.hub.engine
    app, _secret = app_registry.register_app(engine, "订阅无障碍检查", "ZGJ")
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        sub_id = conn.execute(
            tables.subscriptions.insert().values(
                app_id=app.app_id, dataset_code="SCJ-LIC", target_ref="zgj_db", target_table="licences",
                mode="mirror", status="active", created_at=now, created_by="test", key_secret="00" * 32,
                last_error="OperationalError: connection refused",
            )
        ).inserted_primary_key[0]  # fmt: skip
        for status, error in (("success", None), ("failed", "OperationalError: connection refused")):
            conn.execute(
                tables.subscription_deliveries.insert().values(
                    subscription_id=sub_id, from_snapshot=None, to_snapshot=1, inserted=50, updated=0,
                    deleted=0, status=status, started_at=now, finished_at=now, error=error,
                    run_id="manual__1",
                )
            )  # fmt: skip
    sign_in(page, live, "zgj_app")
    for path in ("/portal/subscriptions", f"/portal/subscriptions/{sub_id}", "/portal/sharing"):
        page.goto(f"{live.url}{path}")
        assert page.locator("h1").count() == 1
        check_accessibility(page)
