"""Supervision: the figures of a scorecard, the report, and who may read them."""

from __future__ import annotations

import datetime as dt

from catalog.access import applications
from catalog.access.workdays import Calendar
from catalog.directory import store
from catalog.supervision import Quarter, missing_metadata, scorecard

CAL = Calendar()


def _apply(hub, app: str, code: str, when: dt.datetime) -> applications.Application:
    return applications.submit(
        hub.engine,
        hub.apps[app][0],
        code,
        fields=None,
        purpose="核验",
        legal_basis="条例",
        calendar=CAL,
        deadline_days=10,
        default_rate_limit=60,
        now=when,
    )


def test_quarters() -> None:
    q = Quarter.parse("2026q4")
    assert (q.first_day, q.last_day) == (dt.date(2026, 10, 1), dt.date(2026, 12, 31))
    assert (
        str(q.next()) == "2027Q1"
        and str(q.previous()) == "2026Q3"
        and str(Quarter.parse("2026Q1").previous()) == "2025Q4"
    )
    # Beijing midnight of Oct 1 is 16:00 UTC on Sep 30
    assert q.start_utc() == dt.datetime(2026, 9, 30, 16, tzinfo=dt.UTC)


def test_directory_completeness_names_what_is_missing(portal_hub) -> None:
    lic = store.get_dataset(portal_hub.engine, "SCJ-LIC").spec
    lacks = missing_metadata(lic)
    assert "summary" in lacks and "category" in lacks
    assert any(item.startswith("field descriptions: uscc") for item in lacks)


def test_applications_on_time_late_and_overdue(portal_hub) -> None:
    from catalog.access import staff

    approver = staff.create_staff(portal_hub.engine, "scj_appr", "SCJ", ["approver"], "correct horse battery")
    t0 = dt.datetime(2026, 10, 12, 2, tzinfo=dt.UTC)  # Monday 10:00 in Beijing; deadline Oct 26
    a = _apply(portal_hub, "不动产登记", "SCJ-LIC", t0)
    assert a.deadline == dt.date(2026, 10, 26)
    applications.decide(
        portal_hub.engine,
        a.id,
        approver,
        approve=False,
        reason="材料不全",
        default_rate_limit=60,
        now=t0 + dt.timedelta(days=3),
    )
    b = _apply(portal_hub, "企业开办", "SCJ-LIC", t0)
    applications.decide(
        portal_hub.engine,
        b.id,
        approver,
        approve=False,
        reason="材料不全",
        default_rate_limit=60,
        now=t0 + dt.timedelta(days=30),
    )
    applications.withdraw(
        portal_hub.engine,
        _apply(portal_hub, "不动产登记", "SCJ-LIC", t0).id,
        portal_hub.apps["不动产登记"][0],
        now=t0,
    )
    c = _apply(portal_hub, "不动产登记", "SCJ-LIC", dt.datetime(2026, 11, 2, 2, tzinfo=dt.UTC))
    assert c.status == "pending"
    q = Quarter.parse("2026Q4")
    early = scorecard(portal_hub.engine, "SCJ", q, now=dt.datetime(2026, 11, 3, tzinfo=dt.UTC))
    assert (early.applications.due, early.applications.on_time, early.applications.late) == (2, 1, 1)
    late = scorecard(portal_hub.engine, "SCJ", q, now=dt.datetime(2026, 12, 20, tzinfo=dt.UTC))
    assert (late.applications.due, late.applications.on_time, late.applications.late) == (3, 1, 2)
    # another department's figures are its own
    assert (
        scorecard(portal_hub.engine, "ZGJ", q, now=dt.datetime(2026, 12, 20, tzinfo=dt.UTC)).applications.due
        == 0
    )


def test_who_may_read_supervision(portal_hub, as_staff) -> None:
    assert as_staff("scj_pub").get("/portal/supervision").status_code == 403
    assert as_staff("scj_appr").get("/portal/supervision/report.csv").status_code == 403
    everyone = as_staff("hub_auditor").get("/portal/supervision").text
    assert "市场监督管理局" in everyone and "ZGJ" in everyone
    own = as_staff("scj_aud").get("/portal/supervision").text
    assert "SCJ" in own and "<code>ZGJ</code>" not in own and "<code>RSJ</code>" not in own


def test_report_and_csv(portal_hub, as_staff) -> None:
    client = as_staff("hub_admin")
    html = client.get("/portal/supervision/report?quarter=2026Q4").text
    assert "2026Q4 政务数据共享工作通报" in html
    r = client.get("/portal/supervision/report.csv?quarter=2026Q4")
    text = r.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("部门,目录数,目录完整率")
    assert "市场监督管理局" in text
    assert client.get("/portal/supervision?quarter=2026Q9").status_code == 400
