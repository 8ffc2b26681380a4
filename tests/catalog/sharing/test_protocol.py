"""The Delta Sharing endpoints as a hostile recipient sees them: only granted tables listed, only
granted fields in the handed-out file, masked values masked exactly as the API masks them,
versions from the curated snapshots, time travel, revoked grants and tokens refused, links
that stop working, and every call audited with what it exposed."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from catalog.access import applications
from catalog.db import tables
from catalog.masking import mask
from catalog.sharing import recipients
from tests.catalog.sharing.sharing_hub import CODE, SharingHub, build

BASE = "/api/v1/delta-sharing"
TABLE = f"{BASE}/shares/sharehub/schemas/shr/tables/shr-people"


@pytest.fixture
def hub(tmp_path: Path) -> SharingHub:
    h = build(tmp_path)
    h.sync()
    return h


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _lines(r: Any) -> list[dict[str, Any]]:
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


def _file(hub: SharingHub, lines: list[dict[str, Any]]) -> Any:
    (f,) = [x["file"] for x in lines if "file" in x]
    path = f["url"].split("testserver", 1)[1]
    r = hub.client.get(path)
    assert r.status_code == 200, r.text
    return pq.read_table(io.BytesIO(r.content))


def test_only_granted_tables_fields_and_masks_leave(hub: SharingHub) -> None:
    token = hub.token("统计分析")
    # nothing granted: nothing listed, and the table answers as if it did not exist
    assert hub.client.get(f"{BASE}/shares", headers=_auth(token)).json() == {"items": []}
    r = hub.client.post(f"{TABLE}/query", json={}, headers=_auth(token))
    assert r.status_code == 404 and r.json()["error"]["code"] == "share_not_found"

    hub.grant("统计分析", ["pid", "name", "city", "updated_at"])  # no phone, no amount; name masked
    shares = hub.client.get(f"{BASE}/shares", headers=_auth(token)).json()
    assert [s["name"] for s in shares["items"]] == ["sharehub"]
    assert hub.client.get(f"{BASE}/shares/sharehub/schemas", headers=_auth(token)).json()["items"] == [
        {"name": "shr", "share": "sharehub"}
    ]
    tables_ = hub.client.get(f"{BASE}/shares/sharehub/all-tables", headers=_auth(token)).json()["items"]
    assert [t["name"] for t in tables_] == ["shr-people"]  # the interface-only dataset is not listed

    r = hub.client.get(f"{TABLE}/version", headers=_auth(token))
    assert r.status_code == 200 and r.headers["delta-table-version"] == "0"
    meta = _lines(hub.client.get(f"{TABLE}/metadata", headers=_auth(token)))
    schema = json.loads(meta[1]["metaData"]["schemaString"])
    assert [f["name"] for f in schema["fields"]] == ["pid", "name", "city", "updated_at"]

    lines = _lines(hub.client.post(f"{TABLE}/query", json={}, headers=_auth(token)))
    data = _file(hub, lines)
    assert data.column_names == ["pid", "name", "city", "updated_at"]
    rows = {r["pid"]: r for r in data.to_pylist()}
    assert len(rows) == 50 and rows[7]["name"] == mask("name", "张7") != "张7"
    everything = json.dumps(data.to_pylist(), ensure_ascii=False, default=str) + json.dumps(lines)
    for secret in ("1380000", '"张7"', "amount", "phone"):  # phones, a clear name, ungranted fields
        assert secret not in everything

    # audited: the query with the fields released and the rows its file holds, and the download
    a = tables.audit
    with hub.engine.connect() as conn:
        q = conn.execute(sa.select(a).where(a.c.action == "sharing.query").order_by(a.c.seq)).all()
        d = conn.execute(sa.select(a).where(a.c.action == "sharing.file")).all()
    assert [(r.decision, r.reason) for r in q] == [("deny", "share_not_found"), ("allow", None)]
    assert q[1].dataset_code == CODE and q[1].row_count == 50
    assert q[1].fields == [f"{CODE}.pid", f"{CODE}.name:masked", f"{CODE}.city", f"{CODE}.updated_at"]
    assert len(d) == 1 and d[0].row_count == 50 and d[0].app_id == hub.apps["统计分析"][0]


def test_versions_follow_the_snapshots_and_time_travel(hub: SharingHub) -> None:
    token = hub.token("统计分析")
    hub.grant("统计分析", ["pid", "amount"])
    first = _file(hub, _lines(hub.client.post(f"{TABLE}/query", json={}, headers=_auth(token))))
    hub.change(range(1, 11), at=dt.datetime(2026, 11, 2, 9, 0), version=1)
    hub.sync()
    r = hub.client.get(f"{TABLE}/version", headers=_auth(token))
    assert r.headers["delta-table-version"] == "1"
    latest = _lines(hub.client.post(f"{TABLE}/query", json={}, headers=_auth(token)))
    now = {x["pid"]: x["amount"] for x in _file(hub, latest).to_pylist()}
    assert now[3] == 31 and now[20] == 200
    old = _lines(hub.client.post(f"{TABLE}/query", json={"version": 0}, headers=_auth(token)))
    assert old[-1]["file"]["version"] == 0
    assert {x["pid"]: x["amount"] for x in _file(hub, old).to_pylist()} == {
        x["pid"]: x["amount"] for x in first.to_pylist()
    }
    stamp = dt.datetime.fromtimestamp(old[-1]["file"]["timestamp"] / 1000, dt.UTC)
    by_time = _lines(
        hub.client.post(f"{TABLE}/query", json={"timestamp": stamp.isoformat()}, headers=_auth(token))
    )
    assert by_time[-1]["file"]["version"] == 0
    for bad in ({"version": 9}, {"version": -1}, {"timestamp": "2000-01-01T00:00:00Z"}):
        r = hub.client.post(f"{TABLE}/query", json=bad, headers=_auth(token))
        assert r.status_code == 404 and r.json()["error"]["code"] == "version_not_found"


def test_revoking_the_grant_stops_queries_and_the_links_already_handed_out(hub: SharingHub) -> None:
    token = hub.token("统计分析")
    grant_id = hub.grant("统计分析", ["pid", "city"])
    lines = _lines(hub.client.post(f"{TABLE}/query", json={}, headers=_auth(token)))
    link = lines[-1]["file"]["url"].split("testserver", 1)[1]
    applications.revoke(hub.engine, grant_id, by="shr_approver", reason="项目结束")
    assert hub.client.post(f"{TABLE}/query", json={}, headers=_auth(token)).status_code == 404
    r = hub.client.get(link)
    assert r.status_code == 403 and r.json()["error"]["code"] == "sharing_file_expired"
    # a forged or altered link is the same refusal
    assert hub.client.get(link[:-4] + "AAAA").status_code == 403


def test_a_link_works_where_the_file_is_not_cached(hub: SharingHub, tmp_path: Path) -> None:
    """Another API replica (its own var dir), or a cleared cache: the link still gives the file."""
    token = hub.token("统计分析")
    hub.grant("统计分析", ["pid", "name"])
    hub.change(range(1, 4), at=dt.datetime(2026, 11, 2, 9, 0), version=1)
    hub.sync()
    query = _lines(hub.client.post(f"{TABLE}/query", json={"version": 0}, headers=_auth(token)))
    changes = _lines(hub.client.get(f"{TABLE}/changes?startingVersion=0", headers=_auth(token)))
    (cdf,) = [c["cdf"] for c in changes if "cdf" in c]  # version 1 changed nothing the grant shows
    assert cdf["version"] == 0
    cached = sorted((tmp_path / "var" / "sharing").glob("*.parquet"))
    assert cached
    for path in cached:
        path.unlink()
    for url, columns in (
        (query[-1]["file"]["url"], ["pid", "name"]),
        (cdf["url"], ["pid", "name", "_change_type"]),
    ):
        r = hub.client.get(url.split("testserver", 1)[1])
        assert r.status_code == 200, r.text
        data = pq.read_table(io.BytesIO(r.content))
        assert data.column_names == columns and data.num_rows == 50
    assert {f"{query[-1]['file']['id']}.parquet", f"{cdf['id']}.parquet"} <= {
        p.name for p in (tmp_path / "var" / "sharing").glob("*.parquet")
    }


def test_a_changed_grant_gets_a_new_file_and_other_apps_see_nothing(hub: SharingHub) -> None:
    token = hub.token("统计分析")
    hub.grant("统计分析", ["pid", "name"])
    masked = _lines(hub.client.post(f"{TABLE}/query", json={}, headers=_auth(token)))
    hub.grant("统计分析", ["pid", "name"], clear=["name"])  # re-approved in clear: a new grant
    clear = _lines(hub.client.post(f"{TABLE}/query", json={}, headers=_auth(token)))
    assert masked[-1]["file"]["id"] != clear[-1]["file"]["id"]
    assert {r["pid"]: r["name"] for r in _file(hub, clear).to_pylist()}[7] == "张7"
    # the masked link is no longer the grant's: refused
    old = masked[-1]["file"]["url"].split("testserver", 1)[1]
    assert hub.client.get(old).status_code == 403
    other = hub.token("另一系统")
    assert hub.client.get(f"{BASE}/shares/sharehub/all-tables", headers=_auth(other)).json() == {"items": []}


def test_recipient_profiles_are_issued_revoked_and_never_stored_in_clear(hub: SharingHub) -> None:
    hub.grant("统计分析", ["pid"])
    app_id = hub.apps["统计分析"][0]
    token, rec = recipients.issue(hub.engine, app_id, days=30, label="分析平台", by="test")
    assert token.startswith("shr_")
    with hub.engine.connect() as conn:
        stored = conn.execute(sa.select(tables.sharing_recipients)).one()
    assert token not in json.dumps(dict(stored._mapping), default=str)
    assert hub.client.get(f"{TABLE}/version", headers=_auth(token)).status_code == 200
    recipients.revoke(hub.engine, rec.id, by="test")
    r = hub.client.get(f"{TABLE}/version", headers=_auth(token))
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
    for bad in ("shr_" + "x" * 43, "not-a-token", ""):
        assert hub.client.get(f"{BASE}/shares", headers=_auth(bad)).status_code == 401
    with pytest.raises(Exception, match="profile_days"):
        recipients.issue(hub.engine, app_id, days=400, label="x", by="test")


def test_grades_without_bulk_access_are_never_shared_by_file(tmp_path: Path) -> None:
    h = build(tmp_path, grade_policy={"general": {"bulk_allowed": False}})
    h.sync()
    token = h.token("统计分析")
    h.grant("统计分析", ["pid"])
    assert h.client.get(f"{BASE}/shares", headers=_auth(token)).json() == {"items": []}
    assert h.client.post(f"{TABLE}/query", json={}, headers=_auth(token)).status_code == 404


def test_profiles_from_the_command_line(hub: SharingHub, tmp_path: Path) -> None:
    import os
    import stat

    from typer.testing import CliRunner

    from sharehub.cli.main import app
    from sharehub.settings import get_settings

    hub.grant("统计分析", ["pid"])
    app_id = hub.apps["统计分析"][0]
    out = tmp_path / "tjj.share"
    env = {"SHAREHUB_VAR_DIR": str(tmp_path / "var")}
    get_settings.cache_clear()
    try:
        run = CliRunner().invoke
        r = run(
            app,
            ["sharing", "profile", app_id, "-o", str(out), "--endpoint", "http://testserver", "--days", "7"],
            env=env,
        )
        assert r.exit_code == 0, r.output
        doc = json.loads(out.read_text(encoding="utf-8"))
        assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
        assert (
            doc["endpoint"] == "http://testserver/api/v1/delta-sharing"
            and doc["shareCredentialsVersion"] == 1
        )
        assert hub.client.get(f"{TABLE}/version", headers=_auth(doc["bearerToken"])).status_code == 200
        listed = json.loads(run(app, ["sharing", "list", "--json"], env=env).output)
        assert doc["bearerToken"] not in json.dumps(listed) and listed[0]["app_id"] == app_id
        assert run(app, ["sharing", "revoke", str(listed[0]["id"])], env=env).exit_code == 0
        assert hub.client.get(f"{TABLE}/version", headers=_auth(doc["bearerToken"])).status_code == 401
        bad = run(app, ["sharing", "profile", "app-nope", "-o", str(tmp_path / "x")], env=env)
        assert bad.exit_code == 1 and "app_not_found" in bad.output
    finally:
        get_settings.cache_clear()


def test_the_change_feed_shows_what_the_grant_sees_change(hub: SharingHub) -> None:
    token = hub.token("统计分析")
    hub.grant("统计分析", ["pid", "name", "amount"])  # name masked; phone and city not granted
    hub.change(range(1, 4), at=dt.datetime(2026, 11, 2, 9, 0), version=1)  # version 1: 3 updates
    hub.sync()
    hub.add(range(51, 53), at=dt.datetime(2026, 11, 3, 9, 0))  # version 2: 2 inserts
    hub.sync()
    hub.rephone(range(1, 11), at=dt.datetime(2026, 11, 4, 9, 0))  # version 3: nothing it can see
    hub.sync()
    assert hub.client.get(f"{TABLE}/version", headers=_auth(token)).headers["delta-table-version"] == "3"

    r = hub.client.get(f"{TABLE}/changes", params={"startingVersion": 1}, headers=_auth(token))
    lines = _lines(r)
    assert r.headers["delta-table-version"] == "3"
    cdf = [x["cdf"] for x in lines if "cdf" in x]
    assert [c["version"] for c in cdf] == [1, 2]  # version 3 changed only what is not granted
    changes = []
    for c in cdf:
        data = pq.read_table(io.BytesIO(hub.client.get(c["url"].split("testserver", 1)[1]).content))
        assert data.column_names == ["pid", "name", "amount", "_change_type"]
        changes += [(c["version"], x["pid"], x["amount"], x["_change_type"]) for x in data.to_pylist()]
        assert all(x["name"] == mask("name", f"张{x['pid']}") for x in data.to_pylist())
    assert sorted(changes) == sorted(
        [(1, p, p * 10, "update_preimage") for p in (1, 2, 3)]
        + [(1, p, p * 10 + 1, "update_postimage") for p in (1, 2, 3)]
        + [(2, 51, 510, "insert"), (2, 52, 520, "insert")]
    )
    text = r.text + json.dumps(changes)
    assert "1390000" not in text and "1380000" not in text and "phone" not in text  # no number, old or new
    # version 0 is the whole table inserted; a range past the end is refused
    first = _lines(
        hub.client.get(
            f"{TABLE}/changes", params={"startingVersion": 0, "endingVersion": 0}, headers=_auth(token)
        )
    )
    assert [x["cdf"]["version"] for x in first if "cdf" in x] == [0]
    bad = hub.client.get(f"{TABLE}/changes", params={"startingVersion": 9}, headers=_auth(token))
    assert bad.status_code == 404
    with hub.engine.connect() as conn:
        rec = conn.execute(
            sa.select(tables.audit)
            .where(tables.audit.c.action == "sharing.changes")
            .order_by(tables.audit.c.seq)
        ).first()
    assert rec is not None and rec.row_count == 8 and rec.dataset_code == CODE
