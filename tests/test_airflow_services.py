"""Airflow as production runs it: api-server, scheduler and dag-processor with the LocalExecutor,
metadata on the local PostgreSQL; the generated DAGs are triggered and their runs awaited
(no ``airflow dags test``). The hub stays embedded here; tests/test_production_profile.py puts
it on PostgreSQL and S3 too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog import runs, store
from sharehub.airflow_services import AirflowServices
from sharehub.settings import Settings, get_settings

pytestmark = [pytest.mark.services, pytest.mark.airflow, pytest.mark.slow]

CODES = ["FY-SXBZXR-001", "SGB-BSZN-001"]


@pytest.fixture
def hub_settings(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    from sharehub.demo import DIRECTORY_DIR, generate

    refs = generate(tmp_path / "sources", scale=0.1)
    monkeypatch.setenv("SHAREHUB_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SHAREHUB_AIRFLOW_DATABASE_URL", pg_url)
    monkeypatch.setenv("SHAREHUB_DAG_SCHEDULES", "manual")  # only our triggered runs
    for ref, loc in refs.items():
        monkeypatch.setenv(f"SHAREHUB_CONNECTIONS__{ref.upper()}", loc)
    get_settings.cache_clear()
    settings = get_settings()
    engine = store.engine_for(settings.hub_db_url)
    for f in sorted(DIRECTORY_DIR.glob("*.yaml")):
        store.publish_path(engine, f)
    yield settings
    get_settings.cache_clear()


def test_scheduler_runs_triggered_dags_on_postgresql(hub_settings: Settings) -> None:
    with AirflowServices(hub_settings) as af:
        assert af.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
        assert af.env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        dag_ids = [f"sync__{c}" for c in CODES]
        af.wait_parsed(dag_ids)
        triggered = {d: af.trigger(d, full=True) for d in dag_ids}
        states = af.wait_runs(triggered, timeout=600)
    assert states == dict.fromkeys(dag_ids, "success"), f"logs: {af.logs}"
    engine = store.engine_for(hub_settings.hub_db_url)
    for code, dag_id in zip(CODES, dag_ids, strict=True):
        run = runs.get_run(engine, triggered[dag_id])  # the Airflow run id is the sync run id
        assert run["status"] == "success" and run["trigger"] == "airflow" and run["rows_published"] > 0
