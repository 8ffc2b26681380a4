"""The DAG factory: one sync DAG per directory entry (no Airflow DB needed)."""

from __future__ import annotations

import logging
import sys
import textwrap
import warnings
from datetime import timedelta

import pytest

from sharehub.airflow import factory as dag_factory
from sharehub.airflow.dagspec import DagSpec
from sharehub.airflow.factory import asset_uri, build_dag, curated_table, register


def make_spec(**overrides) -> DagSpec:
    values = dict(
        code="SCJ-YYZZ-001",
        name="营业执照",
        department_code="SCJ",
        department_name="市场监督管理局",
        share_type="conditional",
        schedule="0 2 * * *",
        summary="企业营业执照登记信息 | 每日同步",
        fields=[
            ("uscc", "统一社会信用代码", "string"),
            ("name", "企业名称", "string"),
            ("est_date", "成立日期", "date"),
        ],
        curated_table="curated.scj_yyzz_001",
        version=3,
    )
    values.update(overrides)
    return DagSpec(**values)


@pytest.fixture
def stub_pipeline(tmp_path, monkeypatch):
    """A pipeline module on sys.path that records its calls; selected with SHAREHUB_PIPELINE_MODULE."""
    (tmp_path / "stub_pipeline_unit.py").write_text(
        textwrap.dedent(
            """
            calls = []

            class Blocked(Exception):
                retryable = False

            def extract_land(code, run_id, *, full):
                calls.append(("extract_land", code, run_id, full))
                return {"rows": 3}

            def validate(code, run_id):
                calls.append(("validate", code, run_id))
                if code == "BLOCK":
                    raise Blocked("quality policy blocks")
                if code == "FLAKY":
                    raise ConnectionError("source down")
                return {"ok": True}

            def publish(code, run_id):
                calls.append(("publish", code, run_id))
                return {"snapshot_id": 1}
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SHAREHUB_PIPELINE_MODULE", "stub_pipeline_unit")
    sys.modules.pop("stub_pipeline_unit", None)
    import stub_pipeline_unit

    yield stub_pipeline_unit
    sys.modules.pop("stub_pipeline_unit", None)


def test_dag_identity_schedule_and_tags():
    dag = build_dag(make_spec())
    assert dag.dag_id == "sync__SCJ-YYZZ-001"
    assert dag.schedule == "0 2 * * *"
    assert set(dag.tags) == {"SCJ", "share:conditional", "sharehub"}
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.start_date is not None and dag.start_date.year == 2024


def test_manual_dag_has_no_schedule():
    dag = build_dag(make_spec(schedule=None))
    assert dag.schedule is None
    assert "手动" in dag.doc_md


def test_manual_only_switch(monkeypatch):
    monkeypatch.setenv("SHAREHUB_DAG_SCHEDULES", "manual")
    assert build_dag(make_spec()).schedule is None
    monkeypatch.setenv("SHAREHUB_DAG_SCHEDULES", "")
    assert build_dag(make_spec()).schedule == "0 2 * * *"


def test_doc_md_comes_from_the_directory():
    doc = build_dag(make_spec()).doc_md
    for text in (
        "营业执照",
        "SCJ-YYZZ-001",
        "市场监督管理局",
        "有条件共享",
        "统一社会信用代码",
        "成立日期",
        "`uscc`",
    ):
        assert text in doc
    assert "企业营业执照登记信息 \\| 每日同步" in doc  # a pipe in the summary must not break the table
    assert "| 字段 | 名称 | 类型 |" in doc


def test_params_full_flag():
    dag = build_dag(make_spec())
    param = dag.params.get_param("full")
    assert param.value is False
    assert param.schema["type"] == "boolean"
    assert "full resync" in param.description


def test_retries_and_backoff():
    dag = build_dag(make_spec())
    for t in dag.tasks:
        assert t.retries == 2
        assert t.retry_delay == timedelta(minutes=1)
        assert t.retry_exponential_backoff == 2.0  # Airflow 3.x: a multiplier, not a bool
        assert t.max_retry_delay == timedelta(minutes=15)


def test_retries_env_override(monkeypatch):
    monkeypatch.setenv("SHAREHUB_DAG_RETRIES", "0")
    assert {t.retries for t in build_dag(make_spec()).tasks} == {0}


def test_task_order_and_outlets():
    dag = build_dag(make_spec())
    assert [t.task_id for t in dag.topological_sort()] == ["extract_land", "validate", "publish"]
    assert dag.task_dict["extract_land"].downstream_task_ids == {"validate"}
    assert dag.task_dict["validate"].downstream_task_ids == {"publish"}
    assert dag.task_dict["publish"].downstream_task_ids == set()
    (asset,) = dag.task_dict["publish"].outlets
    assert asset.uri == "x-iceberg://sharehub/curated/scj_yyzz_001"
    assert asset.name == "sharehub.curated.scj_yyzz_001"
    assert not dag.task_dict["validate"].outlets


def test_asset_uri_is_valid_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        asset = dag_factory.curated_asset(make_spec(curated_table="curated.gaj_hj_002"))
    assert asset.uri == asset_uri("curated.gaj_hj_002") == "x-iceberg://sharehub/curated/gaj_hj_002"


def test_curated_table_derived_from_code_when_missing():
    assert curated_table(make_spec(curated_table="", code="GAJ-HJ-002")) == "curated.gaj_hj_002"
    assert curated_table(make_spec(curated_table="curated.x")) == "curated.x"


def test_dag_id_sanitised():
    assert build_dag(make_spec(code="MZJ/HY 01")).dag_id == "sync__MZJ_HY_01"


def test_register_with_loader():
    ns: dict = {}
    specs = [make_spec(code=f"SCJ-{i:03d}", curated_table="") for i in range(3)]
    assert register(ns, loader=lambda: specs) == 3
    assert sorted(ns) == ["sync__SCJ-000", "sync__SCJ-001", "sync__SCJ-002"]


def test_register_skips_a_broken_spec(caplog):
    ns: dict = {}
    specs = [make_spec(code="A-1"), make_spec(code="B-2", schedule="not a cron"), make_spec(code="C-3")]
    with caplog.at_level(logging.ERROR, logger="sharehub.dag_factory"):
        assert register(ns, loader=lambda: specs) == 2
    assert set(ns) == {"sync__A-1", "sync__C-3"}
    assert "B-2" in caplog.text


def test_register_survives_an_unreadable_directory(caplog):
    def broken():
        raise RuntimeError("no such table: dataset")

    ns: dict = {}
    with caplog.at_level(logging.WARNING, logger="sharehub.dag_factory"):
        assert register(ns, loader=broken) == 0
    assert ns == {}
    assert "no sync DAGs registered" in caplog.text


def test_register_default_loader_without_hub_db(tmp_path, monkeypatch):
    # empty var dir: no hub DB (or sharehub.airflow.directory_specs not there yet) -> no DAGs, no exception
    monkeypatch.setenv("SHAREHUB_VAR_DIR", str(tmp_path / "var"))
    from sharehub.settings import get_settings

    get_settings.cache_clear()
    try:
        assert register({}) == 0
    finally:
        get_settings.cache_clear()


def test_register_env_loader_seam(tmp_path, monkeypatch):
    (tmp_path / "stub_specs_unit.py").write_text(
        "from sharehub.airflow.dagspec import DagSpec\n"
        "def load():\n"
        "    return [DagSpec(code='X-1', name='x', department_code='D', department_name='d',"
        " share_type='none', schedule=None)]\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SHAREHUB_DAGSPECS_LOADER", "stub_specs_unit:load")
    ns: dict = {}
    assert register(ns) == 1
    assert set(ns["sync__X-1"].tags) == {"D", "share:none", "sharehub"}


def test_task_callables_pass_run_id_and_full(stub_pipeline):
    assert dag_factory._extract_land("C-1", run_id="manual__1", params={"full": True}) == {"rows": 3}
    assert dag_factory._validate("C-1", run_id="manual__1") == {"ok": True}
    assert dag_factory._publish("C-1", run_id="manual__1") == {"snapshot_id": 1}
    assert stub_pipeline.calls == [
        ("extract_land", "C-1", "manual__1", True),
        ("validate", "C-1", "manual__1"),
        ("publish", "C-1", "manual__1"),
    ]


def test_non_retryable_error_fails_without_retries(stub_pipeline):
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="quality policy blocks"):
        dag_factory._validate("BLOCK", run_id="r")
    with pytest.raises(ConnectionError):  # ordinary errors keep Airflow's retries
        dag_factory._validate("FLAKY", run_id="r")


@pytest.mark.parametrize("code", ["SCJ-YYZZ.001", "GAJ--HJ 002", "mzj_hy-01-"])
def test_curated_table_matches_the_lake_naming(code):
    from lake.tables import normalise_code

    assert curated_table(make_spec(code=code, curated_table="")) == f"curated.{normalise_code(code)}"


def test_retry_delay_env_override(monkeypatch):
    monkeypatch.setenv("SHAREHUB_DAG_RETRY_DELAY", "2")
    assert {t.retry_delay for t in build_dag(make_spec()).tasks} == {timedelta(seconds=2)}


def test_a_spec_with_a_queue_sends_every_task_to_it():
    dag = build_dag(make_spec(queue="dept_scj"))
    assert {t.queue for t in dag.tasks} == {"dept_scj"}
    assert "`dept_scj`" in dag.doc_md
    # without one, Airflow's [operators] default_queue, and no queue row on the DAG page
    from airflow.configuration import conf

    plain = build_dag(make_spec())
    assert {t.queue for t in plain.tasks} == {conf.get("operators", "default_queue")}
    assert "Celery queue" not in plain.doc_md


def test_the_directory_loader_routes_a_department_to_its_queue(tmp_path, monkeypatch):
    """``SHAREHUB_AIRFLOW_QUEUES__<department or dataset code>`` reaches the DAG spec."""
    from catalog import publishing
    from catalog.db.engine import engine_for
    from sharehub.airflow.directory_specs import load_dag_specs
    from sharehub.demo import DIRECTORY_DIR
    from sharehub.settings import Settings

    monkeypatch.setenv("SHAREHUB_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SHAREHUB_AIRFLOW_QUEUES__FY", "dept_fy")
    monkeypatch.setenv("SHAREHUB_AIRFLOW_QUEUES__RSJ-SBJF-001", "heavy")  # one dataset, by its code
    settings = Settings()
    engine = engine_for(settings.hub_db_url)
    for f in sorted(DIRECTORY_DIR.glob("*.yaml")):
        publishing.publish_path(engine, f)
    queues = {s.code: s.queue for s in load_dag_specs(settings)}
    engine.dispose()
    assert queues["FY-SXBZXR-001"] == "dept_fy"
    assert queues["RSJ-SBJF-001"] == "heavy"
    assert {q for c, q in queues.items() if c not in ("FY-SXBZXR-001", "RSJ-SBJF-001")} == {None}


def test_airflow_queue_prefers_the_dataset_over_its_department():
    from sharehub.settings import Settings

    s = Settings(airflow_queues={"gaj": "dept_gaj", "GAJ-HJRK-001": "hjrk", "SGB": " "})
    assert s.airflow_queue("GAJ", "GAJ-HJRK-001") == "hjrk"
    assert s.airflow_queue("GAJ", "GAJ-OTHER-002") == "dept_gaj"
    assert s.airflow_queue("SGB", "SGB-BSZN-001") is None  # blank: the default queue
    assert s.airflow_queue("FY", "FY-SXBZXR-001") is None
