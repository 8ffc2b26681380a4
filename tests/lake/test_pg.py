"""lake with its Iceberg SQL catalog on the real local PostgreSQL (``pg_url`` fixture)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from lake import RAW, open_lake
from tests.lake.test_local import PEOPLE, people, scenario_composite_key, scenario_full_cycle

pytestmark = pytest.mark.services


def test_full_cycle_on_postgres(pg_url, tmp_path) -> None:
    with open_lake(pg_url, (tmp_path / "lake").as_uri()) as lake:
        scenario_full_cycle(lake)
        scenario_composite_key(lake)
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as c:
            names = set(
                c.execute(
                    sa.text("SELECT table_namespace || '.' || table_name FROM iceberg_tables")
                ).scalars()
            )
    finally:
        engine.dispose()
    assert {"raw.scj_yyzz_001", "curated.ga_hj_001", "curated.cert"} <= names


def test_reopen_on_postgres(pg_url, tmp_path) -> None:
    wh = (tmp_path / "lake").as_uri()
    with open_lake(pg_url, wh) as a:
        a.ensure_table(RAW, "t", PEOPLE)
        sid = a.append(RAW, "t", people([(1, "a", 1.0)]), run_id="r")
    with open_lake(pg_url, wh) as b:  # catalog tables and namespaces already there
        assert b.snapshot_for_run(RAW, "t", "r") == sid
