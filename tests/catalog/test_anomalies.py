"""Access anomalies (异常访问): an app with a normal history scrapes through the real API and is
flagged, the owning department sees it, the grade policy throttles it, a hub admin clears it;
calls at hours the app never uses are flagged; steady traffic is not; settings move the bars."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from catalog import anomalies
from catalog.audit.chain import AuditRecord
from catalog.audit.writer import append
from catalog.db import tables
from catalog.directory.grades import GradePolicy
from sharehub.demo.identifiers import credit_code
from tests.catalog.api.test_access import apply, decide
from tests.catalog.api_hub import ApiHub, build_hub
from tests.catalog.portal.conftest import sign_in

UTC = dt.UTC
APP = "企业开办"
LOCAL = dt.timedelta(hours=8)  # China time


def _codes(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [credit_code(rng, "330100", dt.date(2020, 1, 1)) for _ in range(n)]


def _read(at: dt.datetime, app_id: str, subject: str, dataset: str = "SCJ-LIC") -> AuditRecord:
    return AuditRecord(
        at=at,
        request_id=uuid.uuid4().hex,
        actor_kind="app",
        method="GET",
        path=f"/api/v1/datasets/{dataset}/records",
        action="records.lookup",
        decision="allow",
        status=200,
        row_count=1,
        app_id=app_id,
        dataset_code=dataset,
        subject=subject,
    )


def _history(
    engine: sa.Engine,
    app_id: str,
    *,
    end: dt.datetime,
    days: int = 14,
    local_hours: range = range(24),
    per_hour: int = 10,
) -> None:
    """Steady usage: ``per_hour`` distinct enterprises in each of ``local_hours`` (China time), every day."""
    subjects = _codes(per_hour, 7)
    records = []
    for day in range(1, days + 1):
        date = (end - dt.timedelta(days=day)).date()
        for hour in local_hours:
            start = dt.datetime(date.year, date.month, date.day, hour, 5, tzinfo=UTC) - LOCAL
            records += [_read(start + dt.timedelta(minutes=i), app_id, s) for i, s in enumerate(subjects)]
    append(engine, records)


def _burst(engine: sa.Engine, app_id: str, now: dt.datetime, n: int = 60) -> None:
    append(engine, [_read(now - dt.timedelta(seconds=i + 1), app_id, s) for i, s in enumerate(_codes(n, 1))])


def _hub(tmp_path: Path, **settings: Any) -> ApiHub:
    throttle_general = {"general": {"anomaly_rate_limit": 2}}
    settings = {"anomaly_min_subjects": 30, "grade_policy": throttle_general, **settings}
    hub = build_hub(tmp_path, portal=True, **settings)
    a = apply(hub, APP, "SCJ-LIC")
    assert decide(hub, a["id"], decision="approve").status_code == 200
    return hub


def _scan(hub: ApiHub, now: dt.datetime | None = None) -> list[anomalies.Anomaly]:
    settings = hub.client.app.state.hub.settings
    found = anomalies.scan(
        hub.engine, anomalies.Thresholds.of(settings), GradePolicy(settings.grade_policy), now=now
    )
    hub.client.app.state.hub.throttles.forget()
    return found


def _lookup(hub: ApiHub, uscc: str) -> Any:
    return hub.client.get(
        "/api/v1/datasets/SCJ-LIC/records", params={"subject": uscc}, headers=hub.as_app(APP)
    )


def test_a_scraping_burst_is_flagged_shown_throttled_and_cleared(tmp_path: Path) -> None:
    hub = _hub(tmp_path)
    app_id = hub.apps[APP][0]
    _history(hub.engine, app_id, end=dt.datetime.now(UTC))
    # ordinary use today: nothing stands out
    for uscc in _codes(10, 7):
        assert _lookup(hub, uscc).status_code == 200
    assert _scan(hub) == []

    # the burst: 45 enterprises the app never looked at, within the hour, through the real API
    for uscc in _codes(45, 99):
        assert _lookup(hub, uscc).status_code == 200
    (found,) = _scan(hub)
    assert (found.app_id, found.dataset_code, found.department_code, found.kind) == (
        app_id,
        "SCJ-LIC",
        "SCJ",
        "distinct_subjects",
    )
    assert found.observed == 55 and found.baseline == 10 and found.threshold == 30
    assert found.details["history_windows"] > 300 and found.throttled_until is not None
    assert _scan(hub)[0].id == found.id  # scanning again updates the open anomaly
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.access_anomalies)).scalar() == 1

    # the grade policy throttles it: 2 calls a minute on that dataset
    answers = [_lookup(hub, uscc) for uscc in _codes(3, 5)]
    assert [r.status_code for r in answers] == [200, 200, 429]
    err = answers[-1].json()["error"]
    assert err["code"] == "anomaly_throttled" and "异常访问" in err["message_zh"]
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert hub.last_audit()["reason"] == "anomaly_throttled"

    # the owning department sees it; another department does not; the hub does
    client = TestClient(hub.client.app)
    scj = sign_in(client, hub.engine, "scj_aud").get("/portal/supervision").text
    assert "异常访问" in scj and "SCJ-LIC" in scj and APP in scj
    from catalog.access import staff
    from tests.catalog.api_hub import PASSWORD
    from tests.catalog.portal.conftest import csrf_of

    staff.create_staff(hub.engine, "zgj_aud", "ZGJ", ["auditor"], PASSWORD)
    zgj = TestClient(hub.client.app)
    login = zgj.post(
        "/portal/login",
        data={
            "username": "zgj_aud",
            "password": PASSWORD,
            "csrf_token": csrf_of(zgj.get("/portal/login").text),
        },
        follow_redirects=False,
    )
    assert login.status_code == 303
    other = zgj.get("/portal/supervision").text
    assert "SCJ-LIC" not in other and APP not in other
    hub_admin = sign_in(TestClient(hub.client.app), hub.engine, "hub_admin")
    text = hub_admin.get("/portal/supervision").text
    assert f'action="/portal/anomalies/{found.id}/clear"' in text

    # a department auditor cannot clear it; the hub admin can, with a reason
    r = client.post(
        f"/portal/anomalies/{found.id}/clear",
        data={"reason": "x", "csrf_token": csrf_of(scj)},
        follow_redirects=False,
    )
    assert r.status_code == 403
    r = hub_admin.post(
        f"/portal/anomalies/{found.id}/clear",
        data={"reason": "", "csrf_token": csrf_of(text)},
        follow_redirects=False,
    )
    assert r.status_code == 400
    r = hub_admin.post(
        f"/portal/anomalies/{found.id}/clear",
        data={"reason": "核实为年度换证集中办理", "csrf_token": csrf_of(text)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    (done,) = anomalies.list_anomalies(hub.engine, status="cleared")
    assert done.cleared_by == "hub_admin" and done.clear_reason == "核实为年度换证集中办理"
    hub.client.app.state.hub.throttles.forget()
    assert all(_lookup(hub, u).status_code == 200 for u in _codes(3, 6))


def test_calls_at_hours_the_app_never_uses_are_flagged(tmp_path: Path) -> None:
    hub = _hub(tmp_path)
    app_id = hub.apps[APP][0]
    # 03:30 China time, a night the app has never worked in its 14 days of office hours
    now = dt.datetime(2026, 12, 3, 3, 30, tzinfo=UTC) - LOCAL
    _history(hub.engine, app_id, end=now, local_hours=range(9, 17))  # office hours only
    night = [_read(now - dt.timedelta(minutes=50 - i), app_id, s) for i, s in enumerate(_codes(25, 7))]
    append(hub.engine, night)
    (found,) = _scan(hub, now)
    assert found.kind == "off_hours" and found.observed == 25 and found.threshold == 20
    assert found.details["usual_hours"] == list(range(9, 17)) and found.details["hours"] == {
        "02": 20,
        "03": 5,
    }
    # in office hours the same calls are usual
    day = now + dt.timedelta(hours=8)
    hub2 = _hub(tmp_path / "day")
    app2 = hub2.apps[APP][0]
    _history(hub2.engine, app2, end=day, local_hours=range(9, 17))
    append(
        hub2.engine, [_read(day - dt.timedelta(minutes=50 - i), app2, s) for i, s in enumerate(_codes(25, 7))]
    )
    assert _scan(hub2, day) == []


def test_steady_traffic_raises_nothing(tmp_path: Path) -> None:
    """Like the access benchmark's load, but with a history: an app that reads many different
    enterprises every hour goes on doing so."""
    hub = _hub(tmp_path)
    app_id = hub.apps[APP][0]
    now = dt.datetime(2026, 12, 3, 6, 30, tzinfo=UTC)  # 14:30 China time
    _history(hub.engine, app_id, end=now, per_hour=120, local_hours=range(0, 24))
    rng = random.Random(3)
    pool = _codes(300, 11)
    current = [_read(now - dt.timedelta(seconds=20 * i + 1), app_id, rng.choice(pool)) for i in range(150)]
    append(hub.engine, current)
    assert _scan(hub, now) == []


def test_a_new_app_is_learning_and_settings_move_the_bars(tmp_path: Path) -> None:
    hub = _hub(tmp_path)
    app_id = hub.apps[APP][0]
    now = dt.datetime.now(UTC)
    append(
        hub.engine, [_read(now - dt.timedelta(seconds=i + 1), app_id, s) for i, s in enumerate(_codes(60, 1))]
    )
    assert _scan(hub, now) == []  # no history yet: nothing to compare with
    lenient = _hub(tmp_path / "lenient", anomaly_min_history_windows=1, anomaly_min_subjects=100)
    app2 = lenient.apps[APP][0]
    _history(lenient.engine, app2, end=now, days=2)
    append(
        lenient.engine,
        [_read(now - dt.timedelta(seconds=i + 1), app2, s) for i, s in enumerate(_codes(60, 1))],
    )
    assert _scan(lenient, now) == []  # 60 distinct: above 3 × 10 but not above 100
    strict = _hub(tmp_path / "strict", anomaly_min_history_windows=1, anomaly_subject_factor=5.0)
    app3 = strict.apps[APP][0]
    _history(strict.engine, app3, end=now, days=2)
    append(
        strict.engine,
        [_read(now - dt.timedelta(seconds=i + 1), app3, s) for i, s in enumerate(_codes(60, 1))],
    )
    (found,) = _scan(strict, now)
    assert found.threshold == 50 and found.observed == 60


def test_flag_only_grades_do_not_throttle(tmp_path: Path) -> None:
    hub = build_hub(tmp_path, anomaly_min_subjects=30)  # general data: the default policy only flags
    a = apply(hub, APP, "SCJ-LIC")
    assert decide(hub, a["id"], decision="approve").status_code == 200
    app_id = hub.apps[APP][0]
    _history(hub.engine, app_id, end=dt.datetime.now(UTC))
    for uscc in _codes(45, 99):
        assert _lookup(hub, uscc).status_code == 200
    (found,) = _scan(hub)
    assert found.throttled_until is None and found.details["throttle_per_minute"] is None
    assert all(_lookup(hub, u).status_code == 200 for u in _codes(5, 4))


def test_clearing_needs_a_known_open_anomaly_and_a_reason(tmp_path: Path) -> None:
    from catalog.errors import HubError

    hub = _hub(tmp_path)
    with pytest.raises(HubError, match="anomaly_not_found"):
        anomalies.clear(hub.engine, 999, by="hub_admin", reason="x")
    app_id = hub.apps[APP][0]
    _history(hub.engine, app_id, end=dt.datetime.now(UTC))
    for uscc in _codes(45, 99):
        _lookup(hub, uscc)
    (found,) = _scan(hub)
    with pytest.raises(HubError, match="anomaly_reason_required"):
        anomalies.clear(hub.engine, found.id, by="hub_admin", reason="  ")
    anomalies.clear(hub.engine, found.id, by="hub_admin", reason="已核实")
    with pytest.raises(HubError, match="anomaly_cleared"):
        anomalies.clear(hub.engine, found.id, by="hub_admin", reason="again")
    # a new burst after clearing opens a new one
    assert _scan(hub)[0].id != found.id


def test_the_api_scans_in_the_background_while_it_serves(tmp_path: Path) -> None:
    import time

    hub = _hub(tmp_path, anomaly_scan_seconds=1)
    app_id = hub.apps[APP][0]
    _history(hub.engine, app_id, end=dt.datetime.now(UTC))
    with TestClient(hub.client.app) as served:  # the lifespan runs: the scanner starts
        for uscc in _codes(45, 99):
            path = "/api/v1/datasets/SCJ-LIC/records"
            assert served.get(path, params={"subject": uscc}, headers=hub.as_app(APP)).status_code == 200
        deadline = time.monotonic() + 20
        while not anomalies.list_anomalies(hub.engine) and time.monotonic() < deadline:
            time.sleep(0.2)
    (found,) = anomalies.list_anomalies(hub.engine)
    assert found.kind == "distinct_subjects" and found.app_id == app_id
