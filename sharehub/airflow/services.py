"""Airflow as a running service: api-server, scheduler and dag-processor, runs triggered and awaited.

This is how production runs the syncs (the compose file adds the triggerer and Celery
workers): the dag-processor parses ``dags/`` into the metadata DB, the scheduler creates and
schedules DAG runs, the executor's workers run the tasks, and the tasks talk to the API
server's execution API. :func:`run_dag` in :mod:`sharehub.airflow.env` (``airflow dags test``)
is the quick path for one run on one machine; :class:`AirflowServices` is the real one.

The metadata DB is read with SQLAlchemy (``dag_run``, ``serialized_dag`` tables) so that a
test or the CLI can wait for runs without importing Airflow.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx
import sqlalchemy as sa

from sharehub.airflow.env import (
    AirflowEnvError,
    airflow_db_url,
    airflow_environ,
    dag_id_for,
    ensure_airflow_db,
)
from sharehub.settings import Settings

SERVICES = ("api-server", "scheduler", "dag-processor")
TERMINAL = {"success", "failed"}


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class AirflowServices:
    """Start the Airflow services for this hub's settings; stop them on exit.

    ``executor`` defaults to the settings' (LocalExecutor here; CeleryExecutor needs workers
    and a broker, which the compose file provides).
    """

    settings: Settings
    port: int = field(default_factory=free_port)
    log_dir: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _engine: sa.Engine | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = airflow_environ(self.settings)
        env.update(
            {
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                # every component must share these, or the tasks' tokens do not verify
                "AIRFLOW__API_AUTH__JWT_SECRET": self._secret("jwt"),
                "AIRFLOW__API__SECRET_KEY": self._secret("api"),
                # find new DAG files quickly; the default scan interval is minutes
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            }
        )
        env.update(self.extra_env)
        return env

    _secrets: dict[str, str] = field(default_factory=dict)

    def _secret(self, name: str) -> str:
        return self._secrets.setdefault(name, secrets.token_urlsafe(32))

    @property
    def logs(self) -> Path:
        return (self.log_dir or self.settings.var_dir.resolve() / "logs" / "airflow-services").resolve()

    def metadata_engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = sa.create_engine(airflow_db_url(self.settings), pool_pre_ping=True)
        return self._engine

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self, *, timeout: float = 180.0, migrate: bool = True) -> AirflowServices:
        """Start the services and wait until the api-server is healthy.

        ``migrate=False`` when the metadata DB is known to be at this Airflow's version already
        (e.g. a copy of a migrated template database): skips ``airflow db migrate``, which
        imports Airflow in a process of its own only to find nothing to do."""
        if migrate:
            ensure_airflow_db(self.settings)
        self.logs.mkdir(parents=True, exist_ok=True)
        env = self.env
        for name in SERVICES:
            argv = [sys.executable, "-m", "airflow", name]
            if name == "api-server":
                argv += ["--port", str(self.port), "--host", "127.0.0.1"]
            out = (self.logs / f"{name}.log").open("ab")
            self._procs[name] = subprocess.Popen(  # noqa: S603 - our interpreter, fixed argv
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_healthy(timeout)
        return self

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(httpx.HTTPError):
                r = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=2)
                if r.status_code == 200:
                    return
            time.sleep(1)
        raise AirflowEnvError(f"Airflow api-server not healthy after {timeout:.0f} s; logs in {self.logs}")

    def check_alive(self) -> None:
        """Raise when one of the services this object started has exited."""
        self._check_alive()

    def _check_alive(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise AirflowEnvError(
                    f"airflow {name} exited with {proc.returncode}; see {self.logs / (name + '.log')}"
                )

    def stop(self, *, grace: float = 30.0) -> None:
        """``SIGTERM`` to every service at once; whatever has not exited ``grace`` seconds later
        gets ``SIGKILL``."""
        for proc in self._procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self._procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._procs.clear()
        if self._engine is not None:
            self._engine.dispose()

    def __enter__(self) -> AirflowServices:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- DAGs and runs ---------------------------------------------------------------------
    def wait_parsed(self, dag_ids: Iterable[str], *, timeout: float = 180.0) -> None:
        """Wait until the dag-processor has serialized every DAG."""
        wanted = set(dag_ids)
        table = sa.table("serialized_dag", sa.column("dag_id"))
        deadline = time.monotonic() + timeout
        seen: set[str] = set()
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(sa.exc.DBAPIError), self.metadata_engine().connect() as conn:
                seen = {r[0] for r in conn.execute(sa.select(table.c.dag_id))}
            if wanted <= seen:
                return
            time.sleep(1)
        raise AirflowEnvError(f"DAGs not parsed after {timeout:.0f} s: {sorted(wanted - seen)}")

    def trigger(self, code_or_dag_id: str, *, full: bool = False) -> str:
        """Trigger one run (as an operator does with ``airflow dags trigger``); returns its run id."""
        dag_id = dag_id_for(code_or_dag_id)
        run_id = f"manual__sharehub__{int(time.time() * 1000)}__{secrets.token_hex(3)}"
        argv = [
            sys.executable, "-m", "airflow", "dags", "trigger", dag_id,
            "--run-id", run_id, "--conf", json.dumps({"full": full}),
        ]  # fmt: skip
        proc = subprocess.run(argv, env=self.env, capture_output=True, text=True, check=False)  # noqa: S603
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
            raise AirflowEnvError(f"airflow dags trigger {dag_id} failed ({proc.returncode}):\n{tail}")
        return run_id

    def run_states(self, runs: dict[str, str]) -> dict[str, str | None]:
        """{dag_id: state} of the given {dag_id: run_id}."""
        table = sa.table("dag_run", sa.column("dag_id"), sa.column("run_id"), sa.column("state"))
        out: dict[str, str | None] = {}
        with self.metadata_engine().connect() as conn:
            for dag_id, run_id in runs.items():
                out[dag_id] = conn.execute(
                    sa.select(table.c.state).where(table.c.dag_id == dag_id, table.c.run_id == run_id)
                ).scalar()
        return out

    def runs_of(self, dag_id: str) -> list[tuple[str, str | None, str | None]]:
        """(run_id, run_type, state) of every run of ``dag_id``, oldest first — the runs the
        scheduler made for an Asset event have run type ``asset_triggered``."""
        table = sa.table(
            "dag_run", sa.column("id"), sa.column("dag_id"), sa.column("run_id"), sa.column("run_type"),
            sa.column("state"),
        )  # fmt: skip
        q = sa.select(table.c.run_id, table.c.run_type, table.c.state).where(table.c.dag_id == dag_id)
        with self.metadata_engine().connect() as conn:
            return [(r[0], r[1], r[2]) for r in conn.execute(q.order_by(table.c.id))]

    def wait_runs(
        self, runs: dict[str, str], *, timeout: float = 900.0, check_services: bool = True
    ) -> dict[str, str | None]:
        """Wait until every run is success or failed (or the timeout); returns the final states.

        ``check_services=False`` when the services run elsewhere (another process, compose)."""
        deadline = time.monotonic() + timeout
        states: dict[str, str | None] = {}
        while time.monotonic() < deadline:
            if check_services:
                self._check_alive()
            states = self.run_states(runs)
            if all(s in TERMINAL for s in states.values()):
                return states
            time.sleep(2)
        return states
