"""B1-B4: a full and an incremental sync of the licence table from the local PostgreSQL.

The hub under test is the production shape on one machine: hub DB (directory, runs, serving
store, Iceberg catalog) in a fresh PostgreSQL database, the lake in a local warehouse folder,
the source in another PostgreSQL database (:mod:`benchmarks.licence_source`). The dataset is
the directory's ``SCJ-YYZZ-001`` (12 fields, credit-code checksum, enums, not-null, range,
not-future and unique-key rules) without its certificate section: B1 measures the sync
into ``curated`` + serving; signing a million certificates is a separate figure.

Every sync runs in a child process (``python benchmarks/sync_bench.py child …``) so its peak
RSS is its own; the steps are timed inside the child around the same functions the Airflow
tasks call (``sharehub.pipeline.extract_land`` / ``validate`` / ``publish``).

Baselines, in the same run against the same table:

* ``copy``: ``COPY (SELECT <the 12 columns> FROM business_licence) TO STDOUT (FORMAT binary)``
  read to the end by psycopg (bytes only, nothing decoded): the physical limit of extraction;
* ``pandas``: ``pandas.read_sql`` of the same SELECT through SQLAlchemy, then ``to_parquet``
  (the script a data engineer would write first).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from catalog import publishing
from catalog.db.engine import engine_for

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

CODE = "SCJ-YYZZ-001"
COLUMNS = [
    "uscc",
    "ent_name",
    "ent_type",
    "legal_rep",
    "reg_capital",
    "est_date",
    "valid_until",
    "reg_authority",
    "address",
    "business_scope",
    "status",
    "updated_at",
]
SELECT = f"SELECT {', '.join(COLUMNS)} FROM business_licence"


# ---- baselines ------------------------------------------------------------------------------


def copy_baseline(src_url: str) -> dict[str, float]:
    """Seconds and bytes for ``COPY (SELECT …) TO STDOUT (FORMAT binary)`` read by psycopg."""
    import psycopg

    t0 = time.perf_counter()
    n = 0
    with (
        psycopg.connect(src_url.replace("postgresql+psycopg://", "postgresql://")) as conn,
        conn.cursor() as cur,
        cur.copy(f"COPY ({SELECT}) TO STDOUT (FORMAT binary)") as copy,
    ):
        while data := copy.read():
            n += len(data)
    return {"seconds": time.perf_counter() - t0, "bytes": n}


def copy_baseline_libpq(src_url: str) -> dict[str, float]:
    """The same COPY read through libpq directly (``psycopg.pq``): no per-row Python in psycopg.

    This is the faster of the two ways to read COPY from Python, so it is the limit B1 uses."""
    import select

    import sqlalchemy as sa
    from psycopg import pq

    url = sa.make_url(src_url).set(drivername="postgresql")
    t0 = time.perf_counter()
    pg = pq.PGconn.connect(url.render_as_string(hide_password=False).encode())
    try:
        if pg.status != pq.ConnStatus.OK:
            raise RuntimeError(pg.get_error_message())
        pg.send_query(f"COPY ({SELECT}) TO STDOUT (FORMAT binary)".encode())
        result = pg.get_result()
        if result is None or result.status != pq.ExecStatus.COPY_OUT:
            raise RuntimeError(pg.get_error_message())
        n = 0
        while True:
            nbytes, _data = pg.get_copy_data(1)
            if nbytes > 0:
                n += nbytes
            elif nbytes == 0:
                select.select([pg.socket], [], [])
                pg.consume_input()
            else:
                break
        while pg.get_result() is not None:
            pass
    finally:
        pg.finish()
    return {"seconds": time.perf_counter() - t0, "bytes": n}


def copy_in_limit(src_url: str, hub_url: str, serving_table: str) -> dict[str, float]:
    """PostgreSQL's own cost of taking the rows in: ``COPY … FROM STDIN`` (CSV, prepared in memory
    beforehand) into an unindexed copy of the serving table, then its primary key. This bounds
    the serving refresh whatever the client does; the table is dropped afterwards."""
    import psycopg

    def plain(url: str) -> str:
        return url.replace("postgresql+psycopg://", "postgresql://")

    with psycopg.connect(plain(src_url)) as conn, conn.cursor() as cur:
        blocks: list[bytes] = []
        cols = ", ".join(COLUMNS)
        query = f"COPY (SELECT {cols}, 'bench__copy_in', now() FROM business_licence) TO STDOUT (FORMAT csv)"
        with cur.copy(query) as copy:
            blocks.extend(bytes(b) for b in copy)
    with psycopg.connect(plain(hub_url), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_copy_in")
        cur.execute(f"CREATE TABLE bench_copy_in (LIKE {serving_table} INCLUDING DEFAULTS)")
        t0 = time.perf_counter()
        with cur.copy("COPY bench_copy_in FROM STDIN (FORMAT csv)") as copy:
            for block in blocks:
                copy.write(block)
        t1 = time.perf_counter()
        cur.execute("ALTER TABLE bench_copy_in ADD PRIMARY KEY (uscc)")
        t2 = time.perf_counter()
        cur.execute("DROP TABLE bench_copy_in")
    return {"copy_in_s": t1 - t0, "primary_key_s": t2 - t1, "seconds": t2 - t0}


def pandas_baseline(src_url: str, out: Path) -> dict[str, Any]:
    """The pandas script in its own process (it holds the whole table: GBs the harness must not keep)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "pandas", "--src", src_url, "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"pandas baseline failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def pandas_script(src_url: str, out: Path) -> dict[str, Any]:
    """Seconds for ``pandas.read_sql`` + ``DataFrame.to_parquet`` of the same SELECT."""
    import pandas as pd
    import sqlalchemy as sa

    t0 = time.perf_counter()
    engine = sa.create_engine(src_url)
    try:
        with engine.connect() as conn:
            df = pd.read_sql(sa.text(SELECT), conn)
        df.to_parquet(out)
    finally:
        engine.dispose()
    return {"seconds": time.perf_counter() - t0, "rows": len(df), "max_rss_bytes": _max_rss()}


# ---- the hub under test ---------------------------------------------------------------------


def directory_file(path: Path) -> Path:
    """The market regulator's directory with only the licence dataset and no certificate section."""
    import yaml

    doc = yaml.safe_load((REPO / "directory" / "scjgj.yaml").read_text(encoding="utf-8"))
    doc.pop("certificate_types", None)
    doc["datasets"] = [d for d in doc["datasets"] if d["code"] == CODE]
    for d in doc["datasets"]:
        d.pop("certificate", None)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def hub_env(var_dir: Path, hub_url: str, src_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "SHAREHUB_VAR_DIR": str(var_dir),
            "SHAREHUB_DATABASE_URL": hub_url,
            "SHAREHUB_CONNECTIONS__SCJ_DB": src_url,
            "PYTHONPATH": str(REPO),
        }
    )
    return env


def prepare_hub(var_dir: Path, hub_url: str) -> None:
    """Migrate the (fresh) hub DB and publish the benchmark directory."""
    from catalog.db import migrate

    var_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(hub_url)
    engine = engine_for(hub_url)
    try:
        publishing.publish_path(engine, directory_file(var_dir / "scjgj-bench.yaml"))
    finally:
        engine.dispose()


def run_child(env: dict[str, str], *, full: bool, run_id: str, extract_only: bool = False) -> dict[str, Any]:
    """One sync in a child process; its step timings, counts and peak RSS.

    ``extract_only``: stop after extract+land (B12 compares that step with a peer)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "child", "--run-id", run_id]
    if full:
        cmd.append("--full")
    if extract_only:
        cmd += ["--steps", "extract"]
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"sync child failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def warm_up() -> float:
    """Import what the three steps import (an Airflow task process pays this once); seconds."""
    t0 = time.perf_counter()
    import great_expectations  # noqa: F401
    import pyiceberg.catalog.sql
    import pyiceberg.io.pyarrow  # noqa: F401

    import connectors.conform
    import connectors.postgres  # noqa: F401
    from catalog.db import migrate
    from quality import _gx

    _gx.warm_up()
    migrate.head()
    return time.perf_counter() - t0


def child(run_id: str, full: bool, steps: str = "all") -> dict[str, Any]:
    from sharehub import pipeline

    times: dict[str, float] = {"imports": warm_up()}
    t0 = time.perf_counter()
    peak: dict[str, int] = {"imports": _max_rss()}
    landed = pipeline.extract_land(CODE, run_id, full=full, trigger="bench")
    times["extract_land"] = time.perf_counter() - t0
    peak["extract_land"] = _max_rss()
    if steps == "extract":
        return {"times": times, "rows_read": landed["rows_read"], "max_rss_bytes": _max_rss()}
    t1 = time.perf_counter()
    checked = pipeline.validate(CODE, run_id)
    times["validate"] = time.perf_counter() - t1
    peak["validate"] = _max_rss()
    t2 = time.perf_counter()
    published = pipeline.publish(CODE, run_id)
    times["publish"] = time.perf_counter() - t2
    peak["publish"] = _max_rss()
    times["total"] = time.perf_counter() - t0
    return {
        "times": times,
        "rows_read": landed["rows_read"],
        "quarantined": checked["quarantined"],
        "published": published["published"],
        "inserted": published["inserted"],
        "updated": published["updated"],
        "max_rss_bytes": _max_rss(),
        "peak_rss_after": peak,
    }


def _max_rss() -> int:
    """Peak resident set size of this process so far, in bytes.

    ``VmHWM`` from /proc, not ``getrusage``: ``ru_maxrss`` keeps the high-water mark of the
    forked copy of the parent from before ``exec``, so a big parent inflates every child."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("child", help="run one sync with the SHAREHUB_* environment (internal)")
    c.add_argument("--run-id", required=True)
    c.add_argument("--full", action="store_true")
    c.add_argument("--steps", choices=("all", "extract"), default="all")
    p = sub.add_parser("pandas", help="run the pandas baseline (internal)")
    p.add_argument("--src", required=True)
    p.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.cmd == "pandas":
        print(json.dumps(pandas_script(args.src, args.out)))
        return 0
    if args.cmd == "child":
        import logging

        logging.disable(logging.WARNING)
        print(json.dumps(child(args.run_id, args.full, args.steps)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
