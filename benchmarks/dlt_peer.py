"""B12: sharehub's extract+land of the licence table against a peer, dlt, in the same run.

Three measurements of the same ``business_licence`` table (:mod:`benchmarks.licence_source`),
one after another on the same machine:

* ``limit``: the raw read of the 12 columns to Arrow through ADBC (binary COPY decoded by the
  driver), nothing written: what no extract+land can beat;
* ``sharehub``: ``sharehub.pipeline.extract_land`` of a full sync (read, conform to the declared
  types, land in the lake's ``raw`` zone as one Iceberg append), in a child process
  (:mod:`benchmarks.sync_bench` ``child --steps extract``);
* ``dlt``: ``dlt.sources.sql_database.sql_table`` with the ``connectorx`` and the ``pyarrow``
  backends, each loaded to the ``filesystem`` destination as Parquet files and as an Iceberg
  table (``table_format="iceberg"``), in a child process of its own (dlt stays a dev
  dependency of the benchmark; it is imported nowhere else).

Targets: sharehub faster than dlt's fastest configuration, and at least half the raw-read rate.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.sync_bench import SELECT  # noqa: E402

CONFIGS = (
    ("connectorx", "parquet"),
    ("connectorx", "iceberg"),
    ("pyarrow", "parquet"),
    ("pyarrow", "iceberg"),
)


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def raw_read(src_url: str) -> dict[str, Any]:
    """Seconds and rows of the ADBC read of the benchmark SELECT to Arrow batches (no writing)."""
    import adbc_driver_postgresql.dbapi

    t0 = time.perf_counter()
    rows = 0
    with adbc_driver_postgresql.dbapi.connect(_plain(src_url), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(SELECT)
        for batch in cur.fetch_record_batch():
            rows += batch.num_rows
    return {"seconds": time.perf_counter() - t0, "rows": rows}


def dlt_run(src_url: str, out: Path, backend: str, table_format: str) -> dict[str, Any]:
    """One dlt load of ``business_licence`` with ``backend`` to local ``table_format`` files."""
    import dlt
    from dlt.sources.sql_database import sql_table

    url = _plain(src_url)
    kwargs: dict[str, Any] = {"backend": backend, "chunk_size": 100_000}
    if backend == "connectorx":
        kwargs["backend_kwargs"] = {"conn": url}
    pipeline = dlt.pipeline(
        pipeline_name=f"b12_{backend}_{table_format}",
        destination=dlt.destinations.filesystem(bucket_url=(out / f"{backend}_{table_format}").as_uri()),
        dataset_name="b12",
        pipelines_dir=str(out / "pipelines"),
    )
    resource = sql_table(credentials=url, table="business_licence", reflection_level="full", **kwargs)
    t0 = time.perf_counter()
    pipeline.run(
        resource,
        loader_file_format="parquet",
        table_format="iceberg" if table_format == "iceberg" else None,
        write_disposition="replace",
    )
    seconds = time.perf_counter() - t0
    trace = pipeline.last_trace
    rows = trace.last_normalize_info.row_counts.get("business_licence") if trace.last_normalize_info else None
    return {"backend": backend, "table_format": table_format, "seconds": seconds, "rows": rows}


def dlt_child(src_url: str, out: Path) -> list[dict[str, Any]]:
    import logging

    logging.getLogger("dlt").setLevel(logging.ERROR)
    return [dlt_run(src_url, out, backend, fmt) for backend, fmt in CONFIGS]


def run_dlt(src_url: str, out: Path) -> list[dict[str, Any]]:
    """The four dlt configurations in one child process (dlt's imports stay out of the harness)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "dlt", "--src", src_url, "--out", str(out)]
    env = dict(os.environ, RUNTIME__LOG_LEVEL="ERROR", PYTHONPATH=str(REPO))
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"dlt child failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return list(json.loads(proc.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dlt", help="run the dlt configurations (internal)")
    d.add_argument("--src", required=True)
    d.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.cmd == "dlt":
        print(json.dumps(dlt_child(args.src, args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
