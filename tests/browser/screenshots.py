"""``make screenshots``: full-page PNGs of the portal's pages into ``docs/screenshots/``.

Serves the sample hub of ``tests/catalog/api_hub.py`` with some activity (applications, one
overdue; a directory submission; quarantined rows; an objection; audited calls), signs in as the
role each page is for, and writes one PNG per page. Needs what the browser tests need
(tests/browser/conftest.py) and a CJK font (``apt-get install fonts-wqy-microhei``).
To add a page: one line in :data:`SHOTS`.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
from pathlib import Path

import yaml

from tests.paths import REPO

OUT = REPO / "docs" / "screenshots"
#: file name -> (account or None for the public, path)
SHOTS: dict[str, tuple[str | None, str]] = {
    "directory.png": (None, "/portal/"),
    "dataset.png": (None, "/portal/datasets/SCJ-OPEN"),
    "login.png": (None, "/portal/login"),
    "apply.png": ("zgj_app", "/portal/apply/SCJ-LIC"),
    "decisions.png": ("scj_appr", "/portal/decisions"),
    "publish.png": ("scj_pub", "/portal/publish"),
    "review.png": ("hub_admin", "/portal/review"),
    "corrections.png": ("scj_pub", "/portal/corrections?dataset=SCJ-LIC&state="),
    "objections.png": ("scj_pub", "/portal/objections"),
    "audit.png": ("hub_auditor", "/portal/audit"),
    "supervision.png": ("hub_admin", "/portal/supervision"),
}


def _seed(hub) -> None:
    from catalog import corrections, submissions
    from catalog.access import applications, objections
    from catalog.access.workdays import Calendar
    from catalog.runs import record as runs
    from tests.browser.conftest import ensure_account
    from tests.catalog.api_hub import SCJ, USCC

    for user in ("scj_appr", "scj_pub", "hub_admin"):
        ensure_account(hub, user)
    engine = hub.engine
    for app, when in (("企业开办", dt.datetime(2026, 9, 1, 2, tzinfo=dt.UTC)), ("不动产登记", None)):
        applications.submit(
            engine,
            hub.apps[app][0],
            "SCJ-LIC",
            fields=None,
            purpose="办理企业登记时核验营业执照信息",
            legal_basis="《市场主体登记管理条例》",
            calendar=Calendar.china(),
            deadline_days=10,
            default_rate_limit=60,
            now=when,
        )
    doc = {**SCJ, "datasets": [dict(d) for d in SCJ["datasets"]]}
    doc["datasets"][0] = {
        **doc["datasets"][0],
        "summary": "本市登记的企业营业执照基本信息",
        "category": "市场监管",
    }
    submissions.submit(
        engine,
        department_code="SCJ",
        content=yaml.safe_dump(doc, allow_unicode=True, sort_keys=False),
        source_name="portal",
        submitted_by="scj_pub",
    )
    runs.start_run(engine, "scj-lic-20261201", "SCJ-LIC", 1, full=True, trigger="airflow")
    runs.finish_run(engine, "scj-lic-20261201", "success")
    with engine.begin() as conn:
        corrections.replace_run(
            conn,
            "SCJ-LIC",
            "scj-lic-20261201",
            [
                {
                    "source": "营业执照_202612.xlsx",
                    "row": 17,
                    "record": {"uscc": "91330100MA27XL0B5X", "est_date": "2026-02-30"},
                    "reasons": [{"field": "est_date", "rule": "cast", "message": "不是有效日期"}],
                },
                {
                    "source": "营业执照_202612.xlsx",
                    "row": 42,
                    "record": {"uscc": "9133010", "ent_name": ""},
                    "reasons": [
                        {"field": "uscc", "rule": "credit_code", "message": "统一社会信用代码校验位错误"},
                        {"field": "ent_name", "rule": "not_null", "message": "不能为空"},
                    ],
                },
            ],
            ["uscc"],
        )
    objections.raise_objection(
        engine,
        Calendar.china(),
        dataset_code="SCJ-LIC",
        record_key={"uscc": USCC[2]},
        field="status",
        reason="该企业已于 2026 年 11 月注销，共享数据仍显示存续",
        evidence="注销登记通知书编号 2026-1108",
        raised_by_kind="staff",
        raised_by="zgj_pub",
        raised_department="ZGJ",
        answer_days=5,
    )
    for _ in range(3):
        hub.client.get("/api/v1/datasets/SCJ-OPEN/download")


def main() -> int:
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import Live, chromium_path, missing, serve, sign_in
    from tests.catalog.api_hub import build_hub

    reason = missing()
    if reason:
        print(f"screenshots: {reason}", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    hub = build_hub(Path(tempfile.mkdtemp(prefix="shots-")), portal=True)
    _seed(hub)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=["--no-sandbox"])
        for url in serve(hub.client.app):
            live = Live(url=url, hub=hub)
            for name, (user, path) in SHOTS.items():
                context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
                page = context.new_page()
                if user:
                    sign_in(page, live, user)
                page.goto(f"{url}{path}")
                page.screenshot(path=str(OUT / name), full_page=True)
                context.close()
                print(f"docs/screenshots/{name}")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
