"""Embedded Airflow: environment, one-time metadata DB, and real `airflow dags test` runs."""

from __future__ import annotations

import hashlib
import json
import os
import textwrap
import time
from pathlib import Path

import pytest

from sharehub.airflow import env as airflow_env
from sharehub.airflow.env import DagRunFailed, DagRunResult, airflow_environ, dag_id_for, run_dag
from sharehub.settings import Settings
from tests.paths import REPO


def test_airflow_environ_content(tmp_path):
    settings = Settings(var_dir=tmp_path / "var")
    env = airflow_environ(
        settings, base={"PATH": "/usr/bin", "SHAREHUB_BATCH_SIZE": "1000", "AIRFLOW__X__Y": "1"}
    )
    home = (tmp_path / "var" / "airflow").resolve()
    assert env["AIRFLOW_HOME"] == str(home)
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(REPO / "dags")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{home / 'airflow.db'}"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT"] == "30"
    assert env["AIRFLOW__CORE__DAG_DISCOVERY_SAFE_MODE"] == "True"
    assert env["AIRFLOW__LOGGING__COLORED_CONSOLE_LOG"] == "False"
    # pass-through and absolute hub locations for the tasks
    assert env["PATH"] == "/usr/bin"
    assert env["SHAREHUB_BATCH_SIZE"] == "1000"
    assert env["AIRFLOW__X__Y"] == "1"
    assert env["SHAREHUB_VAR_DIR"] == str((tmp_path / "var").resolve())
    assert env["SHAREHUB_AIRFLOW_HOME"] == str(home)
    assert "SHAREHUB_DATABASE_URL" not in env


def test_airflow_environ_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("SHAREHUB_DAGS_FOLDER", str(tmp_path / "mydags"))
    settings = Settings(
        var_dir=tmp_path, database_url="postgresql+psycopg://hub@db/hub", airflow_home=tmp_path / "af"
    )
    env = airflow_environ(settings)
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str((tmp_path / "mydags").resolve())
    assert env["AIRFLOW_HOME"] == str((tmp_path / "af").resolve())
    assert env["SHAREHUB_DATABASE_URL"] == "postgresql+psycopg://hub@db/hub"


def test_dag_id_for():
    assert dag_id_for("SCJ-YYZZ-001") == "sync__SCJ-YYZZ-001"
    assert dag_id_for("sync__SCJ-YYZZ-001") == "sync__SCJ-YYZZ-001"
    assert dag_id_for("MZJ/HY 1") == "sync__MZJ_HY_1"


def test_dag_run_result_error_names_the_failed_task(tmp_path):
    ok = DagRunResult(
        "sync__A", "success", "manual__1", 1.0, tmp_path / "a.log", 0, {"extract_land": "success"}
    )
    assert ok.error is None and ok.check() is ok
    bad = DagRunResult(
        "sync__A",
        "failed",
        "manual__1",
        1.0,
        tmp_path / "a.log",
        1,
        {"extract_land": "success", "validate": "failed", "publish": "upstream_failed"},
        detail="Blocked: x",
    )
    assert bad.failed_tasks == ["validate", "publish"]
    assert (
        "task validate failed" in bad.error
        and str(tmp_path / "a.log") in bad.error
        and "Blocked: x" in bad.error
    )
    with pytest.raises(DagRunFailed, match="task validate failed"):
        bad.check()


def test_ensure_airflow_db_skips_when_marker_matches(tmp_path, monkeypatch):
    settings = Settings(var_dir=tmp_path)
    env = airflow_environ(settings)
    settings.airflow_dir.mkdir(parents=True)
    airflow_env.airflow_db_path(settings).write_bytes(b"")
    conn = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    airflow_env._marker(settings).write_text(hashlib.sha256(conn.encode()).hexdigest() + "\n")
    assert conn not in airflow_env._marker(settings).read_text()  # the marker never holds the URL

    def boom(*a, **k):
        raise AssertionError("must not migrate again")

    monkeypatch.setattr(airflow_env.subprocess, "run", boom)
    assert airflow_env.ensure_airflow_db(settings) is False


# ---- real Airflow ------------------------------------------------------------------------------
STUB_PIPELINE = textwrap.dedent(
    """
    import json, os

    class Blocked(Exception):
        retryable = False

    def _log(step, code, run_id, **kw):
        with open(os.environ["STUB_PIPELINE_LOG"], "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, "code": code, "run_id": run_id, **kw}) + "\\n")
        if os.environ.get("STUB_FAIL_STEP") == step:
            raise Blocked(f"{code}: run {run_id} blocked by quality (stub)")
        return {"step": step}

    def extract_land(code, run_id, *, full):
        return _log("extract_land", code, run_id, full=full)

    def validate(code, run_id):
        return _log("validate", code, run_id)

    def publish(code, run_id):
        return _log("publish", code, run_id)
    """
)
STUB_SPECS = textwrap.dedent(
    """
    from sharehub.airflow.dagspec import DagSpec

    def load_dag_specs():
        return [DagSpec(code="SCJ-YYZZ-001", name="营业执照", department_code="SCJ",
                        department_name="市场监督管理局", share_type="conditional", schedule=None)]
    """
)


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    """One migrated Airflow metadata DB for the module's runs (migrate costs ~7 s)."""
    root = tmp_path_factory.mktemp("airflow_env")
    settings = Settings(var_dir=root / "var")
    t0 = time.monotonic()
    assert airflow_env.ensure_airflow_db(settings) is True
    first = time.monotonic() - t0
    t0 = time.monotonic()
    assert airflow_env.ensure_airflow_db(settings) is False
    assert time.monotonic() - t0 < 1.0
    print(f"airflow db migrate: first {first:.1f} s")
    return root, settings


@pytest.fixture
def stub_pipeline_env(airflow_home, monkeypatch, tmp_path):
    _root, settings = airflow_home
    (tmp_path / "stub_pipeline_run.py").write_text(STUB_PIPELINE, encoding="utf-8")
    (tmp_path / "stub_specs_run.py").write_text(STUB_SPECS, encoding="utf-8")
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(p for p in [str(tmp_path), os.environ.get("PYTHONPATH")] if p)
    )
    monkeypatch.setenv("SHAREHUB_PIPELINE_MODULE", "stub_pipeline_run")
    monkeypatch.setenv("SHAREHUB_DAGSPECS_LOADER", "stub_specs_run:load_dag_specs")
    monkeypatch.setenv("STUB_PIPELINE_LOG", str(calls))
    return settings, calls


def _calls(path: Path) -> list[dict]:
    return (
        [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
    )


@pytest.mark.airflow
@pytest.mark.timeout(300)
def test_run_dag_runs_the_three_tasks_in_order(stub_pipeline_env):
    settings, calls = stub_pipeline_env
    result = run_dag("SCJ-YYZZ-001", full=True, settings=settings)
    assert result.ok, (result.error, result.log_path.read_text()[-3000:])
    assert result.dag_id == "sync__SCJ-YYZZ-001"
    assert result.run_id and result.run_id.startswith("manual__")
    assert result.task_states == {"extract_land": "success", "validate": "success", "publish": "success"}
    assert result.log_path.is_file() and result.log_path.is_relative_to(settings.var_dir.resolve())
    assert "[DAG TEST] end task task_id=publish" in result.log_path.read_text(encoding="utf-8")
    got = _calls(calls)
    assert [c["step"] for c in got] == ["extract_land", "validate", "publish"]
    assert {c["run_id"] for c in got} == {result.run_id}
    assert got[0]["full"] is True
    print(f"dags test run: {result.duration_s:.1f} s")

    second = run_dag("sync__SCJ-YYZZ-001", settings=settings)  # full defaults to False
    assert second.ok, second.error
    assert second.run_id != result.run_id
    assert _calls(calls)[3] == {
        "step": "extract_land",
        "code": "SCJ-YYZZ-001",
        "run_id": second.run_id,
        "full": False,
    }


@pytest.mark.airflow
@pytest.mark.timeout(300)
def test_run_dag_failure_names_the_task_and_log(stub_pipeline_env, monkeypatch):
    settings, calls = stub_pipeline_env
    monkeypatch.setenv("STUB_FAIL_STEP", "validate")
    result = run_dag("SCJ-YYZZ-001", settings=settings)
    assert result.state == "failed"
    assert result.task_states == {
        "extract_land": "success",
        "validate": "failed",
        "publish": "upstream_failed",
    }
    assert "task validate failed" in result.error
    assert "blocked by quality (stub)" in result.error
    assert str(result.log_path) in result.error
    assert [c["step"] for c in _calls(calls)] == ["extract_land", "validate"]  # no retries in run_dag
    with pytest.raises(DagRunFailed):
        result.check()
