"""B10: bulk reading of a granted table through Delta Sharing, against reading the same curated
Parquet files directly.

Setup: a hub on the embedded SQLite hub DB with a local warehouse, one dataset shared by file
(general grade) whose curated Iceberg table holds 1,000,000 rows (20,000 quick) of six columns,
written directly into the lake in one commit; an app granted five of them with one sensitive
field masked. The hub's API under uvicorn in a child process; a recipient profile.

Measured, each in a fresh process of the official ``delta-sharing`` client's own virtualenv
(``tests/catalog/sharing/client_venv.py``):

* ``first`` — the client's ``load_as_pandas`` when the hub still has to write the per-grant file
  (informative: once per grant and snapshot);
* ``sharing`` — ``load_as_pandas`` again (the file cached): the steady cost of a bulk read;
* ``direct`` — the same process reading the curated table's own data files with pyarrow
  (``pq.read_table`` of each, to pandas): what reading the lake directly costs.

Target: ``direct / sharing`` ≥ 0.5 (a bulk read through the hub costs at most twice a direct
read). Rows and columns must be the granted ones.

Usage: ``.venv/bin/python benchmarks/bulk_sharing.py [--quick]``; ``run()`` for ``make bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

FULL = {"rows": 1_000_000}
QUICK = {"rows": 20_000}
TARGET_RATIO = 0.5
CODE = "BLK-PEOPLE"
DIRECTORY = {
    "department": {"code": "BLK", "name": "批量测试局"},
    "datasets": [
        {
            "code": CODE,
            "name": "批量共享测试",
            "share": {"type": "conditional", "condition": "统计分析", "mode": "file"},
            "primary_key": ["pid"],
            "fields": [
                {"name": "pid", "label": "编号", "type": "integer"},
                {"name": "name", "label": "姓名", "sensitivity": "sensitive", "mask": "name"},
                {"name": "city", "label": "城市"},
                {"name": "amount", "label": "金额", "type": "integer"},
                {"name": "score", "label": "评分", "type": "decimal(10,1)"},
                {"name": "note", "label": "备注"},
            ],
            "source": {"kind": "sql", "connection": "none", "table": "t"},
            "schedule": None,
        }
    ],
}
GRANTED = ["pid", "name", "city", "amount", "score"]

CLIENT = """
import json, sys, time
import delta_sharing
import pyarrow.parquet as pq
profile, mode = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
if mode == "direct":
    import pandas as pd
    frames = [pq.read_table(p).to_pandas() for p in json.loads(sys.argv[3])]
    df = pd.concat(frames, ignore_index=True)
else:
    df = delta_sharing.load_as_pandas(profile + "#sharehub.blk.blk-people")
print(json.dumps({"s": time.perf_counter() - t0, "rows": len(df), "columns": list(df.columns)}))
"""


def _client(python: Path, *args: str) -> dict[str, Any]:
    out = subprocess.run([str(python), "-c", CLIENT, *args], capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(*, quick: bool = False, rounds: int = 3) -> dict[str, Any]:
    import decimal

    import pyarrow as pa

    from benchmarks.access_api import free_port, start_server, stop_server, wait_healthy
    from catalog import publishing
    from catalog.access import app_registry, applications, staff
    from catalog.access.workdays import Calendar
    from catalog.db.engine import engine_for
    from catalog.directory.model import DirectoryFile
    from catalog.sharing import recipients
    from lake import open_lake
    from sharehub.pipeline.schemas import declared_schema
    from sharehub.settings import Settings
    from tests.catalog.sharing import client_venv

    n = int((QUICK if quick else FULL)["rows"])
    failures: list[str] = []
    why = client_venv.ensure()
    if why:
        return {"failures": [why]}
    with tempfile.TemporaryDirectory(prefix="sharehub-bulkbench-") as tmp_s:
        tmp = Path(tmp_s)
        settings = Settings(var_dir=tmp / "var")
        engine = engine_for(settings.hub_db_url)
        publishing.publish(engine, DirectoryFile.model_validate(DIRECTORY), source_file="blk.yaml")
        from catalog.directory import store

        spec = store.get_dataset(engine, CODE).spec
        t0 = time.perf_counter()
        schema = declared_schema(spec)
        data = pa.table(
            {
                "pid": pa.array(range(1, n + 1), pa.int64()),
                "name": pa.array([f"张{i}" for i in range(1, n + 1)]),
                "city": pa.array([f"城市{i % 97}" for i in range(n)]),
                "amount": pa.array([i * 7 % 100_000 for i in range(n)], pa.int64()),
                "score": pa.array(
                    [decimal.Decimal(i % 1000) / 10 for i in range(n)], schema.field("score").type
                ),
                "note": pa.array(["备注" * 5] * n),
            }
        ).cast(schema)
        lake = open_lake(settings.hub_db_url, settings.warehouse, s3=settings.s3_options())
        lake.ensure_table("curated", CODE, schema, key=["pid"])
        lake.overwrite(CODE, data, run_id="bench")
        plan = lake.load_table("curated", CODE).scan().plan_files()
        files = [t.file.file_path.removeprefix("file://") for t in plan]
        seed_s = time.perf_counter() - t0
        dept = {"code": "TJJ", "name": "统计局"}
        from catalog.db import tables

        with engine.begin() as conn:
            row = {**dept, "credit_code": None, "contact": "", "updated_at": dt_now()}
            conn.execute(tables.departments.insert().values(**row))
        app, _secret = app_registry.register_app(engine, "统计分析", "TJJ")
        a = applications.submit(
            engine, app.app_id, CODE, fields=GRANTED, purpose="统计分析", legal_basis="bench",
            calendar=Calendar(), deadline_days=10, default_rate_limit=600,
        )  # fmt: skip
        approver = staff.StaffUser("blk_approver", "BLK", frozenset({"approver"}), "active", 1)
        applications.decide(engine, a.id, approver, approve=True, default_rate_limit=600)
        token, rec = recipients.issue(engine, app.app_id, days=1, label="bench", by="bench")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHAREHUB_")} | {
            "SHAREHUB_VAR_DIR": str(tmp / "var"),
            "SHAREHUB_SECRETS_FILE": str(tmp / "none.toml"),
            "SHAREHUB_CONFIG_FILE": str(tmp / "none.toml"),
            "SHAREHUB_ANOMALY_SCAN_SECONDS": "0",
        }
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_server(env, port, 1, tmp / "uvicorn.log")
        first: dict[str, Any] = {}
        sharing_runs: list[float] = []
        direct_runs: list[float] = []
        try:
            wait_healthy(proc, base, 1)
            profile = tmp / "bench.share"
            doc = recipients.profile(f"{base}/api/v1/delta-sharing", token, rec.expires_at)
            profile.write_text(json.dumps(doc))
            first = _client(client_venv.PYTHON, str(profile), "sharing")
            for _ in range(rounds):
                got = _client(client_venv.PYTHON, str(profile), "sharing")
                sharing_runs.append(got["s"])
                if got["rows"] != n or got["columns"] != GRANTED:
                    failures.append(f"sharing read {got['rows']} rows, columns {got['columns']}")
                direct = _client(client_venv.PYTHON, str(profile), "direct", json.dumps(files))
                direct_runs.append(direct["s"])
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}"[:2000])
        finally:
            stop_server(proc)
    sharing_s = statistics.median(sharing_runs) if sharing_runs else 0.0
    direct_s = statistics.median(direct_runs) if direct_runs else 0.0
    return {
        "rows": n,
        "seed_s": round(seed_s, 1),
        "first_s": round(first.get("s", 0.0), 2),
        "sharing_s": round(sharing_s, 2),
        "direct_s": round(direct_s, 2),
        "ratio": round(direct_s / sharing_s, 3) if sharing_s else None,
        "runs_s": {
            "sharing": [round(x, 2) for x in sharing_runs],
            "direct": [round(x, 2) for x in direct_runs],
        },
        "failures": failures,
    }


def dt_now() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    res = run(quick=args.quick)
    print(json.dumps(res, indent=2))
    out = REPO / "benchmarks" / "results" / "bulk_sharing.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    return 1 if res["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
