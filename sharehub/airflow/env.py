"""Run Airflow embedded, with nothing for the user to export.

* :func:`airflow_environ` -- the environment of an embedded Airflow process: home, DAGs folder,
  SQLite metadata DB, LocalExecutor, logging, plus the caller's ``SHAREHUB_*`` settings made
  absolute so that tasks see the same hub as the caller.
* :func:`ensure_airflow_db` -- ``airflow db migrate`` once per Airflow version (a marker file
  makes repeats free; a real migrate costs ~7 s even when there is nothing to do).
* :func:`run_dag` -- one sync DAG run through ``airflow dags test`` in a subprocess (no
  scheduler, no executor: tasks run in-process one after another), its output in a log file
  under ``var/logs/dag_runs``, the outcome as a :class:`DagRunResult`.

This module must stay importable without importing Airflow (the CLI uses it).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TextIO

from sharehub.airflow.dagspec import DagSpec
from sharehub.settings import Settings, get_settings

DAGS_FOLDER_ENV = "SHAREHUB_DAGS_FOLDER"
DAG_ID_PREFIX = "sync__"
#: Airflow's default, stated explicitly: a DAG file that takes longer to import is an import error.
DAGBAG_IMPORT_TIMEOUT = 30
DEFAULT_RUN_TIMEOUT = 900.0


class AirflowEnvError(RuntimeError):
    """The embedded Airflow could not be prepared or run."""


class DagRunFailed(AirflowEnvError):
    """A DAG run ended in a state other than success."""


@dataclass(frozen=True)
class DagRunResult:
    """Outcome of one :func:`run_dag`."""

    dag_id: str
    state: str  # "success" | "failed"
    run_id: str | None
    duration_s: float
    log_path: Path
    returncode: int
    task_states: dict[str, str] = field(default_factory=dict)
    detail: str = ""  # last error line of the log, on failure

    @property
    def ok(self) -> bool:
        return self.state == "success"

    @property
    def failed_tasks(self) -> list[str]:
        return [t for t, s in self.task_states.items() if s in ("failed", "upstream_failed", "up_for_retry")]

    @property
    def error(self) -> str | None:
        """A one-line explanation of a failure (failed task and log file), None on success."""
        if self.ok:
            return None
        failed = [t for t, s in self.task_states.items() if s == "failed"] or self.failed_tasks
        what = f"task {', '.join(failed)} failed" if failed else f"airflow exited with {self.returncode}"
        detail = f" ({self.detail})" if self.detail else ""
        return f"DAG {self.dag_id} run {self.run_id or '?'}: {what}{detail}; see {self.log_path}"

    def check(self) -> DagRunResult:
        """Return self, or raise :class:`DagRunFailed` with :attr:`error`."""
        if not self.ok:
            raise DagRunFailed(self.error)
        return self


# ---- locations -----------------------------------------------------------------------------
def dags_folder() -> Path:
    """The Airflow DAGs folder: ``$SHAREHUB_DAGS_FOLDER`` or the repo's ``dags/`` next to ``sharehub``."""
    override = os.environ.get(DAGS_FOLDER_ENV)
    if override:
        return Path(override).expanduser().resolve()
    import sharehub

    folder = Path(sharehub.__file__).resolve().parent.parent / "dags"
    if not folder.is_dir():
        raise AirflowEnvError(
            f"no DAGs folder at {folder} (sharehub installed outside its repo?); set {DAGS_FOLDER_ENV}"
        )
    return folder


def airflow_db_path(settings: Settings) -> Path:
    return settings.airflow_dir / "airflow.db"


def airflow_db_url(settings: Settings) -> str:
    """The Airflow metadata DB: ``airflow_database_url``, else SQLite under the Airflow home."""
    return settings.airflow_database_url or f"sqlite:///{airflow_db_path(settings)}"


def dag_id_for(code_or_dag_id: str) -> str:
    """``sync__<code>`` for a dataset code; a dag_id (a sync's, or a subscription's
    ``deliver__…``) is returned unchanged."""
    if code_or_dag_id.startswith((DAG_ID_PREFIX, "deliver__")):
        return code_or_dag_id
    return DagSpec(
        code=code_or_dag_id, name="", department_code="", department_name="", share_type="", schedule=None
    ).dag_id


def airflow_version() -> str:
    """The installed Airflow version, read from package metadata (no Airflow import)."""
    for dist in ("apache-airflow-core", "apache-airflow"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            return metadata.version(dist)
    raise AirflowEnvError("apache-airflow is not installed")


# ---- environment ---------------------------------------------------------------------------
def airflow_environ(
    settings: Settings | None = None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The full environment of an embedded Airflow subprocess.

    Starts from ``base`` (default ``os.environ``, so ``PATH``, ``SHAREHUB_*`` and any other
    ``AIRFLOW__*`` the user set pass through) and fixes what the embedded hub needs.
    """
    settings = settings or get_settings()
    home = settings.airflow_dir
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder()),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAG_DISCOVERY_SAFE_MODE": "True",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": str(DAGBAG_IMPORT_TIMEOUT),
            "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": str(DAGBAG_IMPORT_TIMEOUT + 20),
            # SQLite is fine for one machine (`airflow standalone` uses LocalExecutor on it);
            # production sets SHAREHUB_AIRFLOW_DATABASE_URL to PostgreSQL
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db_url(settings),
            "AIRFLOW__CORE__EXECUTOR": settings.airflow_executor,
            "AIRFLOW__CORE__PARALLELISM": env.get("AIRFLOW__CORE__PARALLELISM", "4"),
            # plain, greppable logs: no colours, INFO, task logs under the Airflow home
            "AIRFLOW__LOGGING__LOGGING_LEVEL": env.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO"),
            "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "NO_COLOR": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONIOENCODING": "utf-8",
            # the tasks must see the caller's hub, whatever the subprocess's working directory
            "SHAREHUB_VAR_DIR": str(settings.var_dir.resolve()),
            "SHAREHUB_AIRFLOW_HOME": str(home),
        }
    )
    if settings.database_url:
        env["SHAREHUB_DATABASE_URL"] = settings.database_url
    if settings.airflow_database_url:
        env["SHAREHUB_AIRFLOW_DATABASE_URL"] = settings.airflow_database_url
        if settings.airflow_database_url.startswith("postgresql+psycopg://"):
            # psycopg 3 is sync and async; Airflow would otherwise derive an asyncpg URL
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] = settings.airflow_database_url
    if settings.lake_dir is not None:
        env["SHAREHUB_LAKE_DIR"] = str(settings.lake_dir.resolve())
    # the settings object may carry connections from a secrets file or the caller: the tasks need them
    for ref, location in settings.connections.items():
        env[f"SHAREHUB_CONNECTIONS__{ref.upper()}"] = location
    return env


# ---- metadata DB ---------------------------------------------------------------------------
@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _marker(settings: Settings) -> Path:
    return settings.airflow_dir / f".sharehub-db-migrated-{airflow_version()}"


def ensure_airflow_db(settings: Settings | None = None, *, force: bool = False) -> bool:
    """Run ``airflow db migrate`` unless already done for this Airflow version and DB file.

    Idempotent and safe across processes (file lock). Returns True when a migrate ran.
    """
    settings = settings or get_settings()
    env = airflow_environ(settings)
    marker = _marker(settings)
    conn = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    conn_id = hashlib.sha256(conn.encode()).hexdigest()  # the URL may hold a password: keep only a hash

    def done() -> bool:
        return (
            not force
            and marker.exists()
            and marker.read_text(encoding="utf-8").strip() == conn_id
            and (not conn.startswith("sqlite") or airflow_db_path(settings).exists())
        )

    if done():
        return False
    with _locked(settings.airflow_dir / ".sharehub-db.lock"):
        if done():  # another process migrated while we waited
            return False
        proc = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        log_dir = settings.var_dir.resolve() / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        (log_dir / "airflow-db-migrate.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise AirflowEnvError(f"airflow db migrate failed ({proc.returncode}):\n{tail}")
        marker.write_text(conn_id + "\n", encoding="utf-8")
    return True


# ---- one DAG run ---------------------------------------------------------------------------
def _last_error_line(log_path: Path) -> str:
    last = ""
    with contextlib.suppress(OSError), log_path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            text = line.strip()
            if ("Exception: " in text or "Error: " in text) and not text.startswith("During handling"):
                last = text
    return last[:300]


def _latest_run(db: Path, dag_id: str, after_id: int) -> tuple[str | None, str | None, dict[str, str]]:
    """(run_id, state, {task_id: state}) of the newest run of ``dag_id`` with id > after_id."""
    if not db.exists():
        return None, None, {}
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as con:
        row = con.execute(
            "SELECT run_id, state FROM dag_run WHERE dag_id = ? AND id > ? ORDER BY id DESC LIMIT 1",
            (dag_id, after_id),
        ).fetchone()
        if row is None:
            return None, None, {}
        tis = con.execute(
            "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ? ORDER BY start_date",
            (dag_id, row[0]),
        ).fetchall()
    return row[0], row[1], {t: s or "none" for t, s in tis}


def _max_run_id(db: Path) -> int:
    if not db.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as con:
        try:
            (value,) = con.execute("SELECT COALESCE(MAX(id), 0) FROM dag_run").fetchone()
        except sqlite3.OperationalError:  # not migrated yet
            return 0
    return int(value)


def run_dag(
    code_or_dag_id: str,
    *,
    full: bool = False,
    settings: Settings | None = None,
    retries: int | None = 0,
    timeout: float = DEFAULT_RUN_TIMEOUT,
    echo: TextIO | None = None,
) -> DagRunResult:
    """Run one DAG (a sync, or a subscription's delivery) once with ``airflow dags test`` and
    report how it went.

    ``retries`` overrides the DAG's task retries for this run (default 0: a local run should
    fail fast rather than sleep through retry delays; ``None`` keeps the DAG's own). Output
    goes to ``var/logs/dag_runs/<dag_id>__<utc time>.log`` (and to ``echo`` if given). The
    metadata DB is migrated first if needed. Never raises for a failed run: see
    :attr:`DagRunResult.error` / :meth:`DagRunResult.check`.
    """
    settings = settings or get_settings()
    dag_id = dag_id_for(code_or_dag_id)
    ensure_airflow_db(settings)
    env = airflow_environ(settings)
    if retries is not None:
        env["SHAREHUB_DAG_RETRIES"] = str(retries)
    db = airflow_db_path(settings)
    before = _max_run_id(db)

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    log_path = settings.var_dir.resolve() / "logs" / "dag_runs" / f"{dag_id}__{stamp}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "airflow", "dags", "test", dag_id, "-c", json.dumps({"full": bool(full)})]

    started = time.monotonic()
    with log_path.open("w", encoding="utf-8") as out:
        out.write(f"$ {' '.join(argv[1:])}\n")
        out.flush()
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, our own interpreter
            argv,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
        assert proc.stdout is not None
        killed: list[bool] = []

        def _kill() -> None:
            killed.append(True)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        watchdog = threading.Timer(timeout, _kill)
        watchdog.start()
        try:
            for line in proc.stdout:
                out.write(line)
                if echo is not None:
                    echo.write(line)
            returncode = proc.wait()
        finally:
            watchdog.cancel()
        if killed:
            out.write(f"\n[sharehub] airflow dags test killed after {timeout:.0f} s\n")
    duration = time.monotonic() - started

    run_id, state, task_states = _latest_run(db, dag_id, before)
    final = "success" if returncode == 0 and state == "success" else "failed"
    return DagRunResult(
        dag_id=dag_id,
        state=final,
        run_id=run_id,
        duration_s=round(duration, 2),
        log_path=log_path,
        returncode=returncode,
        task_states=task_states,
        detail="" if final == "success" else _last_error_line(log_path),
    )
