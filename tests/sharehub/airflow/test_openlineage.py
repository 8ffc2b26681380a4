"""OpenLineage through Airflow's provider: real `airflow dags test` runs of a generated sync DAG
with the file transport; every event is validated against the OpenLineage JSON schemas."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from catalog import publishing
from catalog.directory.model import DirectoryFile
from sharehub.airflow.env import airflow_environ, ensure_airflow_db, run_dag
from tests.openlineage_spec import validate_event
from tests.sharehub.pipeline.fault_hub import CODE, DIRECTORY, make_hub

SECRET = "s3cr3t-Pa55w0rd"
DAG = f"sync__{CODE}"
TABLE = "flt_people_001"


@pytest.fixture(scope="module")
def ol_hub(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("openlineage")
    hub = make_hub(tmp, rows=300)
    # the source DSN carries a password (SQLite's URI form ignores it): it must never reach an event
    dsn = f"sqlite:///file:{hub.source}?mode=rw&uri=true&password={SECRET}"
    settings = hub.settings.model_copy(update={"connections": {"flt_src": dsn}})
    ensure_airflow_db(settings)
    return {"hub": hub, "settings": settings, "dsn": dsn, "tmp": tmp}


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _lineage_env(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.setenv(
        "AIRFLOW__OPENLINEAGE__TRANSPORT",
        json.dumps({"type": "file", "log_file_path": str(path), "append": True}),
    )
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "sharehub-test")
    # the emitting child imports the pipeline; two shared cores can be slower than the default 10 s
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__EXECUTION_TIMEOUT", "120")


def _by_job(events: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for e in events:
        out[e["job"]["name"]][e["eventType"]] = e
    return out


@pytest.mark.airflow
@pytest.mark.timeout(900)
def test_a_sync_run_emits_valid_lineage(
    ol_hub: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    _lineage_env(monkeypatch, path)
    res = run_dag(CODE, full=True, settings=ol_hub["settings"])
    assert res.ok, (res.error, res.log_path.read_text(encoding="utf-8")[-4000:])
    events = _events(path)
    for e in events:
        validate_event(e)
    jobs = _by_job(events)
    steps = [f"{DAG}.{s}" for s in ("extract_land", "validate", "publish")]
    # the sync run is the DAG run: `airflow dags test` creates it already running, so only the
    # scheduler's queued -> running change would emit its START; its tasks' START/COMPLETE name it
    # as their parent, and its COMPLETE closes it
    assert "COMPLETE" in jobs[DAG], sorted((j, sorted(t)) for j, t in jobs.items())
    dag_run_id = jobs[DAG]["COMPLETE"]["run"]["runId"]
    for job in steps:
        assert {"START", "COMPLETE"} <= set(jobs[job]), job
        for state in ("START", "COMPLETE"):
            event = jobs[job][state]
            assert event["job"]["namespace"] == "sharehub-test"
            facets = event["run"]["facets"]
            assert facets["parent"]["run"]["runId"] == dag_run_id and facets["parent"]["job"]["name"] == DAG
            assert facets["processing_engine"]["name"] == "Airflow"

    def names(job: str, kind: str) -> list[str]:
        return [f"{d['namespace']}|{d['name']}" for d in jobs[job]["COMPLETE"][kind]]

    lake = ol_hub["settings"].warehouse.rstrip("/")
    source = next(iter(names(steps[0], "inputs")))
    assert source.endswith(f"|{ol_hub['hub'].source}.people") and source.startswith("sqlite://")
    assert names(steps[0], "outputs") == [f"{lake}|raw.{TABLE}"]
    assert names(steps[1], "inputs") == [f"{lake}|raw.{TABLE}"]
    assert names(steps[1], "outputs") == [f"{lake}|quarantine.{TABLE}"]
    assert names(steps[2], "inputs") == [f"{lake}|raw.{TABLE}", f"{lake}|quarantine.{TABLE}"]
    assert names(steps[2], "outputs") == [f"{lake}|curated.{TABLE}"]
    # the START events already name the datasets (no counts yet)
    assert [d["name"] for d in jobs[steps[2]]["START"]["outputs"]] == [f"curated.{TABLE}"]

    def rows(job: str) -> int:
        (out,) = jobs[job]["COMPLETE"]["outputs"]
        return int(out["outputFacets"]["outputStatistics"]["rowCount"])

    assert (rows(steps[0]), rows(steps[1]), rows(steps[2])) == (300, 3, 297)
    schema = jobs[steps[2]]["COMPLETE"]["outputs"][0]["facets"]["schema"]["fields"]
    assert [f["name"] for f in schema] == [f["name"] for f in DIRECTORY["datasets"][0]["fields"]]
    checks = jobs[steps[1]]["COMPLETE"]["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert {(c["assertion"], c.get("column"), c["success"]) for c in checks} >= {
        ("not_null", "name", False),
        ("primary_key", "pid", True),
    }
    text = path.read_text(encoding="utf-8")
    assert SECRET not in text and ol_hub["dsn"] not in text and "password=" not in text


@pytest.mark.airflow
@pytest.mark.timeout(900)
def test_a_blocked_run_emits_fail_with_the_failing_checks(
    ol_hub: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hub = ol_hub["hub"]
    blocking = json.loads(json.dumps(DIRECTORY))
    blocking["datasets"][0]["quality"]["policy"] = "block"
    publishing.publish(hub.engine, DirectoryFile.model_validate(blocking), source_file="flt.yaml")
    path = tmp_path / "events.jsonl"
    _lineage_env(monkeypatch, path)
    try:
        res = run_dag(CODE, full=True, settings=ol_hub["settings"])
    finally:
        publishing.publish(hub.engine, DirectoryFile.model_validate(DIRECTORY), source_file="flt.yaml")
    assert res.state == "failed" and res.task_states["validate"] == "failed", res.task_states
    events = _events(path)
    for e in events:
        validate_event(e)
    jobs = _by_job(events)
    assert "FAIL" in jobs[DAG], sorted(jobs[DAG])
    fail = jobs[f"{DAG}.validate"]["FAIL"]
    assert fail["run"]["facets"]["parent"]["run"]["runId"] == jobs[DAG]["FAIL"]["run"]["runId"]
    assert "blocked by quality" in json.dumps(fail["run"]["facets"].get("errorMessage", {}))
    (raw_in,) = fail["inputs"]
    checks = raw_in["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert ("not_null", "name", False) in {(c["assertion"], c.get("column"), c["success"]) for c in checks}
    (quarantine,) = fail["outputs"]  # the correction list was written before the policy blocked
    assert quarantine["outputFacets"]["outputStatistics"]["rowCount"] == 3
    assert f"{DAG}.publish" not in jobs or "COMPLETE" not in jobs[f"{DAG}.publish"]
    assert SECRET not in path.read_text(encoding="utf-8")


def test_openlineage_is_off_without_a_transport(ol_hub: dict[str, Any]) -> None:
    """Installed but not configured: the provider's plugin registers no listener (nothing runs)."""
    env = airflow_environ(ol_hub["settings"])
    probe = (
        "from airflow.providers.openlineage import conf\n"
        "from airflow.providers.openlineage.plugins.openlineage import OpenLineageProviderPlugin as P\n"
        "print(conf.is_disabled(), len(P.listeners))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.split()[-2:] == ["True", "0"], out.stdout + out.stderr
