"""The subscriptions pages: both departments — the subscriber's and the data owner's — see a
subscription, its deliveries with row counts and a failure's reason; a third department sees
nothing, not even that it exists; the subscriber ends it; the target's URL never shows."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

from fastapi.testclient import TestClient

from catalog.access import staff
from catalog.db import tables
from catalog.directory.grades import DEFAULT_POLICY
from catalog.sharing import subscriptions
from sharehub import pipeline
from tests.catalog.api_hub import PASSWORD
from tests.catalog.portal.conftest import csrf_of
from tests.catalog.portal.test_sharing_page import _signed_in
from tests.catalog.sharing.sharing_hub import CODE, build

SECRET = "pw-Zq81x"


def test_both_departments_follow_a_subscription_and_the_subscriber_ends_it(tmp_path: Path) -> None:
    hub = build(tmp_path, portal=True)
    hub.sync()
    hub.grant("统计分析", ["pid", "name", "amount"])
    with hub.engine.begin() as conn:
        conn.execute(
            tables.departments.insert().values(
                code="XYZ", name="无关局", credit_code=None, contact="", updated_at=dt.datetime.now(dt.UTC)
            )
        )
    for name, dept, roles in (
        ("tjj_app", "TJJ", ["applicant"]),
        ("shr_appr", "SHR", ["approver"]),
        ("xyz_aud", "XYZ", ["auditor"]),
    ):
        staff.create_staff(hub.engine, name, dept, roles, PASSWORD)
    sub = subscriptions.subscribe(
        hub.engine, hub.apps["统计分析"][0], CODE, target_ref="tjj_db", target_table="people", mode="mirror",
        by="ops", policy=DEFAULT_POLICY,
    )  # fmt: skip
    lake = pipeline.hub(hub.settings).lake
    target = f"sqlite:///{tmp_path / 'tjj.db'}"
    subscriptions.deliver(hub.engine, lake, sub.id, target_url=target, policy=DEFAULT_POLICY)
    unreachable = f"postgresql+psycopg://tjj:{SECRET}@127.0.0.1:1/tjj?connect_timeout=2"
    hub.change(range(1, 4), at=dt.datetime(2026, 11, 2, 9, 0), version=1)
    hub.sync()
    with contextlib.suppress(Exception):  # the failure is what the pages must show
        subscriptions.deliver(hub.engine, lake, sub.id, target_url=unreachable, policy=DEFAULT_POLICY)

    for who in ("tjj_app", "shr_appr"):
        me = _signed_in(TestClient(hub.client.app), who)
        listed = me.get("/portal/subscriptions")
        assert listed.status_code == 200 and f'href="/portal/subscriptions/{sub.id}"' in listed.text
        assert "tjj_db.people" in listed.text and "OperationalError" in listed.text
        one = me.get(f"/portal/subscriptions/{sub.id}")
        assert one.status_code == 200
        assert "delivery-success" in one.text and "delivery-failed" in one.text and ">50<" in one.text
        for page in (listed.text, one.text):
            assert SECRET not in page and "127.0.0.1:1" not in page and "sqlite:///" not in page
    shr = _signed_in(TestClient(hub.client.app), "shr_appr")
    form = {"reason": "不要了", "csrf_token": csrf_of(shr.get(f"/portal/subscriptions/{sub.id}").text)}
    assert "/end" not in shr.get(f"/portal/subscriptions/{sub.id}").text  # the owner revokes grants instead
    assert shr.post(f"/portal/subscriptions/{sub.id}/end", data=form).status_code == 403

    other = _signed_in(TestClient(hub.client.app), "xyz_aud")
    assert "tjj_db" not in other.get("/portal/subscriptions").text
    missing = other.get("/portal/subscriptions/999999")
    hidden = other.get(f"/portal/subscriptions/{sub.id}")
    assert hidden.status_code == missing.status_code == 404
    assert "tjj_db" not in hidden.text and CODE not in hidden.text

    tjj = _signed_in(TestClient(hub.client.app), "tjj_app")
    page = tjj.get(f"/portal/subscriptions/{sub.id}").text
    r = tjj.post(
        f"/portal/subscriptions/{sub.id}/end",
        data={"reason": "系统下线", "csrf_token": csrf_of(page)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    after = tjj.get(f"/portal/subscriptions/{sub.id}").text
    assert "系统下线" in after and "/end" not in after
    assert subscriptions.get(hub.engine, sub.id).status == "ended"
    stopped = subscriptions.deliver(hub.engine, lake, sub.id, target_url=target, policy=DEFAULT_POLICY)
    assert stopped["status"] == "stopped" and "系统下线" in stopped["error"]
