"""The whole hub on embedded backends: sample departments -> directory -> sync -> lake, quality, serving.

One module-scoped hub (SQLite hub DB, local warehouse) syncs all five sample datasets at
scale 0.1; the tests after the first change sources and check incremental runs, the file
ledger, drift, the block policy and that a failed run leaves the published state intact.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalog import publishing
from catalog.certificates import issuing
from catalog.directory import store
from catalog.runs import record as runs
from catalog.serving import tables as serving
from sharehub import pipeline
from sharehub.settings import Settings
from tests.sharehub.conftest import SyncedDemoHub

SCJ, GAJ, RSJ, FY, SGB = "SCJ-YYZZ-001", "GAJ-HJRK-001", "RSJ-SBJF-001", "FY-SXBZXR-001", "SGB-BSZN-001"
KEY_FIELD = {SCJ: "uscc", GAJ: "id_no", FY: "case_no", SGB: "item_code"}


@pytest.fixture(scope="module")
def hub_env(
    tmp_path_factory: pytest.TempPathFactory, synced_demo_hub: SyncedDemoHub
) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("hub")
    with synced_demo_hub(base) as env:
        manifest = json.loads((base / "sources" / "manifest.json").read_text(encoding="utf-8"))
        yield {**env, "manifest": manifest}


def run_of(env: dict[str, Any], code: str) -> dict[str, Any]:
    return runs.get_run(env["engine"], env["results"][code]["run_id"])


def test_every_dataset_published_with_bad_rows_quarantined(hub_env: dict[str, Any]) -> None:
    from sharehub.pipeline.reports import quarantine_rows

    for code in (SCJ, GAJ, RSJ, FY, SGB):
        run = run_of(hub_env, code)
        expected = hub_env["manifest"]["datasets"][code]
        assert run["status"] == "success", run["error"]
        assert run["rows_read"] == expected["rows"]
        assert run["rows_quarantined"] == expected["bad_rows"] >= 1
        assert run["rows_published"] == run["rows_read"] - run["rows_quarantined"]
        assert run["snapshot_id"] is not None
        bad = quarantine_rows(code, run["run_id"])
        assert len(bad) == expected["bad_rows"]
        if code in KEY_FIELD:  # the quarantine holds exactly the planted bad rows
            planted = {d["key"] for d in expected["defects"]}
            assert {r["record"][KEY_FIELD[code]] for r in bad} == planted
        for r in bad:
            assert r["reasons"] and all(x["message"] for x in r["reasons"])


def test_quarantine_reason_names_file_row_field_and_rule(hub_env: dict[str, Any]) -> None:
    from sharehub.pipeline.reports import quarantine_rows

    bad = quarantine_rows(SGB, run_of(hub_env, SGB)["run_id"])
    (row,) = [r for r in bad if r["reasons"][0]["rule"] == "compare"]
    assert row["source"] == "service_guides_20261101.parquet"
    (reason,) = row["reasons"]
    assert reason["field"] == "promised_days"
    p, legal = row["record"]["promised_days"], row["record"]["legal_days"]
    assert reason["message"] == f"promised_days: {p} is not <= legal_days ({legal})"


def test_serving_store_and_certificates(hub_env: dict[str, Any]) -> None:
    engine = hub_env["engine"]
    for code in (SCJ, GAJ, RSJ, FY, SGB):
        spec = store.get_dataset(engine, code).spec
        assert serving.count(engine, spec) == run_of(hub_env, code)["rows_published"]
    spec = store.get_dataset(engine, GAJ).spec
    person = next(iter(serving.lookup_subject(engine, spec, _some_key(engine, spec))))
    certs = issuing.certificates_of(engine, person["id_no"])
    assert [c["type_name"] for c in certs] == ["居民身份证"]
    assert issuing.identifier_is_well_formed(certs[0]["identifier"])
    scj = store.get_dataset(engine, SCJ).spec
    with engine.connect() as conn:
        import sqlalchemy as sa

        from catalog.db import tables

        statuses = dict(
            conn.execute(
                sa.select(tables.certificates.c.status, sa.func.count())
                .where(tables.certificates.c.dataset_code == scj.code)
                .group_by(tables.certificates.c.status)
            ).all()
        )
    assert sum(statuses.values()) == run_of(hub_env, SCJ)["rows_published"]
    assert statuses.get("revoked", 0) > 0 and statuses.get("valid", 0) > 0


def _some_key(engine: Any, spec: Any) -> str:
    import sqlalchemy as sa

    table = serving.serving_table(spec)
    with engine.connect() as conn:
        return str(conn.execute(sa.select(table.c[spec.primary_key[0]]).limit(1)).scalar_one())


def test_demo_access_calls_work_on_synced_hub(hub_env: dict[str, Any]) -> None:
    """What `make demo` prints: the apps, their grants, and calls that work as printed."""
    from catalog.api import create_app
    from sharehub.demo import access as demo_access

    engine = hub_env["engine"]
    access = demo_access.setup_access(engine, hub_env["settings"])
    assert [a["status"] for a in access.applications] == ["approved", "approved"]
    assert [a["decided_by"] for a in access.applications] == ["auto", demo_access.APPROVER]
    again = demo_access.setup_access(engine, hub_env["settings"])  # a second demo run is fine
    assert [a["id"] for a in again.applications] == [a["id"] for a in access.applications]
    # the portal sign-ins the demo prints work, with the new passwords of the second run only
    from catalog.access import staff

    assert set(again.portal) == set(demo_access.PORTAL_ACCOUNTS)
    for username, (password, _what) in again.portal.items():
        assert staff.authenticate_staff(engine, username, password) is not None, username
        assert staff.authenticate_staff(engine, username, access.portal[username][0]) is None, username
    client = TestClient(create_app(hub_env["settings"]))
    tokens = {}
    for name, (cid, secret) in again.credentials.items():
        r = client.post(
            "/api/v1/token",
            data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
        )
        assert r.status_code == 200, r.text
        tokens[name] = r.json()["access_token"]
    assert len(again.calls) >= 7
    bodies = {}
    for call in again.calls:
        headers = {"Authorization": f"Bearer {tokens[call.app]}"} if call.app else {}
        if call.purpose:
            headers |= {"X-End-User-Id": demo_access.END_USER, "X-Case-Number": demo_access.CASE_NUMBER}
        r = client.request(call.method, call.path, params=call.params, headers=headers)
        assert r.status_code == 200, (call.title, r.text)
        bodies[call.path] = r.json()
    (person,) = bodies[f"/api/v1/datasets/{GAJ}/records"]["items"]
    key = person["id_no"]
    assert "*" in key and len(key) == 18  # conditional grant approved with the default: masked
    assert bodies[f"/api/v1/datasets/{FY}/records"]["count"] == 1
    verify = [b for p, b in bodies.items() if p.endswith("/verify")]
    assert verify and verify[0]["checks"]["signature"] is True
    lines = demo_access.curl_lines(again, "http://127.0.0.1:8000")
    assert any("grant_type=client_credentials" in line for line in lines)
    assert sum(line.startswith("curl") for line in lines) == len(again.calls) + 1


def test_demo_exchange_profile_and_subscription(hub_env: dict[str, Any]) -> None:
    """What `make demo` prints for exchange: a recipient profile, and a subscription delivered into a
    second SQLite database, holding the court's list with the ID numbers masked as the API masks them."""
    from catalog.masking import mask
    from sharehub.demo import access as demo_access
    from sharehub.demo import exchange

    engine, settings = hub_env["engine"], hub_env["settings"]
    app_id = demo_access.setup_access(engine, settings).credentials["企业开办"][0]
    profile = exchange.issue_profile(engine, settings, app_id, "http://127.0.0.1:8000")
    doc = json.loads(profile.read_text(encoding="utf-8"))
    assert (
        doc["endpoint"] == "http://127.0.0.1:8000/api/v1/delta-sharing"
        and profile.stat().st_mode & 0o077 == 0
    )
    sub = exchange.subscribe(engine, settings, app_id, in_process=True)
    assert (
        sub.delivery["status"] == "success"
        and sub.delivery["inserted"] == run_of(hub_env, FY)["rows_published"]
    )
    with sqlite3.connect(sub.database) as db:
        rows = db.execute(f"SELECT case_no, id_or_uscc FROM {sub.table}").fetchall()
    curated = {
        r["case_no"]: r["id_or_uscc"] for r in pipeline.hub(settings).lake.read("curated", FY).to_pylist()
    }
    assert len(rows) == len(curated) and all(v == mask("citizen_id", curated[k]) for k, v in rows)
    assert not {v for _k, v in rows} & set(curated.values())  # nothing in clear
    again = exchange.subscribe(engine, settings, app_id, in_process=True)  # a second demo run
    assert again.id == sub.id and again.delivery["status"] == "current"


def test_incremental_sql_sync_and_time_travel(hub_env: dict[str, Any]) -> None:
    from lake import CURATED

    engine = hub_env["engine"]
    db = hub_env["refs"]["scj_db"].split("///", 1)[1]
    first = run_of(hub_env, SCJ)
    spec = store.get_dataset(engine, SCJ).spec
    with sqlite3.connect(db) as conn:
        (wm,) = conn.execute("SELECT max(updated_at) FROM business_licence").fetchone()
        later = (dt.datetime.fromisoformat(wm) + dt.timedelta(hours=1)).isoformat(sep=" ")
        uscc = [
            r[0]
            for r in conn.execute(
                "SELECT uscc FROM business_licence WHERE status = '存续' ORDER BY uscc LIMIT 200"
            )
        ]
        good = [u for u in uscc if serving.lookup_key(engine, spec, {"uscc": u})][:2]
        conn.executemany(
            "UPDATE business_licence SET ent_name = ent_name || '（更名）', updated_at = ? WHERE uscc = ?",
            [(later, u) for u in good],
        )
    out = pipeline.sync(SCJ)
    run = runs.get_run(engine, out["run_id"])
    assert run["status"] == "success"
    # closed start: rows at the old watermark are read again, nothing older
    assert 2 <= run["rows_read"] < first["rows_read"] // 2
    assert out["publish"]["updated"] == 2
    assert serving.lookup_key(engine, spec, {"uscc": good[0]})["ent_name"].endswith("（更名）")
    lake = pipeline.hub().lake
    from pyiceberg.expressions import EqualTo

    old = lake.read(CURATED, SCJ, snapshot_id=first["snapshot_id"], row_filter=EqualTo("uscc", good[0]))
    new = lake.read(CURATED, SCJ, row_filter=EqualTo("uscc", good[0]))
    assert not old.column("ent_name")[0].as_py().endswith("（更名）")
    assert new.column("ent_name")[0].as_py().endswith("（更名）")
    assert lake.read(CURATED, SCJ).num_rows == first["rows_published"]


def test_file_ledger_takes_each_file_once_and_reports_drift(hub_env: dict[str, Any]) -> None:
    engine = hub_env["engine"]
    out = pipeline.sync(GAJ)
    run = runs.get_run(engine, out["run_id"])
    assert run["status"] == "success" and run["rows_read"] == 0 and run["files"] == []
    folder = Path(hub_env["refs"]["gaj_drop"])
    src = folder / "residents_20261101.csv"
    lines = src.read_text(encoding="gb18030").splitlines()
    header = lines[0] + ",备注"
    body = [lines[1] + ",新增列"]
    (folder / "residents_20261105.csv").write_text("\n".join([header, *body]) + "\n", encoding="gb18030")
    out = pipeline.sync(GAJ)
    run = runs.get_run(engine, out["run_id"])
    assert run["status"] == "success", run["error"]
    assert [f["name"] for f in run["files"]] == ["residents_20261105.csv"] and run["rows_read"] == 1
    assert run["drift"]["added"] == ["备注"]
    assert "added columns: 备注" in run["drift"]["message"]


def test_failed_run_leaves_published_state_intact(hub_env: dict[str, Any]) -> None:
    engine = hub_env["engine"]
    folder = Path(hub_env["refs"]["fy_drop"])
    before = runs.last_successful_run(engine, FY)
    spec = store.get_dataset(engine, FY).spec
    count_before = serving.count(engine, spec)
    # the drop folder cannot be listed (an empty file is refused alone now, see test_bad_input)
    folder.rename(folder.with_name(folder.name + ".away"))
    try:
        with pytest.raises(Exception, match=r"cannot list files"):
            pipeline.sync(FY)
    finally:
        folder.with_name(folder.name + ".away").rename(folder)
    failed = runs.recent_runs(engine, limit=1, dataset_code=FY)[0]
    assert failed["status"] == "failed" and "cannot list files" in failed["error"]
    assert runs.last_successful_run(engine, FY)["run_id"] == before["run_id"]
    assert pipeline.hub().lake.current_snapshot_id("curated", FY) == before["snapshot_id"]
    assert serving.count(engine, spec) == count_before


def test_block_policy_publishes_nothing(hub_env: dict[str, Any], tmp_path: Path) -> None:
    from sharehub.demo import DIRECTORY_DIR

    engine = hub_env["engine"]
    text = (
        (DIRECTORY_DIR / "sgb.yaml")
        .read_text(encoding="utf-8")
        .replace("policy: quarantine", "policy: block")
    )
    (tmp_path / "sgb.yaml").write_text(text, encoding="utf-8")
    (change,) = publishing.publish_path(engine, tmp_path / "sgb.yaml")
    assert change.action == "updated"
    before = runs.last_successful_run(engine, SGB)
    with pytest.raises(pipeline.QualityBlocked, match="bad row\\(s\\) and the policy is block"):
        pipeline.sync(SGB, full=True)
    blocked = runs.recent_runs(engine, limit=1, dataset_code=SGB)[0]
    assert blocked["status"] == "blocked" and blocked["rows_quarantined"] >= 1
    assert pipeline.hub().lake.current_snapshot_id("curated", SGB) == before["snapshot_id"]
    publishing.publish_path(engine, DIRECTORY_DIR / "sgb.yaml")


@pytest.mark.airflow
def test_generated_dag_runs_the_real_pipeline(hub_env: dict[str, Any]) -> None:
    """One real `airflow dags test` run of a generated DAG against this hub."""
    from sharehub.airflow.env import ensure_airflow_db, run_dag

    settings: Settings = hub_env["settings"]
    ensure_airflow_db(settings)
    res = run_dag(SGB, full=True, settings=settings)
    assert res.state == "success", res.error if hasattr(res, "error") else res.log_path
    assert res.task_states == {"extract_land": "success", "validate": "success", "publish": "success"}
    run = runs.get_run(hub_env["engine"], str(res.run_id))
    assert run["trigger"] == "airflow" and run["status"] == "success" and run["full"] is True
    assert run["rows_read"] == hub_env["manifest"]["datasets"][SGB]["rows"]


def test_cli_runs_json(hub_env: dict[str, Any]) -> None:
    from typer.testing import CliRunner

    from sharehub.cli.main import app

    res = CliRunner().invoke(app, ["runs", "--json", "--dataset", SCJ])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert rows and all(r["dataset"] == SCJ for r in rows)
    assert {"run_id", "status", "rows_read", "rows_published", "rows_quarantined", "snapshot_id"} <= set(
        rows[0]
    )


def test_rows_bad_only_by_their_key_are_quarantined_beside_rule_breakers(hub_env: dict[str, Any]) -> None:
    """Duplicate keys are known only after the chunks (the key pass): those rows' records are
    fetched from the raw zone and join the rows the chunks found bad, in one correction list."""
    from sharehub.pipeline.reports import quarantine_rows

    folder = Path(hub_env["refs"]["fy_drop"])
    base = {
        "debtor_name": "测试人",
        "id_or_uscc": "11010519491231002X",
        "court": "杭州市西湖区人民法院",
        "obligation": "偿还借款",
        "performance": "全部未履行",
    }
    rows = [
        {**base, "case_no": "（2026）浙0106执90001号", "debtor_kind": "自然人", "publish_date": "2026-02-03"},
        {**base, "case_no": "（2026）浙0106执90002号", "debtor_kind": "外星人", "publish_date": "2026-02-01"},
        {**base, "case_no": "（2026）浙0106执90001号", "debtor_kind": "自然人", "publish_date": "2026-02-04"},
    ]
    # enough good rows to stay under the dataset's max_bad_ratio (5 %)
    rows += [
        {
            **base,
            "case_no": f"（2026）浙0106执{91000 + i}号",
            "debtor_kind": "自然人",
            "publish_date": "2026-02-02",
        }
        for i in range(97)
    ]
    drop = folder / "dishonest_debtors_20261121.jsonl"
    drop.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    try:
        result = pipeline.sync(FY)
    finally:
        drop.unlink()
    assert result["publish"]["published"] == 97
    bad = quarantine_rows(FY, result["run_id"])
    assert [(r["row"], r["record"]["case_no"], [x["rule"] for x in r["reasons"]]) for r in bad] == [
        (1, rows[0]["case_no"], ["primary_key"]),
        (2, rows[1]["case_no"], ["enum"]),
        (3, rows[2]["case_no"], ["primary_key"]),
    ]
    assert bad[0]["record"]["publish_date"] == "2026-02-03"
