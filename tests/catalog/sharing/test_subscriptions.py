"""Subscriptions into the consumer's own PostgreSQL and MariaDB: after each source change the
target equals the granted, masked view of curated (mirror) or holds exactly the changes
(append); a crash after the target committed and a retry apply nothing twice; a change only to
ungranted fields delivers nothing; a revoked grant stops delivery and says why."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from catalog.access import applications
from catalog.directory.grades import DEFAULT_POLICY
from catalog.errors import HubError
from catalog.masking import mask
from catalog.sharing import subscriptions
from sharehub import pipeline
from tests.catalog.sharing.sharing_hub import CODE, SharingHub, build

pytestmark = pytest.mark.services


class Crash(Exception):
    pass


def _target(request: pytest.FixtureRequest, kind: str) -> str:
    return str(request.getfixturevalue("pg_url" if kind == "postgresql" else "mariadb_url"))


def _deliver(
    hub: SharingHub, sub: subscriptions.Subscription, url: str, tmp: Path, **kw: Any
) -> dict[str, Any]:
    lake = pipeline.hub(hub.settings).lake
    return subscriptions.deliver(hub.engine, lake, sub.id, target_url=url, policy=DEFAULT_POLICY, **kw)


def _expected(hub: SharingHub) -> dict[int, tuple[str, int]]:
    """The granted (pid, name masked, amount), from the source's current rows."""
    import sqlite3

    with sqlite3.connect(hub.source) as db:
        rows = db.execute("SELECT pid, name, amount FROM people").fetchall()
    return {pid: (mask("name", name), amount) for pid, name, amount in rows}


def _mirror(url: str) -> dict[int, tuple[str, int]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT pid, name, amount FROM people_mirror")).all()
    finally:
        engine.dispose()
    return {int(r[0]): (r[1], int(r[2])) for r in rows}


def _row_keys(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {str(r[0]) for r in conn.execute(sa.text("SELECT _sh_key FROM people_mirror"))}
    finally:
        engine.dispose()


def _changes(url: str) -> list[tuple[int, int, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT pid, amount, _change_type FROM people_changes")).all()
    finally:
        engine.dispose()
    return sorted((int(r[0]), int(r[1]), str(r[2])) for r in rows)


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_deliveries_keep_the_target_exact_through_changes_crashes_and_revocation(
    tmp_path: Path, request: pytest.FixtureRequest, kind: str
) -> None:
    url = _target(request, kind)
    hub = build(tmp_path)
    hub.sync()
    grant_id = hub.grant("统计分析", ["pid", "name", "amount"])  # name masked; phone, city not granted
    app_id = hub.apps["统计分析"][0]
    subs = {
        mode: subscriptions.subscribe(
            hub.engine,
            app_id,
            CODE,
            target_ref="tjj_db",
            target_table=f"people_{'mirror' if mode == 'mirror' else 'changes'}",
            mode=mode,
            by="test",
            policy=DEFAULT_POLICY,
        )
        for mode in ("mirror", "append")
    }

    def both(**kw: Any) -> dict[str, dict[str, Any]]:
        return {mode: _deliver(hub, sub, url, tmp_path, **kw) for mode, sub in subs.items()}

    first = both()
    assert first["mirror"]["inserted"] == 50 and _mirror(url) == _expected(hub)
    assert len(_changes(url)) == 50
    keys = _row_keys(url)  # opaque: an HMAC under the subscription's own secret, not the key
    assert len(keys) == 50 and all(len(k) == 64 and int(k, 16) >= 0 for k in keys)
    assert not {"1", "[1]", '["1"]'} & keys

    hub.change(range(1, 4), at=dt.datetime(2026, 11, 2, 9, 0), version=1)
    hub.sync()
    second = both()
    assert second["mirror"]["updated"] == 3 and _mirror(url) == _expected(hub)
    assert [c for c in _changes(url) if c[2] != "insert"] == sorted(
        [(p, p * 10, "update_preimage") for p in (1, 2, 3)]
        + [(p, p * 10 + 1, "update_postimage") for p in (1, 2, 3)]
    )

    hub.add(range(51, 53), at=dt.datetime(2026, 11, 3, 9, 0))
    hub.sync()
    assert both()["mirror"]["inserted"] == 2 and _mirror(url) == _expected(hub)

    hub.rephone(range(1, 11), at=dt.datetime(2026, 11, 4, 9, 0))  # only an ungranted field changes
    hub.sync()
    before = _changes(url)
    fourth = both()
    assert fourth["mirror"]["updated"] == 0 and _changes(url) == before

    # a crash after the target committed, before the hub recorded it: the retry applies nothing twice
    hub.change(range(4, 7), at=dt.datetime(2026, 11, 5, 9, 0), version=2)
    hub.sync()

    def crash_at(where: str) -> Any:
        def fault(point: str) -> None:
            if point == where:
                raise Crash(point)

        return fault

    old = _mirror(url)
    for sub in subs.values():  # first before the target's commit: it is rolled back
        with pytest.raises(Crash):
            _deliver(hub, sub, url, tmp_path, fault=crash_at("before_target_commit"))
    assert _mirror(url) == old and _changes(url) == before
    for sub in subs.values():  # then after it: the target has it, the hub does not know
        with pytest.raises(Crash):
            _deliver(hub, sub, url, tmp_path, fault=crash_at("after_target_commit"))
    retried = both()
    assert retried["mirror"]["status"] == "current" and _mirror(url) == _expected(hub)
    assert len([c for c in _changes(url) if c[0] in (4, 5, 6) and c[2] != "insert"]) == 6  # not 12
    history = subscriptions.history(hub.engine, subs["mirror"].id)
    assert [h["status"] for h in history[:3]] == ["current", "recovered", "failed"]
    recovered = history[1]  # the attempt that died after the target's commit, found there and recorded
    assert (recovered["updated"], recovered["from_snapshot"]) == (3, fourth["mirror"]["to_snapshot"])
    assert "Crash: before_target_commit" in history[2]["error"]

    # the grant ends: delivery stops, says why, and writes nothing
    applications.revoke(hub.engine, grant_id, by="shr_approver", reason="项目结束")
    hub.change(range(7, 9), at=dt.datetime(2026, 11, 6, 9, 0), version=3)
    hub.sync()
    frozen = _mirror(url)
    stopped = _deliver(hub, subs["mirror"], url, tmp_path)
    assert stopped["status"] == "stopped" and "grant" in stopped["error"] and _mirror(url) == frozen


def test_a_subscription_needs_bulk_access_and_a_plain_target(tmp_path: Path) -> None:
    hub = build(tmp_path)
    hub.sync()
    app_id = hub.apps["统计分析"][0]
    kw: dict[str, Any] = {"target_ref": "tjj_db", "mode": "mirror", "by": "t", "policy": DEFAULT_POLICY}
    with pytest.raises(HubError, match="share_not_found"):
        subscriptions.subscribe(hub.engine, app_id, CODE, target_table="people", **kw)  # no grant yet
    hub.grant("统计分析", ["pid"])
    for bad in ("people; DROP TABLE x", "_sharehub_deliveries", "1people", "人员"):
        with pytest.raises(HubError, match="bad_subscription"):
            subscriptions.subscribe(hub.engine, app_id, CODE, target_table=bad, **kw)
    with pytest.raises(HubError, match="bad_subscription"):
        subscriptions.subscribe(
            hub.engine, app_id, CODE, target_table="people", **{**kw, "mode": "sometimes"}
        )
    assert subscriptions.subscribe(hub.engine, app_id, CODE, target_table="people", **kw).status == "active"


def test_subscriptions_from_the_command_line_into_sqlite(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from sharehub.cli.main import app
    from sharehub.settings import get_settings

    hub = build(tmp_path)
    hub.sync()
    hub.grant("统计分析", ["pid", "amount"])
    app_id = hub.apps["统计分析"][0]
    target = tmp_path / "tjj.db"
    env = {
        "SHAREHUB_VAR_DIR": str(tmp_path / "var"),
        "SHAREHUB_CONNECTIONS__TJJ_DB": f"sqlite:///{target}",
        "SHAREHUB_CONNECTIONS__SHR_SRC": f"sqlite:///{hub.source}",
    }
    get_settings.cache_clear()
    try:
        run = CliRunner().invoke
        made = run(
            app, ["subscriptions", "create", app_id, CODE, "--target", "tjj_db", "--table", "people"], env=env
        )
        assert made.exit_code == 0, made.output
        sub_id = made.output.split()[1].rstrip(":")
        done = run(app, ["subscriptions", "deliver", sub_id], env=env)
        assert done.exit_code == 0, done.output
        assert '"inserted": 50' in done.output
        listed = json.loads(run(app, ["subscriptions", "list", "--json"], env=env).output)
        assert listed[0]["last_snapshot_id"] and listed[0]["last_error"] is None
        hist = json.loads(run(app, ["subscriptions", "history", sub_id, "--json"], env=env).output)
        assert [h["status"] for h in hist] == ["success"] and hist[0]["inserted"] == 50
        bad = run(
            app,
            ["subscriptions", "create", app_id, "SHR-API-ONLY", "--target", "tjj_db", "--table", "x"],
            env=env,
        )
        assert bad.exit_code == 1 and "share_not_found" in bad.output
    finally:
        get_settings.cache_clear()
    engine = sa.create_engine(f"sqlite:///{target}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*), sum(amount) FROM people")).one() == (
            50,
            sum(p * 10 for p in range(1, 51)),
        )
    engine.dispose()


def test_both_departments_see_a_subscription_and_nobody_else(tmp_path: Path) -> None:
    from catalog.access import staff

    hub = build(tmp_path)
    hub.sync()
    hub.grant("统计分析", ["pid", "amount"])
    app_id = hub.apps["统计分析"][0]
    sub = subscriptions.subscribe(
        hub.engine, app_id, CODE, target_ref="tjj_db", target_table="people", mode="mirror", by="t",
        policy=DEFAULT_POLICY,
    )  # fmt: skip
    _deliver(hub, sub, f"sqlite:///{tmp_path / 'tjj.db'}", tmp_path)

    def as_app(name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {hub.token(name)}"}

    def as_staff(username: str, dept: str | None, roles: list[str]) -> dict[str, str]:
        staff.create_staff(hub.engine, username, dept, roles, "correct horse battery staple 1")
        r = hub.client.post(
            "/api/v1/token",
            data={
                "grant_type": "password",
                "username": username,
                "password": "correct horse battery staple 1",
            },
        )
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    path = f"/api/v1/subscriptions/{sub.id}/deliveries"
    for headers in (
        as_app("统计分析"),
        as_staff("tjj_aud", "TJJ", ["auditor"]),
        as_staff("shr_aud", "SHR", ["auditor"]),
    ):
        listed = hub.client.get("/api/v1/subscriptions", headers=headers).json()
        assert [s["id"] for s in listed["items"]] == [sub.id]
        got = hub.client.get(path, headers=headers).json()
        assert got["items"][0]["status"] == "success" and got["items"][0]["inserted"] == 50
    # another app, another department: nothing, and the same 404 as for a subscription that does not exist
    for headers in (as_app("另一系统"),):
        assert hub.client.get("/api/v1/subscriptions", headers=headers).json()["items"] == []
        r = hub.client.get(path, headers=headers)
        assert r.status_code == 404 and r.json()["error"]["code"] == "subscription_not_found"
    assert (
        hub.client.get("/api/v1/subscriptions/999/deliveries", headers=as_app("统计分析")).status_code == 404
    )
    assert hub.client.get("/api/v1/subscriptions").status_code == 401
