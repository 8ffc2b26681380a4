"""Who used my data: a department sees the records on its own data only; filters; CSV; the chain."""

from __future__ import annotations

import sqlalchemy as sa

from catalog.db import tables
from tests.catalog.api_hub import CITIZENS, USCC

SCJ_CASE = "QYKB-2026-000123"  # the case number api_hub.as_app sends


def _calls(hub) -> None:
    """Calls on SCJ's and RSJ's data, with end users and case numbers."""
    from catalog.access import applications, staff
    from catalog.access.workdays import Calendar
    from tests.catalog.api_hub import PASSWORD

    approver = staff.create_staff(hub.engine, "rsj_appr_x", "RSJ", ["approver"], PASSWORD)
    for code, owner in (("SCJ-LIC", None), ("RSJ-PEN", approver)):
        a = applications.submit(
            hub.engine,
            hub.apps["不动产登记"][0],
            code,
            fields=None,
            purpose="核验",
            legal_basis="条例",
            calendar=Calendar(),
            deadline_days=10,
            default_rate_limit=600,
        )
        if a.status == "pending":
            user = owner or staff.create_staff(hub.engine, "scj_appr_x", "SCJ", ["approver"], PASSWORD)
            applications.decide(hub.engine, a.id, user, approve=True, default_rate_limit=600)
    h = hub.as_app("不动产登记")
    assert (
        hub.client.get("/api/v1/datasets/SCJ-LIC/records", params={"uscc": USCC[0]}, headers=h).status_code
        == 200
    )
    rsj = {**h, "X-End-User-Id": "rsj-officer-secret", "X-Case-Number": "RSJK-2026-000999"}
    assert (
        hub.client.get(
            "/api/v1/datasets/RSJ-PEN/records",
            params={"person_id": CITIZENS[0], "month": "2026-09"},
            headers=rsj,
        ).status_code
        == 200
    )


def test_a_department_sees_only_records_on_its_data(portal_hub, as_staff) -> None:
    _calls(portal_hub)
    page = as_staff("scj_aud").get("/portal/audit").text
    assert "SCJ-LIC" in page and SCJ_CASE in page
    assert (
        "rsj-officer-secret" not in page
        and "RSJK-2026-000999" not in page
        and "RSJ-PEN" not in page.split('id="audit-records"')[1]
    )
    csv_text = as_staff("scj_aud").get("/portal/audit.csv").content.decode("utf-8-sig")
    assert (
        SCJ_CASE in csv_text and "rsj-officer-secret" not in csv_text and "RSJK-2026-000999" not in csv_text
    )
    # asking for another department's dataset by name gives nothing either
    other = as_staff("scj_aud").get("/portal/audit?dataset=RSJ-PEN").text
    assert "rsj-officer-secret" not in other
    everything = as_staff("hub_auditor").get("/portal/audit").text
    assert "rsj-officer-secret" in everything and SCJ_CASE in everything


def test_filters_and_daily_totals(portal_hub, as_staff) -> None:
    _calls(portal_hub)
    client = as_staff("hub_auditor")
    by_case = client.get("/portal/audit?case=RSJK-2026-000999").text.split('id="audit-records"')[1]
    assert "RSJ-PEN" in by_case and "SCJ-LIC" not in by_case
    by_user = client.get("/portal/audit?end_user=rsj-officer-secret&dataset=RSJ-PEN").text
    assert "RSJK-2026-000999" in by_user
    empty = client.get("/portal/audit?from=2020-01-01&to=2020-01-31").text
    assert "没有符合条件的记录" in empty
    page = client.get("/portal/audit").text
    assert "<svg viewBox" in page and 'id="per-app"' in page and "不动产登记" in page
    assert "不动产登记 每日调用次数" in page  # the busiest app's own calls per day
    totals = client.get("/portal/audit/totals.csv").content.decode("utf-8-sig")
    assert totals.startswith("day,app_id,calls") and portal_hub.apps["不动产登记"][0] in totals
    assert client.get("/portal/audit?from=not-a-date").status_code == 400


def test_who_may_read_and_verify(portal_hub, as_staff) -> None:
    assert as_staff("zgj_app").get("/portal/audit").status_code == 403
    assert as_staff("scj_appr").get("/portal/audit.csv").status_code == 403
    from tests.catalog.portal.conftest import csrf_of

    dept = as_staff("scj_aud")
    assert "立即校验" not in dept.get("/portal/audit").text
    r = dept.post("/portal/audit/verify", data={"csrf_token": csrf_of(dept.get("/portal/audit").text)})
    assert r.status_code == 403
    hub_wide = as_staff("hub_auditor")
    page = hub_wide.get("/portal/audit").text
    r = hub_wide.post("/portal/audit/verify", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 200 and 'id="verify-result"' in r.text and "校验通过" in r.text
    with portal_hub.engine.connect() as conn:
        seq = conn.execute(sa.select(tables.audit_head.c.seq)).scalar()
    assert f"第 {seq}" in hub_wide.get("/portal/audit").text or str(seq) in hub_wide.get("/portal/audit").text


def test_a_tampered_chain_is_reported(portal_hub, as_staff) -> None:
    from tests.catalog.portal.conftest import csrf_of

    client = as_staff("hub_auditor")
    token = csrf_of(client.get("/portal/audit").text)
    with portal_hub.engine.begin() as conn:
        first = conn.execute(sa.select(sa.func.min(tables.audit.c.seq))).scalar()
        conn.execute(tables.audit.update().where(tables.audit.c.seq == first).values(end_user="someone-else"))
    r = client.post("/portal/audit/verify", data={"csrf_token": token})
    assert "校验发现问题" in r.text


def test_archived_records_are_noted_and_the_chain_still_verifies(portal_hub, as_staff, tmp_path) -> None:
    import datetime as dt

    from catalog.audit.archive import archive
    from catalog.directory.grades import DEFAULT_POLICY
    from tests.catalog.portal.conftest import csrf_of

    _calls(portal_hub)
    client = as_staff("hub_auditor")
    assert 'id="archived-note"' not in client.get("/portal/audit").text
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=365 * 4)  # a clock four years on
    res = archive(
        portal_hub.engine, later - dt.timedelta(days=1100), tmp_path / "arc", policy=DEFAULT_POLICY,
        by="hub_auditor", now=later,
    )  # fmt: skip
    assert res.plan.records > 0
    page = client.get("/portal/audit").text
    assert 'id="archived-note"' in page and f"第 {res.plan.last_seq} 条及之前的记录" in page
    r = client.post("/portal/audit/verify", data={"csrf_token": csrf_of(page)})
    assert "校验通过" in r.text and f"在此之前的 {res.plan.records} 条记录已归档" in r.text
