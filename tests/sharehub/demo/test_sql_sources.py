"""The sample licence database on PostgreSQL and MariaDB, and a sync from each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from catalog import publishing
from catalog.db.engine import engine_for
from catalog.directory import store
from catalog.runs import record as runs
from catalog.serving import tables as serving
from sharehub import pipeline
from sharehub.demo.sql_sources import load_licences
from sharehub.settings import get_settings

pytestmark = pytest.mark.services
SCJ = "SCJ-YYZZ-001"


@pytest.fixture
def sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    from sharehub.demo import DIRECTORY_DIR, generate

    refs = generate(tmp_path / "sources", scale=0.1)
    monkeypatch.setenv("SHAREHUB_VAR_DIR", str(tmp_path / "var"))
    for ref, loc in refs.items():
        monkeypatch.setenv(f"SHAREHUB_CONNECTIONS__{ref.upper()}", loc)
    get_settings.cache_clear()
    engine = engine_for(get_settings().hub_db_url)
    publishing.publish_path(engine, DIRECTORY_DIR / "scjgj.yaml")
    yield refs
    get_settings.cache_clear()


def test_sync_from_postgresql_then_mariadb(
    sources: dict[str, str], pg_url: str, mariadb_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    n_pg = load_licences(sources["scj_db"], pg_url)
    n_my = load_licences(sources["scj_db"], mariadb_url)
    with sa.create_engine(sources["scj_db"]).connect() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM business_licence")).scalar_one()
    assert n_pg == n_my == total > 0
    engine = engine_for(get_settings().hub_db_url)
    spec = store.get_dataset(engine, SCJ).spec
    counts = []
    for url in (pg_url, mariadb_url):
        monkeypatch.setenv("SHAREHUB_CONNECTIONS__SCJ_DB", url)
        get_settings.cache_clear()
        out = pipeline.sync(SCJ, full=True)
        run = runs.get_run(engine, out["run_id"])
        assert run["status"] == "success", run["error"]
        assert run["rows_read"] == total
        counts.append((run["rows_published"], run["rows_quarantined"], serving.count(engine, spec)))
    assert counts[0] == counts[1]  # the same department data gives the same result from either server
