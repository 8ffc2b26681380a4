"""Airflow on the CeleryExecutor, run for real (docs/deploy.md "What the Celery test proves"): Redis as the
broker, PostgreSQL as the metadata DB and the Celery result backend, the api-server, scheduler
and dag-processor of :class:`AirflowServices`, and three ``airflow celery worker`` processes: two
on the default queue, one on a department's queue (``SHAREHUB_AIRFLOW_QUEUES__FY``). The
repository's generated sync DAGs run the demo departments' data into a lake on S3 (moto).

One stack for the module; the tests run in file order and share it:

1. the court's (FY) sync, routed to its department's queue, waits there while the two idle
   default-queue workers take the default datasets' tasks (spread over both of them); the
   queue's own worker, started then, runs the court's tasks and nothing else;
2. a worker is killed (``SIGKILL``, its whole process tree) while its task holds at
   ``publish.after_curated_commit``; the scheduler finds the task without heartbeat, Airflow
   retries it on the other worker, and the published state is exactly the source's good rows.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sharehub.airflow.env import airflow_version
from sharehub.airflow.services import AirflowServices
from sharehub.settings import Settings, get_settings
from tests.conftest import S3Endpoint, _fresh_schema_db, _port_open, service_unavailable
from tests.deploy.celery_stack import API_ENV, CeleryStack, airflow_db_from_template
from tests.paths import REPO

pytestmark = [pytest.mark.services, pytest.mark.s3, pytest.mark.airflow, pytest.mark.slow]

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
#: a Redis database of its own, and queue names of its own (below): nothing else shares the broker's keys
BROKER = "redis://127.0.0.1:6379/13"
DEFAULT_CODES = ["SCJ-YYZZ-001", "SGB-BSZN-001"]
DEPT_CODE = "FY-SXBZXR-001"  # 法院 (FY): routed to its department's queue
KILL_CODE = "SCJ-YYZZ-001"
HOLD_POINT = "publish.after_curated_commit"
PRELOAD = "sharehub.airflow.worker_preload"


def celery_provider_problem() -> str | None:
    """Why the installed Celery provider cannot run Airflow 3 tasks, or None when it can.

    Airflow 3 executors run *workloads* (the task SDK's ``ExecuteTask``) through the execution
    API; a provider without ``execute_workload`` only has Airflow 2's ``airflow tasks run`` path
    (3.10.0 also imports ``airflow.utils.dag_parsing_context``, gone from Airflow 3.3, so the
    scheduler cannot even load the executor). Read from the files, without importing Airflow."""
    from importlib import metadata

    try:
        dist = metadata.distribution("apache-airflow-providers-celery")
    except metadata.PackageNotFoundError:
        return "apache-airflow-providers-celery is not installed"
    utils = Path(str(dist.locate_file("airflow/providers/celery/executors/celery_executor_utils.py")))
    source = utils.read_text(encoding="utf-8") if utils.exists() else ""
    if "def execute_workload" not in source:
        return (
            f"apache-airflow-providers-celery {dist.version} has no Airflow 3 support (no execute_workload "
            f"in {utils.name}); install a release made for Airflow {airflow_version()}"
        )
    return None


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: S3Endpoint) -> Iterator[dict[str, Any]]:
    for what, port in (("postgresql", 5432), ("redis", 6379)):
        if not _port_open("127.0.0.1", port):
            service_unavailable(what, f"nothing listens on 127.0.0.1:{port}")
    problem = celery_provider_problem()
    if problem:
        service_unavailable("celery executor", problem)
    from catalog import publishing
    from catalog.db import migrate
    from catalog.db.engine import engine_for
    from sharehub.demo import DIRECTORY_DIR, generate

    tmp = tmp_path_factory.mktemp("celery")
    dbs = [_fresh_schema_db(PG_ADMIN, "postgresql"), airflow_db_from_template(PG_ADMIN, tmp / "template")]
    hub_url, af_url = (next(gen) for gen in dbs)
    migrate.upgrade(hub_url)
    refs = generate(tmp / "sources", scale=0.1)
    tag = uuid.uuid4().hex[:8]
    default_q, dept_q = f"celery_default_{tag}", f"celery_dept_fy_{tag}"
    hold = tmp / "hold"
    env = {
        "SHAREHUB_VAR_DIR": str(tmp / "var"),
        "SHAREHUB_SECRETS_FILE": str(tmp / "no-secrets.toml"),
        "SHAREHUB_DATABASE_URL": hub_url,
        "SHAREHUB_AIRFLOW_DATABASE_URL": af_url,
        "SHAREHUB_AIRFLOW_EXECUTOR": "CeleryExecutor",
        "SHAREHUB_AIRFLOW_QUEUES__FY": dept_q,
        "SHAREHUB_S3__ENDPOINT": s3_endpoint.url,
        "SHAREHUB_S3__BUCKET": s3_endpoint.new_bucket(),
        "SHAREHUB_S3__ACCESS_KEY": s3_endpoint.access_key,
        "SHAREHUB_S3__SECRET_KEY": s3_endpoint.secret_key,
        "SHAREHUB_S3__REGION": s3_endpoint.region,
        "SHAREHUB_DAG_SCHEDULES": "manual",
        # a lost worker's task comes back quickly: retried after 2 s, and the dead step's
        # dataset lock expires 12 s after its last renewal (renewed every 3 s while it works)
        "SHAREHUB_DAG_RETRIES": "4",
        "SHAREHUB_DAG_RETRY_DELAY": "2",
        "SHAREHUB_RUN_LEASE_SECONDS": "12",
        # armed by test 2 (creating the file): the first publish to get there waits to be killed
        "SHAREHUB_FAULT": f"{HOLD_POINT}:hold={hold}",
        **{f"SHAREHUB_CONNECTIONS__{ref.upper()}": loc for ref, loc in refs.items()},
    }
    airflow = {
        "AIRFLOW__CELERY__BROKER_URL": BROKER,
        # as in docker-compose.yml: Celery's results in the metadata DB, through psycopg2
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+postgresql://" + af_url.split("://", 1)[1],
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": default_q,
        # a task whose worker vanished is failed (and retried) 10 s after its last heartbeat
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "10",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
        # each worker imports the pipeline once, its tasks inherit it (docs/deploy.md)
        "AIRFLOW__CELERY__EXTRA_CELERY_CONFIG": json.dumps({"imports": [PRELOAD]}),
        **API_ENV,
        # the scheduler, workers and tasks import this work tree's code, whatever is installed
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        get_settings.cache_clear()
        settings = Settings()
    get_settings.cache_clear()
    engine = engine_for(settings.hub_db_url)
    for f in sorted(DIRECTORY_DIR.glob("*.yaml")):
        publishing.publish_path(engine, f)

    # every SHAREHUB_* too: the tests' autouse fixture clears them from os.environ per test, and
    # `airflow dags trigger` runs from a test
    services = AirflowServices(settings, log_dir=tmp / "logs", extra_env={**env, **airflow})
    celery = CeleryStack(services)
    started = time.monotonic()
    try:
        # the workers need only the broker and the metadata DB to start: they boot beside the services
        celery.start_worker("w1", default_q)
        celery.start_worker("w2", default_q)
        services.start(migrate=False)  # a copy of the migrated template
        print(f"[celery test] services healthy after {time.monotonic() - started:.1f} s")
        services.wait_parsed([f"sync__{c}" for c in [*DEFAULT_CODES, DEPT_CODE]])
        print(f"[celery test] DAGs parsed after {time.monotonic() - started:.1f} s")
        celery.wait_ready("w1", "w2")
        print(f"[celery test] workers ready after {time.monotonic() - started:.1f} s")
        yield {
            "celery": celery, "settings": settings, "engine": engine, "refs": refs, "hold": hold,
            "default_q": default_q, "dept_q": dept_q, "startup_s": time.monotonic() - started,
        }  # fmt: skip
    finally:
        celery.stop()
        engine.dispose()
        for gen in dbs:
            for _ in gen:  # drops the database
                pass
        _forget_queues(default_q, dept_q)


def _forget_queues(*queues: str) -> None:
    import redis

    client = redis.Redis.from_url(BROKER)
    try:
        for q in queues:
            # kombu < 5.7 names a queue's binding _kombu.binding.<q>, 5.7 _kombu.binding_permanent.<q>
            client.delete(q, f"_kombu.binding.{q}", f"_kombu.binding_permanent.{q}")
        # the killed worker's message was never acked (acks_late): kombu keeps it to redeliver after
        # the visibility timeout, into a queue nobody will read again
        for tag, raw in client.hgetall("unacked").items():
            with contextlib.suppress(ValueError, IndexError):
                if json.loads(raw)[2] in queues:
                    client.hdel("unacked", tag)
                    client.zrem("unacked_index", tag)
    finally:
        client.close()


def _wait(cond: Any, what: str, celery: CeleryStack, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        celery.services.check_alive()
        assert time.monotonic() < deadline, f"{what} after {timeout:.0f} s; logs in {celery.services.logs}"
        time.sleep(1)


def test_tasks_spread_over_workers_and_a_department_queue_has_its_own(stack: dict[str, Any]) -> None:
    celery: CeleryStack = stack["celery"]
    af = celery.services
    dept_dag = f"sync__{DEPT_CODE}"

    # (c) the court's run first, alone: its first task goes to its department's queue (the
    # executor has sent it: external_executor_id is the Celery task id) while both default
    # workers sit idle
    dept_run = celery.trigger(DEPT_CODE, full=True)
    _wait(
        lambda: _extract(celery, dept_dag, dept_run).get("external_executor_id"),
        "court task not sent",
        celery,
        120,
    )
    # then the default datasets: both idle workers take work queued after the court's task, not it
    default_runs = {f"sync__{c}": celery.trigger(c, full=True) for c in DEFAULT_CODES}
    _wait(lambda: _hosts(celery, default_runs) >= {"w1", "w2"}, "default workers took no work", celery, 240)
    extract = _extract(celery, dept_dag, dept_run)
    assert extract["state"] == "queued" and extract["hostname"] in (None, ""), extract
    assert extract["queue"] == stack["dept_q"]
    # its queue's worker boots while the default runs go on (and must take none of their tasks)
    celery.start_worker("w3", stack["dept_q"])

    # (a) the default datasets run, over both workers
    states = af.wait_runs(default_runs, timeout=300)
    assert states == dict.fromkeys(default_runs, "success"), f"logs: {af.logs}"
    tis = [ti for d, r in default_runs.items() for ti in celery.task_instances(d, r)]
    assert len(tis) == 3 * len(default_runs)
    assert {ti["hostname"] for ti in tis} == {"w1", "w2"}, tis
    assert {ti["queue"] for ti in tis} == {stack["default_q"]}

    # (c) the court's run ran on its queue's worker only, and that worker took nothing else
    celery.wait_ready("w3")
    assert af.wait_runs({dept_dag: dept_run}, timeout=300) == {dept_dag: "success"}, f"logs: {af.logs}"
    dept_tis = celery.task_instances(dept_dag, dept_run)
    assert [(ti["hostname"], ti["queue"]) for ti in dept_tis] == [("w3", stack["dept_q"])] * 3, dept_tis
    assert all(ti["hostname"] != "w3" for d in default_runs for ti in celery.task_instances(d))

    stack["clean_snapshot"] = _curated(stack, KILL_CODE)[1]


def _extract(celery: CeleryStack, dag_id: str, run_id: str) -> dict[str, Any]:
    """The run's extract_land task instance ({} until the scheduler has created it)."""
    found = [ti for ti in celery.task_instances(dag_id, run_id) if ti["task_id"] == "extract_land"]
    assert len(found) <= 1, found
    return found[0] if found else {}


def _hosts(celery: CeleryStack, runs: dict[str, str]) -> set[object]:
    return {ti["hostname"] for d, r in runs.items() for ti in celery.task_instances(d, r)} - {None, ""}


def test_a_killed_worker_s_task_is_retried_on_the_other_worker_and_publishes_exactly(
    stack: dict[str, Any],
) -> None:
    celery: CeleryStack = stack["celery"]
    af = celery.services
    hold: Path = stack["hold"]
    held = Path(f"{hold}.held")
    hold.touch()  # armed: the next publish to reach the point waits there
    dag_id = f"sync__{KILL_CODE}"
    run_id = celery.trigger(KILL_CODE, full=True)
    _wait(lambda: held.exists() and held.read_text().strip(), "no task reached the hold", celery, 240)
    task_pid = int(held.read_text())

    (victim,) = [w for w in celery.workers.values() if w.owns(task_pid)]
    assert victim.name in ("w1", "w2")
    survivor = "w2" if victim.name == "w1" else "w1"
    (publish,) = [ti for ti in celery.task_instances(dag_id, run_id) if ti["task_id"] == "publish"]
    assert (publish["state"], publish["hostname"], publish["try_number"]) == ("running", victim.name, 1)
    killed_at = time.monotonic()
    victim.kill_hard(task_pid)

    states = af.wait_runs({dag_id: run_id}, timeout=240)
    recovered_s = time.monotonic() - killed_at
    assert states == {dag_id: "success"}, f"logs: {af.logs}"
    (publish,) = [ti for ti in celery.task_instances(dag_id, run_id) if ti["task_id"] == "publish"]
    assert publish["state"] == "success" and publish["hostname"] == survivor, publish
    tries = celery.earlier_tries(dag_id, run_id, "publish")
    assert tries and (tries[0]["try_number"], tries[0]["hostname"]) == (1, victim.name), tries
    assert tries[0]["state"] in ("up_for_retry", "failed"), tries
    print(f"killed {victim.name}; the run finished on {survivor} {recovered_s:.1f} s later")

    # exact: curated == the source's rows less the ones quarantined, once each; serving == curated
    from catalog.runs import record as run_store

    run = run_store.get_run(stack["engine"], run_id)
    assert run["status"] == "success", run
    keys, snapshot, rows = _curated(stack, KILL_CODE)
    assert run["snapshot_id"] == snapshot
    assert len(keys) == len(set(keys)) == run["rows_published"]
    source = _source_keys(stack)
    quarantined = _quarantined_keys(stack, KILL_CODE, run_id)
    assert len(source) == run["rows_read"]
    assert set(keys) == set(source) - set(quarantined), "curated is not the source's good rows"
    assert _served_keys(stack, KILL_CODE) == sorted(keys)
    if "clean_snapshot" in stack:  # the same as the run without a kill, row for row
        assert rows == _curated(stack, KILL_CODE, snapshot_id=stack["clean_snapshot"])[2]


# ---- reading the result ----------------------------------------------------------------------
def _curated(
    stack: dict[str, Any], code: str, snapshot_id: int | None = None
) -> tuple[list[str], int, list[Any]]:
    """(keys, snapshot, rows without the run columns) of the curated table."""
    from sharehub import pipeline

    h = pipeline.hub(stack["settings"])
    snap = snapshot_id or h.lake.current_snapshot_id("curated", code)
    assert snap is not None
    table = h.lake.read("curated", code, snapshot_id=snap)
    rows = sorted(
        ({k: v for k, v in r.items() if not k.startswith("_")} for r in table.to_pylist()),
        key=lambda r: str(r["uscc"]),
    )
    return [str(r["uscc"]) for r in rows], snap, rows


def _source_keys(stack: dict[str, Any]) -> list[str]:
    engine = sa.create_engine(stack["refs"]["scj_db"])
    try:
        with engine.connect() as conn:
            return [str(r[0]) for r in conn.execute(sa.text("SELECT uscc FROM business_licence"))]
    finally:
        engine.dispose()


def _quarantined_keys(stack: dict[str, Any], code: str, run_id: str) -> list[str]:
    from sharehub import pipeline

    h = pipeline.hub(stack["settings"])
    table = h.lake.read("quarantine", code, row_filter=pipeline.run_filter(run_id))
    return [str(json.loads(rec).get("uscc")) for rec in table.column("record").to_pylist()]


def _served_keys(stack: dict[str, Any], code: str) -> list[str]:
    from catalog.directory import store
    from catalog.serving import tables as serving

    engine: sa.Engine = stack["engine"]
    table = serving.serving_table(store.get_dataset(engine, code).spec)
    with engine.connect() as conn:
        keys = [str(r[0]) for r in conn.execute(sa.select(table.c.uscc))]
    known, state = serving.state(engine, code)
    assert known and state == _curated(stack, code)[1], "serving does not reflect the curated snapshot"
    return sorted(keys)
