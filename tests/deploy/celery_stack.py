"""Airflow on the CeleryExecutor for the deploy tests: Celery workers beside the services that
:class:`sharehub.airflow.services.AirflowServices` starts, and the metadata queries the
assertions need (which worker ran which task instance, on which queue).

Every worker runs on this one machine, so each gets its own task-instance hostname through
Airflow's ``[core] hostname_callable`` (:func:`task_hostname`): that is what
``task_instance.hostname`` records, as a separate host's name would in production.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import sqlalchemy as sa

from sharehub.airflow.env import airflow_version, dag_id_for, ensure_airflow_db
from sharehub.airflow.services import AirflowServices
from sharehub.settings import Settings

WORKER_NAME_ENV = "CELERY_TEST_WORKER_NAME"
HOSTNAME_CALLABLE = f"{__name__}.task_hostname"
#: the stack's api-server lets every local request in as admin (it listens on 127.0.0.1 only), so
#: that the test triggers runs through the REST API instead of an ``airflow dags trigger``
#: process per run (each one imports Airflow: ~10 s of CPU on a busy 2-core machine)
API_ENV = {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True"}


def task_hostname() -> str:
    """``[core] hostname_callable`` of a test worker: the worker's name (e.g. ``w1``)."""
    return os.environ[WORKER_NAME_ENV]


@dataclass
class CeleryWorker:
    """One ``airflow celery worker`` process (its own process group)."""

    name: str
    queues: str
    proc: subprocess.Popen[bytes]
    log: Path

    def ready(self) -> bool:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return f"{self.name}@" in text and " ready." in text

    def alive(self) -> bool:
        return self.proc.poll() is None

    def owns(self, pid: int) -> bool:
        """Whether ``pid`` is this worker or one of its descendants (pool process, task)."""
        with contextlib.suppress(psutil.NoSuchProcess):
            return self.proc.pid == pid or self.proc.pid in {p.pid for p in psutil.Process(pid).parents()}
        return False

    def kill_hard(self, *extra_pids: int) -> None:
        """What a lost host does: ``SIGKILL`` to the worker's process group and to every
        descendant (the task runner has a process group of its own), nothing cleaned up."""
        victims: list[int] = list(extra_pids)
        with contextlib.suppress(psutil.NoSuchProcess):
            victims += [p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self) -> None:
        """``SIGTERM`` to the worker's process group (Celery's warm shutdown), without waiting."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)

    def stop(self, grace: float = 20.0) -> None:
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@dataclass
class CeleryStack:
    """The services plus named Celery workers sharing their environment."""

    services: AirflowServices
    workers: dict[str, CeleryWorker] = field(default_factory=dict)

    def start_worker(self, name: str, queues: str, *, concurrency: int = 1) -> CeleryWorker:
        logs = self.services.logs
        logs.mkdir(parents=True, exist_ok=True)
        env = {**self.services.env, WORKER_NAME_ENV: name}
        env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = HOSTNAME_CALLABLE
        argv = [
            sys.executable, "-m", "airflow", "celery", "worker",
            "--celery-hostname", f"{name}@%h", "--queues", queues, "--concurrency", str(concurrency),
            "--pid", str(logs / f"worker-{name}.pid"),  # the default pid file is one per Airflow home
            "--skip-serve-logs",  # its log server would take the same port as the other workers'
            "--without-mingle", "--without-gossip",
        ]  # fmt: skip
        log = logs / f"worker-{name}.log"
        proc = subprocess.Popen(
            argv, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
        )
        worker = self.workers[name] = CeleryWorker(name=name, queues=queues, proc=proc, log=log)
        return worker

    def wait_ready(self, *names: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.services.check_alive()
            for name in names:
                w = self.workers[name]
                assert w.alive(), f"celery worker {name} exited {w.proc.returncode}; see {w.log}"
            if all(self.workers[n].ready() for n in names):
                return
            assert time.monotonic() < deadline, f"workers {names} not ready; logs in {self.services.logs}"
            time.sleep(0.5)

    def stop(self, grace: float = 10.0) -> None:
        """Stop workers and services together (``SIGTERM``; ``SIGKILL`` after ``grace`` seconds): the
        test is over, nothing needs a graceful drain, and one after the other cost ~45 s."""
        for w in self.workers.values():
            w.terminate()
        self.services.stop(grace=grace)
        for w in self.workers.values():
            w.stop(grace=1.0)

    # ---- runs ------------------------------------------------------------------------------
    def trigger(self, code: str, *, full: bool = False) -> str:
        """Trigger one run through the REST API (``POST /api/v2/dags/{dag_id}/dagRuns``, what
        ``airflow dags trigger`` does without starting a Python process); returns its run id."""
        dag_id = dag_id_for(code)
        run_id = f"manual__sharehub__{int(time.time() * 1000)}__{secrets.token_hex(3)}"
        body = {"dag_run_id": run_id, "logical_date": None, "conf": {"full": full}}
        r = httpx.post(f"{self.services.base_url}/api/v2/dags/{dag_id}/dagRuns", json=body, timeout=30)
        assert r.status_code == 200, f"trigger {dag_id}: {r.status_code} {r.text}"
        return run_id

    # ---- the metadata DB -------------------------------------------------------------------
    def task_instances(self, dag_id: str, run_id: str | None = None) -> list[dict[str, object]]:
        """task_id, state, try_number, hostname, queue, external_executor_id (the Celery task id, set
        once the executor has sent it) of the current tries (one row per task)."""
        q = (
            "SELECT task_id, state, try_number, hostname, queue, run_id, external_executor_id "
            "FROM task_instance WHERE dag_id = :d"
        )
        params = {"d": dag_id}
        if run_id is not None:
            q += " AND run_id = :r"
            params["r"] = run_id
        with self.services.metadata_engine().connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(q), params)]

    def earlier_tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, object]]:
        """The finished earlier tries of one task (``task_instance_history``), oldest first."""
        q = sa.text(
            "SELECT try_number, state, hostname, queue FROM task_instance_history "
            "WHERE dag_id = :d AND run_id = :r AND task_id = :t ORDER BY try_number"
        )
        with self.services.metadata_engine().connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q, {"d": dag_id, "r": run_id, "t": task_id})]


# ---- the metadata DB, migrated once -------------------------------------------------------------
def template_name() -> str:
    """The template database of this Airflow version's migrated metadata schema."""
    return "sharehub_tpl_airflow_" + re.sub(r"[^0-9a-z]+", "_", airflow_version().lower())


def airflow_db_from_template(admin_url: str, work_dir: Path) -> Iterator[str]:
    """A fresh Airflow metadata DB (its URL; dropped afterwards), copied from a template database
    that ``airflow db migrate`` built once per Airflow version on this PostgreSQL server.

    ``airflow db migrate`` of an empty database costs a process importing Airflow plus the whole
    schema's DDL (30-45 s on a busy 2-core machine); ``CREATE DATABASE … TEMPLATE`` copies the
    result in about a second. The template is built under a temporary name and renamed when
    complete, so a half-migrated template is never copied; it stays on the server for the next
    run (drop ``sharehub_tpl_airflow_*`` to rebuild it)."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name, template = f"t_{uuid.uuid4().hex[:10]}", template_name()
    base = admin_url.rsplit("/", 1)[0]
    try:
        with admin.connect() as c:
            exists = c.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": template}
            ).scalar()
            if not exists:
                building = f"{template}_{uuid.uuid4().hex[:6]}"
                c.execute(sa.text(f"CREATE DATABASE {building}"))
                try:
                    settings = Settings(var_dir=work_dir, airflow_database_url=f"{base}/{building}")
                    ensure_airflow_db(settings, force=True)
                    c.execute(sa.text(f"ALTER DATABASE {building} RENAME TO {template}"))
                except Exception:
                    c.execute(sa.text(f"DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
                    if not c.execute(
                        sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": template}
                    ).scalar():
                        raise  # not merely another session that finished its template first
            c.execute(sa.text(f"CREATE DATABASE {name} TEMPLATE {template}"))
        yield f"{base}/{name}"
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
