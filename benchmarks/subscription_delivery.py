"""B11: a subscription delivery of 1 % changed rows, against the full copy of the table into the
same target.

Setup: a hub on the embedded SQLite hub DB with a local warehouse, one dataset shared by file
(general grade) whose curated Iceberg table holds 1,000,000 rows (20,000 quick) of six columns,
written directly into the lake; an app granted five of them with one sensitive field masked,
subscribed in ``mirror`` mode into a fresh database on the local PostgreSQL.

Measured, in this process, through :func:`catalog.sharing.subscriptions.deliver`:

* ``full`` — the first delivery: the whole granted, masked table copied into the empty target
  (every row masked and inserted);
* ``change`` — after a new snapshot in which 1 % of the rows changed (0.8 % updated, 0.1 %
  inserted, 0.1 % deleted), the delivery of just that change; three rounds, a new 1 % each,
  median.

Target: ``change / full`` ≤ 0.1. After every delivery the mirror must hold exactly the granted,
masked table: its row count and the sum of one column are checked against the lake.

Usage: ``.venv/bin/python benchmarks/subscription_delivery.py [--quick]``; ``run()`` for
``make bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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
TARGET_RATIO = 0.1
CODE = "SUB-PEOPLE"
SERVER = os.environ.get("SHAREHUB_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
DIRECTORY = {
    "department": {"code": "SUB", "name": "订阅测试局"},
    "datasets": [
        {
            "code": CODE,
            "name": "订阅测试",
            "share": {"type": "conditional", "condition": "统计分析", "mode": "file"},
            "primary_key": ["pid"],
            "fields": [
                {"name": "pid", "label": "编号", "type": "integer"},
                {"name": "name", "label": "姓名", "sensitivity": "sensitive", "mask": "name"},
                {"name": "city", "label": "城市"},
                {"name": "amount", "label": "金额", "type": "integer"},
                {"name": "opened", "label": "开立日期", "type": "date"},
                {"name": "note", "label": "备注"},
            ],
            "source": {"kind": "sql", "connection": "none", "table": "t"},
            "schedule": None,
        }
    ],
}
GRANTED = ["pid", "name", "city", "amount", "opened"]


def _table(pids: list[int], version: dict[int, int], schema: Any) -> Any:
    import datetime as dt

    import pyarrow as pa

    day0 = dt.date(2020, 1, 1)
    return pa.table(
        {
            "pid": pa.array(pids, pa.int64()),
            "name": pa.array([f"张{i}" for i in pids]),
            "city": pa.array([f"城市{i % 97}" for i in pids]),
            "amount": pa.array([i * 7 % 100_000 + version.get(i, 0) for i in pids], pa.int64()),
            "opened": pa.array([day0 + dt.timedelta(days=i % 2000) for i in pids], pa.date32()),
            "note": pa.array(["备注" * 5] * len(pids)),
        }
    ).cast(schema)


def run(*, quick: bool = False, rounds: int = 3, server: str = SERVER) -> dict[str, Any]:
    import random
    import uuid

    import sqlalchemy as sa

    from benchmarks import licence_source
    from catalog import publishing
    from catalog.access import app_registry, applications, staff
    from catalog.access.workdays import Calendar
    from catalog.db import tables
    from catalog.db.engine import engine_for
    from catalog.directory import store
    from catalog.directory.grades import DEFAULT_POLICY
    from catalog.directory.model import DirectoryFile
    from catalog.sharing import subscriptions
    from lake import open_lake
    from sharehub.pipeline.schemas import declared_schema
    from sharehub.settings import Settings

    n = int((QUICK if quick else FULL)["rows"])
    failures: list[str] = []
    db_name = f"sharehub_bench_delivery_{uuid.uuid4().hex[:8]}"
    target_url = licence_source.ensure_database(server, db_name)
    target = sa.create_engine(target_url)
    try:
        with tempfile.TemporaryDirectory(prefix="sharehub-deliverybench-") as tmp_s:
            tmp = Path(tmp_s)
            settings = Settings(var_dir=tmp / "var")
            engine = engine_for(settings.hub_db_url)
            publishing.publish(engine, DirectoryFile.model_validate(DIRECTORY), source_file="sub.yaml")
            schema = declared_schema(store.get_dataset(engine, CODE).spec)
            lake = open_lake(settings.hub_db_url, settings.warehouse, s3=settings.s3_options())
            lake.ensure_table("curated", CODE, schema, key=["pid"])
            pids = list(range(1, n + 1))
            version: dict[int, int] = {}
            lake.overwrite(CODE, _table(pids, version, schema), run_id="bench-0")
            with engine.begin() as conn:
                dept = {"code": "TJJ", "name": "统计局", "credit_code": None, "contact": ""}
                conn.execute(tables.departments.insert().values(**dept, updated_at=_now()))
            app, _secret = app_registry.register_app(engine, "统计分析", "TJJ")
            a = applications.submit(
                engine, app.app_id, CODE, fields=GRANTED, purpose="统计分析", legal_basis="bench",
                calendar=Calendar(), deadline_days=10, default_rate_limit=600,
            )  # fmt: skip
            approver = staff.StaffUser("sub_approver", "SUB", frozenset({"approver"}), "active", 1)
            applications.decide(engine, a.id, approver, approve=True, default_rate_limit=600)
            sub = subscriptions.subscribe(
                engine, app.app_id, CODE, target_ref="bench_db", target_table="people", mode="mirror",
                by="bench", policy=DEFAULT_POLICY,
            )  # fmt: skip

            def deliver() -> tuple[float, dict[str, Any]]:
                t0 = time.perf_counter()
                done = subscriptions.deliver(
                    engine, lake, sub.id, target_url=target_url, policy=DEFAULT_POLICY
                )
                seconds = time.perf_counter() - t0
                with target.connect() as conn:
                    got = conn.execute(sa.text("SELECT count(*), sum(amount) FROM people")).one()
                want = (len(pids), sum(p * 7 % 100_000 + version.get(p, 0) for p in pids))
                if tuple(int(x) for x in got) != want:
                    failures.append(f"mirror holds {tuple(got)}, the lake {want}")
                return seconds, done

            full_s, first = deliver()
            if first["inserted"] != n:
                failures.append(f"the full copy inserted {first['inserted']} rows, not {n}")
            rng = random.Random(11)
            change_runs: list[float] = []
            counts: dict[str, int] = {}
            next_pid = n + 1
            for r in range(1, rounds + 1):
                k = max(1, n // 1000)  # 0.1 %
                gone = set(rng.sample(pids, k))
                pids = [p for p in pids if p not in gone]
                for p in rng.sample(pids, 8 * k):  # 0.8 %
                    version[p] = version.get(p, 0) + r
                pids += list(range(next_pid, next_pid + k))
                next_pid += k
                lake.overwrite(CODE, _table(pids, version, schema), run_id=f"bench-{r}")
                seconds, done = deliver()
                change_runs.append(seconds)
                counts = {key: int(done[key]) for key in ("inserted", "updated", "deleted")}
                if counts != {"inserted": k, "updated": 8 * k, "deleted": k}:
                    failures.append(f"round {r} delivered {counts}, not {k} / {8 * k} / {k}")
    except Exception as exc:
        failures.append(f"{type(exc).__name__}: {exc}"[:2000])
        full_s, change_runs, counts = 0.0, [], {}
    finally:
        target.dispose()
        licence_source.drop_database(server, db_name)
    change_s = statistics.median(change_runs) if change_runs else 0.0
    return {
        "rows": n,
        "full_s": round(full_s, 2),
        "change_s": round(change_s, 3),
        "ratio": round(change_s / full_s, 4) if full_s else None,
        "changed_per_round": counts,
        "runs_s": [round(x, 3) for x in change_runs],
        "failures": failures,
    }


def _now() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    res = run(quick=args.quick)
    print(json.dumps(res, indent=2))
    out = REPO / "benchmarks" / "results" / "subscription_delivery.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    return 1 if res["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
