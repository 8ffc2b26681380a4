"""A hub for the fault-injection tests: one SQL-sourced dataset whose source the test controls.

The source is a SQLite file with ``people(pid, name, city, amount, updated_at)``; every 97th
row has no name (the ``not_null`` rule quarantines it). :func:`check_published` is the row-by-row
checker: the good rows of the source, curated (the current snapshot) and serving must be equal,
field by field, and the run record must say what was published.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from catalog import publishing
from catalog.db.engine import engine_for
from catalog.directory import store
from catalog.directory.model import DirectoryFile
from catalog.runs import lease
from catalog.runs import record as runs
from catalog.serving import tables as serving
from sharehub import pipeline
from sharehub.settings import Settings
from tests.paths import REPO

CODE = "FLT-PEOPLE-001"
T0 = dt.datetime(2026, 11, 1, 8, 0, 0)
DIRECTORY = {
    "department": {"code": "FLT", "name": "故障测试局"},
    "datasets": [
        {
            "code": CODE,
            "name": "人员测试数据",
            "share": {"type": "unconditional"},
            "primary_key": ["pid"],
            "fields": [
                {"name": "pid", "label": "编号", "type": "integer"},
                {"name": "name", "label": "姓名", "rules": {"not_null": True}},
                {"name": "city", "label": "城市"},
                {"name": "amount", "label": "金额", "type": "integer"},
                {"name": "updated_at", "label": "更新时间", "type": "timestamp"},
            ],
            "source": {
                "kind": "sql",
                "connection": "flt_src",
                "table": "people",
                "cursor": "updated_at",
                "lookback": "1h",
            },
            "quality": {"policy": "quarantine", "max_bad_ratio": 0.5, "max_volume_change": None},
            "schedule": None,
        }
    ],
}


def _row(pid: int, version: int = 0) -> tuple[Any, ...]:
    name = None if pid % 97 == 0 else f"人员{pid}"
    return (pid, name, f"城市{pid % 11}", pid * 10 + version, (T0 + dt.timedelta(minutes=pid)).isoformat(" "))


@dataclass
class FaultHub:
    """The hub's settings, its engine and the source DB path."""

    settings: Settings
    source: Path
    env: dict[str, str]

    @property
    def engine(self) -> sa.Engine:
        return engine_for(self.settings.hub_db_url)

    # ---- the source -------------------------------------------------------------------------
    def fill(self, n: int) -> None:
        with sqlite3.connect(self.source) as db:
            db.execute("DROP TABLE IF EXISTS people")
            db.execute(
                "CREATE TABLE people (pid INTEGER PRIMARY KEY, name TEXT, city TEXT, amount INTEGER, "
                "updated_at TEXT)"
            )
            db.executemany("INSERT INTO people VALUES (?, ?, ?, ?, ?)", [_row(i) for i in range(1, n + 1)])

    def execute(self, sql: str, *params: Any) -> None:
        with sqlite3.connect(self.source) as db:
            db.execute(sql, params)

    def touch(self, pids: range | list[int], *, at: dt.datetime, version: int = 1) -> None:
        """Change rows (a new amount) as of ``at``."""
        with sqlite3.connect(self.source) as db:
            db.executemany(
                "UPDATE people SET amount = ?, updated_at = ? WHERE pid = ?",
                [(p * 10 + version, at.isoformat(" "), p) for p in pids],
            )

    def source_rows(self) -> dict[int, dict[str, Any]]:
        """The good rows of the source (those with a name), by pid."""
        with sqlite3.connect(self.source) as db:
            rows = db.execute(
                "SELECT pid, name, city, amount, updated_at FROM people ORDER BY pid"
            ).fetchall()
        return {
            r[0]: {"pid": r[0], "name": r[1], "city": r[2], "amount": r[3], "updated_at": _ts(r[4])}
            for r in rows
            if r[1] is not None
        }

    # ---- runs ---------------------------------------------------------------------------------
    def sync(self, run_id: str | None = None, *, full: bool = False) -> dict[str, Any]:
        return pipeline.sync(CODE, full=full, run_id=run_id, settings=self.settings)

    def killed_sync(
        self, run_id: str, point: str, *, full: bool = False, lease_s: float | None = None
    ) -> int:
        """Run the whole sync in a child process that kills itself at fault ``point``."""
        code = (
            "import sys; from sharehub import pipeline; "
            "pipeline.sync(sys.argv[1], run_id=sys.argv[2], full=sys.argv[3] == '1')"
        )
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("SHAREHUB_")}, **self.env}
        env["SHAREHUB_FAULT"] = f"{point}:kill"
        if lease_s is not None:
            env["SHAREHUB_RUN_LEASE_SECONDS"] = str(lease_s)
        proc = subprocess.run(
            [sys.executable, "-c", code, CODE, run_id, "1" if full else "0"],
            cwd=REPO,
            env=env,
            capture_output=True,
            timeout=300,
        )
        return proc.returncode

    def reap_after_lease(self) -> list[str]:
        """What the reaper finds once the killed process's lease has run out (no sleeping)."""
        later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.settings.run_lease_seconds + 1)
        return lease.reap(self.engine, CODE, now=later)

    def resume(self, run_id: str) -> dict[str, Any]:
        """Retry a run's steps under its own id from where it stopped (as Airflow's retries do)."""
        run = runs.get_run(self.engine, run_id)
        steps = ["extract_land", "validate", "publish"]
        start = steps.index(run["stage"]) if run["stage"] in steps else 0
        out: dict[str, Any] = {}
        for step in steps[start:]:
            if step == "extract_land":
                out[step] = pipeline.extract_land(
                    CODE, run_id, full=run["full"], trigger="cli", settings=self.settings
                )
            else:
                out[step] = getattr(pipeline, step)(CODE, run_id, settings=self.settings)
        return out


def _ts(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat(" ")
    return dt.datetime.fromisoformat(str(value)).isoformat(" ")


def check_published(hub: FaultHub, *, run_id: str | None = None) -> None:
    """Source good rows == curated == serving, row by row; the serving state names the snapshot."""
    expected = hub.source_rows()
    h = pipeline.hub(hub.settings)
    spec = store.get_dataset(h.engine, CODE).spec
    curated_snapshot = h.lake.current_snapshot_id("curated", CODE)
    curated = {
        r["pid"]: {**r, "updated_at": _ts(r["updated_at"])}
        for r in h.lake.read("curated", CODE, snapshot_id=curated_snapshot).to_pylist()
    }
    table = serving.serving_table(spec)
    with h.engine.connect() as conn:
        served = {
            r.pid: {f: (getattr(r, f)) for f in ("pid", "name", "city", "amount")}
            | {"updated_at": _ts(r.updated_at)}
            for r in conn.execute(sa.select(table).order_by(table.c.pid))
        }
    missing = sorted(set(expected) - set(curated))
    extra = sorted(set(curated) - set(expected))
    assert not missing and not extra, (
        f"curated: {len(missing)} missing {missing[:5]}, {len(extra)} extra {extra[:5]}"
    )
    assert curated == expected, next(
        f"pid {k}: {curated[k]} != {expected[k]}" for k in expected if curated[k] != expected[k]
    )
    assert served.keys() == expected.keys(), (
        f"serving: missing {sorted(set(expected) - set(served))[:5]}, "
        f"extra {sorted(set(served) - set(expected))[:5]}"
    )
    assert served == expected, next(
        f"pid {k}: {served[k]} != {expected[k]}" for k in expected if served[k] != expected[k]
    )
    known, state = serving.state(h.engine, CODE)
    assert known and state == curated_snapshot, (state, curated_snapshot)
    if run_id is not None:
        run = runs.get_run(h.engine, run_id)
        assert run["status"] == "success" and run["snapshot_id"] == curated_snapshot, run
    assert lease.current(h.engine, CODE) is None, "a finished run left the dataset's lock"


def make_hub(
    tmp: Path, database_url: str | None = None, *, rows: int = 1000, s3: dict[str, str] | None = None
) -> FaultHub:
    """A hub with the FLT dataset published and its source filled (nothing synced yet)."""
    source = tmp / "source.db"
    env = {
        "SHAREHUB_VAR_DIR": str(tmp / "var"),
        "SHAREHUB_CONNECTIONS__FLT_SRC": f"sqlite:///{source}",
        "SHAREHUB_BATCH_SIZE": "100",
        "SHAREHUB_SECRETS_FILE": str(tmp / "no-secrets.toml"),
        "SHAREHUB_CONFIG_FILE": str(tmp / "no-config.toml"),
        "SHAREHUB_RUN_LEASE_SECONDS": "5",
    }
    if database_url:
        env["SHAREHUB_DATABASE_URL"] = database_url
    settings = Settings(
        var_dir=tmp / "var",
        database_url=database_url,
        connections={"flt_src": f"sqlite:///{source}"},
        batch_size=100,
        run_lease_seconds=5,
        **({"s3": s3} if s3 else {}),
    )
    hub = FaultHub(settings=settings, source=source, env=env)
    hub.fill(rows)
    publishing.publish(hub.engine, DirectoryFile.model_validate(DIRECTORY), source_file="flt.yaml")
    return hub


# ---- the fixture both fault modules use --------------------------------------------------


def raw_rows(hub: FaultHub, run_id: str) -> int:
    h = pipeline.hub(hub.settings)
    return h.lake.read("raw", CODE, row_filter=pipeline.run_filter(run_id)).num_rows


def quarantined_rows(hub: FaultHub, run_id: str) -> int:
    h = pipeline.hub(hub.settings)
    return h.lake.read("quarantine", CODE, row_filter=pipeline.run_filter(run_id)).num_rows
