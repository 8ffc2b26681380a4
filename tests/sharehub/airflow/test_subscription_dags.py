"""Subscription delivery DAGs: one per active subscription, scheduled on the Asset its dataset's
sync publishes, and a real ``airflow dags test`` run that delivers into a consumer database."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from catalog.access import applications
from catalog.db import tables
from catalog.directory.grades import DEFAULT_POLICY
from catalog.sharing import subscriptions
from sharehub.airflow.dagspec import DagSpec
from sharehub.airflow.env import dag_id_for, run_dag
from sharehub.airflow.factory import build_dag
from sharehub.airflow.subscription_dags import (
    SubscriptionSpec,
    build_subscription_dag,
    delivery_queue,
    register_subscriptions,
)
from tests.catalog.sharing.sharing_hub import CODE, build
from tests.paths import REPO

SPEC = SubscriptionSpec(
    7, "app-0123456789ab", "统计分析", "TJJ", "SCJ-YYZZ-001", "tjj_db", "licences", "mirror"
)


def test_a_delivery_dag_runs_when_its_dataset_is_published() -> None:
    dag = build_subscription_dag(SPEC)
    assert dag.dag_id == "deliver__7__SCJ-YYZZ-001" == dag_id_for(dag.dag_id)
    sync = build_dag(
        DagSpec(code="SCJ-YYZZ-001", name="营业执照", department_code="SCJ", department_name="市场监管局",
                share_type="conditional", schedule="@daily")
    )  # fmt: skip
    (outlet,) = sync.get_task("publish").outlets
    assert [a.uri for a in dag.timetable.asset_condition.objects] == [outlet.uri]
    assert outlet.uri == "x-iceberg://sharehub/curated/scj_yyzz_001"
    assert list(dag.task_dict) == ["deliver"]
    t = dag.get_task("deliver")
    assert t.retries == 2 and dag.max_active_runs == 1 and not dag.catchup
    assert dag.params["full"] is False
    assert "tjj_db" in dag.doc_md and "SCJ-YYZZ-001" in dag.doc_md and "mirror" in dag.doc_md
    assert sorted(dag.tags) == ["TJJ", "sharehub", "subscription"]


def test_a_delivery_runs_on_the_subscribing_department_s_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """The consumer's database is the subscriber's (TJJ's) to reach: its queue, never the dataset's
    (SCJ-YYZZ-001's own entry, or its owner SCJ's), which route the dataset's sync."""
    from datetime import timedelta

    from airflow.configuration import conf

    from sharehub.settings import Settings

    for key, queue in {"TJJ": "dept_tjj", "SCJ": "dept_scj", "SCJ-YYZZ-001": "sync_heavy"}.items():
        monkeypatch.setenv(f"SHAREHUB_AIRFLOW_QUEUES__{key}", queue)
    monkeypatch.setenv("SHAREHUB_DAG_RETRY_DELAY", "3")
    settings = Settings()
    assert delivery_queue(settings, "tjj") == "dept_tjj"  # department codes match case-insensitively
    assert delivery_queue(settings, "SPJ") is None  # no queue of its own: the default one
    assert delivery_queue(settings, None) is None

    routed = build_subscription_dag(
        dataclasses.replace(SPEC, queue=delivery_queue(settings, SPEC.department_code))
    )
    (t,) = routed.tasks
    assert (t.queue, t.retry_delay) == ("dept_tjj", timedelta(seconds=3))
    assert "`dept_tjj`" in routed.doc_md
    (plain,) = build_subscription_dag(SPEC).tasks
    assert plain.queue == conf.get("operators", "default_queue")
    assert "Celery queue" not in build_subscription_dag(SPEC).doc_md


def test_register_builds_one_dag_per_subscription_and_survives_a_missing_hub() -> None:
    ns: dict[str, object] = {}
    other = SubscriptionSpec(8, "app-b", "审批", "SPJ", "FY-SXBZXR-001", "spj", "debtors", "append")
    assert register_subscriptions(ns, lambda: [SPEC, other]) == 2
    assert sorted(ns) == ["deliver__7__SCJ-YYZZ-001", "deliver__8__FY-SXBZXR-001"]

    def broken() -> list[SubscriptionSpec]:
        raise RuntimeError("no hub DB")

    assert register_subscriptions({}, broken) == 0


PROBE = """
import json, runpy, sys
ns = runpy.run_path(sys.argv[1])
print(json.dumps({
    "dags": sorted(k for k in ns if k.startswith("deliver__")),
    "queues": sorted({ns[k].get_task("deliver").queue for k in ns if k.startswith("deliver__")}),
    "heavy": sorted({m.split(".")[0] for m in sys.modules} & {"pandas", "pyarrow", "pyiceberg",
                                                              "great_expectations"}),
}))
"""


def test_the_dag_file_reads_the_active_subscriptions_and_stays_light(tmp_path: Path) -> None:
    hub = build(tmp_path)
    hub.sync()
    hub.grant("统计分析", ["pid", "amount"])
    app_id = hub.apps["统计分析"][0]
    kw = {"target_ref": "tjj_db", "mode": "mirror", "by": "t", "policy": DEFAULT_POLICY}
    kept = subscriptions.subscribe(hub.engine, app_id, CODE, target_table="kept", **kw)  # type: ignore[arg-type]
    ended = subscriptions.subscribe(hub.engine, app_id, CODE, target_table="ended", **kw)  # type: ignore[arg-type]
    subscriptions.end(hub.engine, ended.id, by="t", reason="不再需要")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHAREHUB_", "AIRFLOW"))}
    env["SHAREHUB_VAR_DIR"] = str(hub.settings.var_dir)
    # the subscriber's department's queue routes its deliveries; the dataset's own entry does not
    with hub.engine.connect() as conn:
        dept = conn.execute(
            sa.select(tables.apps.c.department_code).where(tables.apps.c.app_id == app_id)
        ).scalar()
    assert dept
    env[f"SHAREHUB_AIRFLOW_QUEUES__{dept}"] = "dept_subscriber"
    env[f"SHAREHUB_AIRFLOW_QUEUES__{CODE}"] = "sync_only"
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(REPO / "dags" / "sharehub_subscriptions.py")],
        env=env, capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got == {"dags": [f"deliver__{kept.id}__{CODE}"], "queues": ["dept_subscriber"], "heavy": []}


@pytest.mark.airflow
@pytest.mark.timeout(600)
def test_airflow_delivers_a_subscription_and_stops_when_the_grant_ends(tmp_path: Path) -> None:
    hub = build(tmp_path)
    hub.sync()
    grant = hub.grant("统计分析", ["pid", "name", "amount"])
    target = tmp_path / "tjj.db"
    settings = hub.settings.model_copy(
        update={"connections": {**hub.settings.connections, "tjj_db": f"sqlite:///{target}"}}
    )
    sub = subscriptions.subscribe(
        hub.engine, hub.apps["统计分析"][0], CODE, target_ref="tjj_db", target_table="people",
        mode="mirror", by="t", policy=DEFAULT_POLICY,
    )  # fmt: skip
    dag_id = f"deliver__{sub.id}__{CODE}"

    done = run_dag(dag_id, settings=settings)
    assert done.ok, (done.error, done.log_path.read_text(encoding="utf-8")[-3000:])
    assert done.task_states == {"deliver": "success"}
    with sqlite3.connect(target) as db:
        assert db.execute("SELECT count(*), sum(amount) FROM people").fetchone() == (
            50,
            sum(range(10, 510, 10)),
        )
    (attempt,) = subscriptions.history(hub.engine, sub.id)
    assert attempt["status"] == "success" and attempt["inserted"] == 50 and attempt["run_id"] == done.run_id

    applications.revoke(hub.engine, grant, by="shr_approver", reason="项目结束")
    stopped = run_dag(dag_id, settings=settings, retries=None)  # the DAG's own retries: not used
    assert stopped.state == "failed" and stopped.task_states == {"deliver": "failed"}
    assert "no active grant" in stopped.log_path.read_text(encoding="utf-8")
    last = subscriptions.history(hub.engine, sub.id)[0]
    assert last["status"] == "stopped" and last["run_id"] == stopped.run_id
