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
    with psycopg.connect(src_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        with conn.cursor() as cur, cur.copy(f"COPY ({SELECT}) TO STDOUT (FORMAT binary)") as copy:
            while data := copy.read():
                n += len(data)
    return {"seconds": time.perf_counter() - t0, "bytes": n}


def pandas_baseline(src_url: str, out: Path) -> dict[str, float]:
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
    return {"seconds": time.perf_counter() - t0, "rows": len(df)}


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
    from catalog import dbschema, store

    var_dir.mkdir(parents=True, exist_ok=True)
    dbschema.upgrade(hub_url)
    engine = store.engine_for(hub_url)
    try:
        store.publish_path(engine, directory_file(var_dir / "scjgj-bench.yaml"))
    finally:
        engine.dispose()


def run_child(env: dict[str, str], *, full: bool, run_id: str) -> dict[str, Any]:
    """One sync in a child process; its step timings, counts and peak RSS."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "child", "--run-id", run_id]
    if full:
        cmd.append("--full")
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"sync child failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def child(run_id: str, full: bool) -> dict[str, Any]:
    from sharehub import pipeline

    times: dict[str, float] = {}
    t0 = time.perf_counter()
    landed = pipeline.extract_land(CODE, run_id, full=full, trigger="bench")
    times["extract_land"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    checked = pipeline.validate(CODE, run_id)
    times["validate"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    published = pipeline.publish(CODE, run_id)
    times["publish"] = time.perf_counter() - t2
    times["total"] = time.perf_counter() - t0
    return {
        "times": times,
        "rows_read": landed["rows_read"],
        "quarantined": checked["quarantined"],
        "published": published["published"],
        "inserted": published["inserted"],
        "updated": published["updated"],
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("child", help="run one sync with the SHAREHUB_* environment (internal)")
    c.add_argument("--run-id", required=True)
    c.add_argument("--full", action="store_true")
    args = ap.parse_args(argv)
    if args.cmd == "child":
        import logging

        logging.disable(logging.WARNING)
        print(json.dumps(child(args.run_id, args.full)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
