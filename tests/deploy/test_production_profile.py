"""The production profile end to end, on real servers: hub DB on PostgreSQL (migrated with
Alembic), lake on an S3 endpoint (moto's server here, MinIO in compose), Airflow's metadata on
PostgreSQL with the scheduler, dag-processor and api-server running the generated DAGs
(LocalExecutor; compose uses Celery), a department database on PostgreSQL and another on
MariaDB, and the access API served by uvicorn with several worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from catalog import audit, publishing
from catalog.access import app_registry, applications
from catalog.db import tables
from catalog.db.engine import engine_for
from catalog.runs import record as runs
from sharehub import pipeline
from sharehub.airflow.services import AirflowServices, free_port
from sharehub.settings import Settings, get_settings
from tests.conftest import S3Endpoint, _fresh_schema_db

pytestmark = [pytest.mark.services, pytest.mark.s3, pytest.mark.airflow, pytest.mark.slow]

CODES = ["SCJ-YYZZ-001", "GAJ-HJRK-001", "RSJ-SBJF-001", "FY-SXBZXR-001", "SGB-BSZN-001"]
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def extra_pg() -> Iterator[Any]:
    """A factory of further fresh PostgreSQL databases (dropped afterwards)."""
    gens = []

    def make() -> str:
        gen = _fresh_schema_db(PG_ADMIN, "postgresql")
        gens.append(gen)
        return next(gen)

    yield make
    for gen in gens:
        for _ in gen:  # runs the generator's cleanup
            pass


@pytest.fixture
def prod(
    tmp_path: Path,
    hub_pg_url: str,
    mariadb_url: str,
    extra_pg: Any,
    s3_endpoint: S3Endpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, Any]]:
    from sharehub.demo import DIRECTORY_DIR, generate
    from sharehub.demo.sql_sources import load_licences

    refs = generate(tmp_path / "sources", scale=0.1)
    source_pg = extra_pg()
    load_licences(refs["scj_db"], source_pg)
    load_licences(refs["scj_db"], mariadb_url)
    env = {
        "SHAREHUB_VAR_DIR": str(tmp_path / "var"),
        "SHAREHUB_DATABASE_URL": hub_pg_url,
        "SHAREHUB_AIRFLOW_DATABASE_URL": extra_pg(),
        "SHAREHUB_S3__ENDPOINT": s3_endpoint.url,
        "SHAREHUB_S3__BUCKET": s3_endpoint.new_bucket(),
        "SHAREHUB_S3__ACCESS_KEY": s3_endpoint.access_key,
        "SHAREHUB_S3__SECRET_KEY": s3_endpoint.secret_key,
        "SHAREHUB_S3__REGION": s3_endpoint.region,
        "SHAREHUB_DAG_SCHEDULES": "manual",
        **{f"SHAREHUB_CONNECTIONS__{ref.upper()}": loc for ref, loc in refs.items()},
        "SHAREHUB_CONNECTIONS__SCJ_DB": source_pg,  # the market regulator's PostgreSQL
        "SHAREHUB_CONNECTIONS__BDC_DB": extra_pg(),  # the registry office's own database (前置库)
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    settings = get_settings()
    engine = engine_for(settings.hub_db_url)
    for f in sorted(DIRECTORY_DIR.glob("*.yaml")):
        publishing.publish_path(engine, f)
    yield {"settings": settings, "engine": engine, "env": env, "mariadb": mariadb_url, "tmp": tmp_path}
    get_settings.cache_clear()


def _serve(env: dict[str, str], log: Path, workers: int = 2) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    argv = [
        sys.executable, "-m", "uvicorn", "sharehub.serve:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--http", "sharehub.serve:HttpProtocol", "--limit-concurrency", "1000",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise AssertionError(f"uvicorn did not come up: {log.read_text(errors='replace')[-2000:]}")


def test_production_profile(prod: dict[str, Any]) -> None:
    settings: Settings = prod["settings"]
    engine: sa.Engine = prod["engine"]
    assert engine.dialect.name == "postgresql" and settings.warehouse.startswith("s3://")

    # an app granted the court's list (shared by file too) subscribes to it into its own PostgreSQL
    app, secret = app_registry.register_app(engine, "不动产登记", "ZGJ")
    from catalog.access.workdays import Calendar
    from catalog.directory.grades import policy_of
    from catalog.sharing import subscriptions

    applications.submit(
        engine, app.app_id, "FY-SXBZXR-001", fields=None, purpose="核验", legal_basis="条例",
        calendar=Calendar(), deadline_days=10, default_rate_limit=10_000,
    )  # fmt: skip
    sub = subscriptions.subscribe(
        engine, app.app_id, "FY-SXBZXR-001", target_ref="bdc_db", target_table="debtors", mode="mirror",
        by="ops", policy=policy_of(settings),
    )  # fmt: skip
    deliver_dag = f"deliver__{sub.id}__FY-SXBZXR-001"

    # 1. Airflow on PostgreSQL runs every generated DAG (triggered, not `dags test`)
    with AirflowServices(settings) as af:
        dag_ids = [f"sync__{c}" for c in CODES]
        af.wait_parsed([*dag_ids, deliver_dag])
        triggered = {d: af.trigger(d, full=True) for d in dag_ids[:-1]}
        # the operator's way, for one of them: `sharehub airflow trigger CODE --full`
        from typer.testing import CliRunner

        from sharehub.cli.main import app as cli

        res = CliRunner().invoke(cli, ["airflow", "trigger", CODES[-1], "--full"])
        assert res.exit_code == 0, res.output
        triggered[dag_ids[-1]] = res.output.split()[-1]
        states = af.wait_runs(triggered, timeout=900)
        assert states == dict.fromkeys(dag_ids, "success"), f"logs: {af.logs}"
        # the court's publish updated its Asset: the scheduler ran the subscription's delivery
        deadline = time.monotonic() + 300
        while not [r for r in af.runs_of(deliver_dag) if r[2] in ("success", "failed")]:
            assert time.monotonic() < deadline, (af.runs_of(deliver_dag), f"logs: {af.logs}")
            time.sleep(2)
        ((_, run_type, state),) = af.runs_of(deliver_dag)
        assert (run_type, state) == ("asset_triggered", "success"), f"logs: {af.logs}"
    (delivered,) = subscriptions.history(engine, sub.id)
    assert delivered["status"] == "success" and delivered["inserted"] > 0
    target = sa.create_engine(settings.connections["bdc_db"])
    with target.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM debtors")).scalar_one() == delivered["inserted"]
    target.dispose()
    for dag_id, run_id in triggered.items():
        run = runs.get_run(engine, run_id)
        assert run["status"] == "success" and run["rows_published"] > 0, (dag_id, run["error"])
        assert run["snapshot_id"] is not None
    with engine.connect() as conn:  # Iceberg's catalog lives in the same PostgreSQL, data on S3
        locations = [r[0] for r in conn.execute(sa.text("SELECT metadata_location FROM iceberg_tables"))]
    assert locations and all(loc.startswith(f"s3://{settings.s3.bucket}/") for loc in locations)

    # 2. the same dataset from the department's MariaDB gives the same published state
    first = runs.get_run(engine, triggered["sync__SCJ-YYZZ-001"])
    os.environ["SHAREHUB_CONNECTIONS__SCJ_DB"] = prod["mariadb"]
    get_settings.cache_clear()
    again = runs.get_run(engine, pipeline.sync("SCJ-YYZZ-001", full=True)["run_id"])
    assert again["status"] == "success"
    assert (again["rows_read"], again["rows_published"]) == (first["rows_read"], first["rows_published"])

    # 3. the access API on uvicorn with two worker processes, one audit chain
    with engine.connect() as conn:
        case_no = conn.execute(sa.text('SELECT case_no FROM "srv_fy_sxbzxr_001" LIMIT 1')).scalar_one()
        ident = conn.execute(sa.select(tables.certificates.c.identifier).limit(1)).scalar_one()
    before = len(audit.query(engine, limit=100_000))
    proc, base = _serve(prod["env"], prod["tmp"] / "uvicorn.log")
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            tok = client.post(
                "/api/v1/token",
                data={"grant_type": "client_credentials", "client_id": app.app_id, "client_secret": secret},
            ).json()["access_token"]
            headers = {
                "Authorization": f"Bearer {tok}",
                "X-End-User-Id": "officer-1",
                "X-Case-Number": "BDC-2026-0001",
            }
            served = 1
            for _ in range(20):  # spread over both workers
                r = client.get(
                    "/api/v1/datasets/FY-SXBZXR-001/records", params={"case_no": case_no}, headers=headers
                )
                assert r.status_code == 200 and r.json()["count"] == 1, r.text
                served += 1
            v = client.get(f"/api/v1/certificates/{ident}/verify").json()
            served += 1
            assert v["checks"]["signature"] is True, v
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    report = audit.verify(engine)
    assert report.ok, report.problems
    assert report.checked - before == served
