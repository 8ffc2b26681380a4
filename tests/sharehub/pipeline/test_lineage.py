"""OpenLineage facets of a sync run, built without Airflow (sharehub.pipeline.lineage)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
from openlineage.client.serde import Serde

from catalog.directory import store
from catalog.directory.sources import FileSource, SqlSource
from catalog.runs import record as runs
from sharehub.pipeline import lineage
from sharehub.pipeline.lineage import DatasetName, RunFacts, lake_namespace, source_dataset, step_lineage
from tests.openlineage_spec import validate_event
from tests.sharehub.pipeline.fault_hub import CODE, make_hub, quarantined_rows, raw_rows

SECRET = "s3cr3t-Pa55"
PG_DSN = f"postgresql+psycopg://hub_reader:{SECRET}@db.dept.example:6543/dept?sslmode=require"


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    hub = make_hub(tmp_path_factory.mktemp("lineage"))
    run_id = hub.sync()["run_id"]
    spec = store.get_dataset(hub.engine, CODE).spec
    return {"hub": hub, "run": runs.get_run(hub.engine, run_id), "spec": spec, "run_id": run_id}


def _facts(synced: dict[str, Any], run: Any = "recorded") -> RunFacts:
    hub = synced["hub"]
    return RunFacts(
        spec=synced["spec"],
        run=synced["run"] if run == "recorded" else run,
        source=source_dataset(synced["spec"].source, PG_DSN),
        lake_namespace=lake_namespace(hub.settings.warehouse),
        warehouse=hub.settings.warehouse,
    )


def _by_name(datasets: list[Any]) -> dict[str, Any]:
    return {d.name: d for d in datasets}


def _event(built: lineage.Lineage, state: RunState = RunState.COMPLETE) -> dict[str, Any]:
    event = RunEvent(
        eventType=state,
        eventTime="2026-12-01T08:00:00+00:00",
        run=Run(runId=str(uuid.uuid4()), facets=built.run_facets),
        job=Job(namespace="sharehub", name=f"sync__{CODE}", facets=built.job_facets),
        producer=lineage.PRODUCER,
        inputs=built.inputs,
        outputs=built.outputs,
    )
    out: dict[str, Any] = Serde.to_dict(event)
    return out


def test_whole_run_facets_match_what_the_lake_got(synced: dict[str, Any]) -> None:
    hub, run, spec = synced["hub"], synced["run"], synced["spec"]
    built = step_lineage("sync", _facts(synced), engine_version="0.1.0")
    (source,) = built.inputs
    assert (source.namespace, source.name) == ("postgres://db.dept.example:6543", "dept.public.people")
    outputs = _by_name(built.outputs)
    code = "flt_people_001"
    assert list(outputs) == [f"raw.{code}", f"quarantine.{code}", f"curated.{code}"]
    assert {o.namespace for o in outputs.values()} == {hub.settings.warehouse.rstrip("/")}

    declared = [f.name for f in spec.fields]
    assert [f.name for f in source.facets["schema"].fields] == declared
    assert [f.name for f in outputs[f"curated.{code}"].facets["schema"].fields] == declared
    raw_fields = [f.name for f in outputs[f"raw.{code}"].facets["schema"].fields]
    assert raw_fields == [*declared, "_rid", "_run_id", "_source", "_row", "_extra"]
    assert [f.type for f in source.facets["schema"].fields] == [f.type for f in spec.fields]
    assert source.facets["schema"].fields[1].description == "姓名"

    def rows(zone: str) -> int:
        return int(outputs[f"{zone}.{code}"].outputFacets["outputStatistics"].rowCount)

    assert rows("raw") == raw_rows(hub, synced["run_id"]) == run["rows_read"] == 1000
    assert rows("quarantine") == quarantined_rows(hub, synced["run_id"]) == 10
    assert rows("curated") == run["rows_published"] == 990

    # the quality assertions are GX's results, including the failing not_null check on name
    checks = source.inputFacets["dataQualityAssertions"].assertions
    expectations = run["quality"]["expectations"]
    assert [(a.assertion, a.column, a.success) for a in checks[: len(expectations)]] == [
        (e["rule"], e["column"], e["success"]) for e in expectations
    ]
    failing = [a for a in checks if not a.success]
    assert [(a.assertion, a.column, a.actual) for a in failing] == [("not_null", "name", "10")]
    assert any(a.assertion == "primary_key" and a.success for a in checks)
    assert built.run_facets["processing_engine"].name == "sharehub"

    event = _event(built)
    validate_event(event)
    text = Serde.to_json(event)
    assert SECRET not in text and "hub_reader" not in text and "sslmode" not in text


def test_each_step_reads_and_writes_its_own_tables(synced: dict[str, Any]) -> None:
    facts = _facts(synced)
    code = "flt_people_001"
    shape = {
        step: ([d.name for d in b.inputs], [d.name for d in b.outputs])
        for step in ("extract_land", "validate", "publish")
        for b in [step_lineage(step, facts)]
    }
    assert shape == {
        "extract_land": (["dept.public.people"], [f"raw.{code}"]),
        "validate": ([f"raw.{code}"], [f"quarantine.{code}"]),
        "publish": ([f"raw.{code}", f"quarantine.{code}"], [f"curated.{code}"]),
    }
    validated = step_lineage("validate", facts)
    assert "dataQualityAssertions" in validated.inputs[0].inputFacets
    for step in ("extract_land", "validate", "publish"):
        validate_event(_event(step_lineage(step, facts)))


def test_a_start_or_a_failed_step_claims_no_rows(synced: dict[str, Any]) -> None:
    start = step_lineage("sync", _facts(synced, run=None))
    assert all(not o.outputFacets for o in start.outputs)
    assert "dataQualityAssertions" not in start.inputs[0].inputFacets
    validate_event(_event(start, RunState.START))
    failed = {**synced["run"], "status": "failed", "stage": "publish", "rows_published": None}
    fail = _by_name(step_lineage("sync", _facts(synced, run=failed)).outputs)
    assert not fail["curated.flt_people_001"].outputFacets  # publish did not finish: no count
    assert fail["raw.flt_people_001"].outputFacets["outputStatistics"].rowCount == 1000


@pytest.mark.parametrize(
    ("source", "location", "expected"),
    [
        (
            {"kind": "sql", "connection": "scj_db", "table": "licences"},
            f"postgresql://u:{SECRET}@pg.gov.example/scj",
            ("postgres://pg.gov.example:5432", "scj.public.licences"),
        ),
        (
            {"kind": "sql", "connection": "scj_db", "table": "ods.licences"},
            f"postgresql+psycopg://u:{SECRET}@pg:5433/scj?sslmode=verify-full",
            ("postgres://pg:5433", "scj.ods.licences"),
        ),
        (
            {"kind": "sql", "connection": "m", "table": "t"},
            f"mysql+pymysql://root:{SECRET}@maria.example/hr",
            ("mysql://maria.example:3306", "hr.t"),
        ),
        (
            {"kind": "file", "connection": "drop", "path": "licences_*.csv", "format": "csv"},
            "/srv/drops/scj",
            ("file", "/srv/drops/scj/licences_*.csv"),
        ),
        (
            {"kind": "file", "connection": "drop", "path": "x/*.parquet", "format": "parquet"},
            f"s3://ak:{SECRET}@dept-drops/scj?X-Amz-Signature={SECRET}",
            ("s3://dept-drops", "scj/x/*.parquet"),
        ),
    ],
)
def test_source_names_never_carry_secrets(source: dict[str, Any], location: str, expected: Any) -> None:
    model = (SqlSource if source["kind"] == "sql" else FileSource).model_validate(source)
    name = source_dataset(model, location)
    assert (name.namespace, name.name) == expected
    assert SECRET not in name.namespace + name.name


def test_query_sources_and_unconfigured_connections() -> None:
    query = SqlSource.model_validate({"kind": "sql", "connection": "Db1", "query": "select * from x"})
    named = source_dataset(query, f"postgresql://u:{SECRET}@h/db")
    assert named.namespace == "postgres://h:5432" and named.name.startswith("db.query_")
    assert source_dataset(query, None) == DatasetName("sql://db1", "query")  # the ref, never a DSN
    sqlite = source_dataset(
        SqlSource.model_validate({"kind": "sql", "connection": "x", "table": "people"}),
        f"sqlite:///file:/data/src.db?mode=ro&uri=true&password={SECRET}",
    )
    assert sqlite.name == "/data/src.db.people" and SECRET not in sqlite.namespace


def test_lake_namespace_setting_and_default(tmp_path: Path) -> None:
    assert lake_namespace("s3://hub-lake/warehouse/") == "s3://hub-lake/warehouse"
    assert lake_namespace((tmp_path / "lake").as_uri()) == (tmp_path / "lake").as_uri()
    assert lake_namespace("s3://hub-lake/warehouse", "iceberg://hub") == "iceberg://hub"
