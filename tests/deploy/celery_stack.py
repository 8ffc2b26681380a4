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
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import sqlalchemy as sa

from sharehub.airflow.services import AirflowServices

WORKER_NAME_ENV = "CELERY_TEST_WORKER_NAME"
HOSTNAME_CALLABLE = f"{__name__}.task_hostname"


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

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
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

    def stop(self) -> None:
        for w in self.workers.values():
            w.stop()
        self.services.stop()

    # ---- the metadata DB -------------------------------------------------------------------
    def task_instances(self, dag_id: str, run_id: str | None = None) -> list[dict[str, object]]:
        """task_id, state, try_number, hostname, queue of the current tries (one row per task)."""
        q = "SELECT task_id, state, try_number, hostname, queue, run_id FROM task_instance WHERE dag_id = :d"
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
