"""B8: the portal's directory search and audit pages on a big hub, against ``/api/v1/ping``.

A hub on the local PostgreSQL with 5,000 datasets (40 departments) and 1,000,000 audit records
(a valid hash chain, spread over 60 days, written with COPY) is served by uvicorn
(``sharehub.serve:create_app``: the API and the portal) in a subprocess; a separate load
process keeps N keep-alive connections busy on one scenario at a time
(:mod:`benchmarks.access_api`'s load client) and records every latency:

* ``ping`` — ``/api/v1/ping``, the baseline: no DB, no auth, not audited;
* ``search`` — the public directory search ``/portal/?q=…`` (several terms);
* ``facets`` — a signed-in search with two facets;
* ``audit_dept`` — ``/portal/audit`` as a department's auditor (its datasets' records);
* ``audit_all`` — ``/portal/audit`` as a hub-wide auditor.

Every portal request is itself audited (written to the chain), as in production. Target: p95
≤ 300 ms at 8 clients for each portal page. ``--quick``: 200 datasets, 20,000 records, 2 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.access_api import (  # noqa: E402
    CLEAN_EXIT,
    Scenario,
    _create_pg_database,
    free_port,
    percentile,
    run_load,
    start_server,
    stop_server,
    wait_healthy,
)

FULL = {"datasets": 5_000, "departments": 40, "audit": 1_000_000, "seconds": 10.0}
QUICK = {"datasets": 200, "departments": 8, "audit": 20_000, "seconds": 2.0}
TARGET_P95_MS = 300.0
PASSWORD = "bench passphrase 2026"
WORDS = ["企业", "登记", "社保", "户籍", "不动产", "公积金", "税务", "医保", "教育", "交通", "环保", "住建"]


def _spec(code: str, i: int) -> dict[str, Any]:
    rnd = random.Random(i)
    share = rnd.choice(["unconditional", "conditional", "conditional", "none"])
    topic = rnd.choice(WORDS)
    return {
        "code": code,
        "name": f"{topic}信息资源{i}",
        "summary": f"{topic}相关的共享数据，第 {i} 号",
        "category": rnd.choice(["市场监管", "人力社保", "公安", "自然资源", "卫生健康"]),
        "share": {
            "type": share,
            "condition": "依法履职需要" if share == "conditional" else "",
            "legal_basis": "《数据安全法》" if share == "none" else "",
        },
        "open": {"open": share == "unconditional" and i % 3 == 0},
        "update_cycle": rnd.choice(["daily", "weekly", "monthly"]),
        "primary_key": ["id"],
        "fields": [
            {"name": "id", "label": "编号"},
            {"name": "name", "label": f"{topic}名称"},
            {"name": "amount", "label": "金额", "type": "float"},
        ],
        "source": {"kind": "sql", "connection": "x", "table": "t"},
    }


def seed(url: str, n_datasets: int, n_depts: int, n_audit: int) -> dict[str, Any]:
    """The directory and the audit log, written in bulk; returns timings and what to ask for."""
    import psycopg
    import sqlalchemy as sa

    from catalog.access import staff
    from catalog.audit.chain import GENESIS, AuditRecord, record_hash
    from catalog.db import migrate, tables
    from catalog.db.engine import engine_for
    from catalog.directory.model import DatasetSpec, dump_dataset

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    migrate.upgrade(url)
    engine = engine_for(url)
    now = dt.datetime.now(dt.UTC)
    depts = [f"D{d:03d}" for d in range(n_depts)]
    codes = []
    with engine.begin() as conn:
        conn.execute(
            tables.departments.insert(),
            [
                {"code": d, "name": f"第{d[1:]}局", "credit_code": None, "contact": "", "updated_at": now}
                for d in depts
            ],
        )
        rows, versions = [], []
        for i in range(n_datasets):
            dept = depts[i % n_depts]
            code = f"{dept}-{i:05d}"
            codes.append(code)
            doc = dump_dataset(DatasetSpec.model_validate(_spec(code, i)))
            rows.append(
                {
                    "code": code, "department_code": dept, "name": doc["name"],
                    "share_type": doc["share"]["type"], "open": doc["open"]["open"], "grade": doc["grade"],
                    "schedule": doc.get("schedule"),
                    "version": 1, "spec": doc, "published_at": now,
                }
            )  # fmt: skip
            versions.append(
                {
                    "code": code,
                    "version": 1,
                    "spec": doc,
                    "spec_sha256": "0" * 64,
                    "source_file": "bench",
                    "published_at": now,
                }
            )
        conn.execute(tables.datasets.insert(), rows)
        conn.execute(tables.dataset_versions.insert(), versions)
    timings["directory_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    apps = [f"app-{a:012x}" for a in range(50)]
    cols = ["seq", "at", "request_id", "actor_kind", "app_id", "staff", "end_user", "case_number", "method",
            "path", "action", "dataset_code", "datasets", "certificate_id", "subject", "query", "fields",
            "decision", "reason", "status", "row_count", "prev_hash", "hash"]  # fmt: skip
    rnd = random.Random(7)
    prev = GENESIS
    start = now - dt.timedelta(days=60)
    step = dt.timedelta(days=60) / max(n_audit, 1)
    dsql = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    with dsql, dsql.cursor() as cur, cur.copy(f"COPY hub_audit ({', '.join(cols)}) FROM STDIN") as copy:
        for seq in range(1, n_audit + 1):
            code = codes[rnd.randrange(len(codes))]
            allow = rnd.random() < 0.95
            rec = AuditRecord(
                at=start + step * seq,
                request_id=f"{seq:032x}",
                actor_kind="app",
                method="GET",
                path=f"/api/v1/datasets/{code}/records",
                action="records.lookup",
                decision="allow" if allow else "deny",
                status=200 if allow else 403,
                row_count=1 if allow else 0,
                app_id=apps[rnd.randrange(len(apps))],
                end_user=f"officer-{rnd.randrange(500):03d}",
                case_number=f"CASE-2026-{rnd.randrange(10**6):06d}",
                dataset_code=code,
                fields=[f"{code}.id", f"{code}.name"] if allow else None,
                reason=None if allow else "no_grant",
            )
            digest = record_hash(prev, seq, rec)
            row = {n: getattr(rec, n) for n in cols if n not in ("seq", "prev_hash", "hash")}
            row["fields"] = json.dumps(rec.fields) if rec.fields is not None else None
            copy.write_row(
                [
                    seq if n == "seq" else prev if n == "prev_hash" else digest if n == "hash" else row[n]
                    for n in cols
                ]
            )
            prev = digest
    dsql.close()
    with engine.begin() as conn:
        conn.execute(sa.delete(tables.audit_head))
        conn.execute(tables.audit_head.insert().values(id=1, seq=n_audit, hash=prev))
        conn.execute(sa.text("ANALYZE hub_audit"))
    timings["audit_s"] = time.perf_counter() - t0
    staff.create_staff(engine, "bench_dept_auditor", depts[7 % n_depts], ["auditor"], PASSWORD)
    staff.create_staff(engine, "bench_hub_auditor", None, ["auditor"], PASSWORD)
    staff.create_staff(engine, "bench_publisher", depts[3 % n_depts], ["publisher"], PASSWORD)
    engine.dispose()
    return {"timings": timings, "departments": depts}


def _sign_in(base: str, username: str) -> str:
    """A session cookie, through the sign-in form as a browser would get it."""
    jar = urllib.request.HTTPCookieProcessor()
    opener = urllib.request.build_opener(jar)
    html = opener.open(f"{base}/portal/login", timeout=30).read().decode()
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the sign-in form"
    form = urllib.parse.urlencode({"username": username, "password": PASSWORD, "csrf_token": match.group(1)})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(jar, NoRedirect())
    try:
        opener.open(f"{base}/portal/login", form.encode(), timeout=30)
    except urllib.error.HTTPError as exc:
        if exc.code != 303:
            raise
    for cookie in jar.cookiejar:
        if cookie.name == "sharehub_session":
            return f"sharehub_session={cookie.value}"
    raise RuntimeError(f"sign-in as {username} gave no session")


def summary(loads: list[dict[str, Any]]) -> dict[str, Any]:
    lat = sorted(x / 1000.0 for o in loads for x in o["latencies_us"])
    elapsed = sum(o["elapsed_s"] for o in loads)
    errors = sum(sum(o["errors"].values()) for o in loads)
    statuses: dict[str, int] = {}
    for o in loads:
        for k, v in o["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    return {
        "requests": len(lat),
        "req_per_s": round(len(lat) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(percentile(lat, 0.50), 1),
        "p95_ms": round(percentile(lat, 0.95), 1),
        "p99_ms": round(percentile(lat, 0.99), 1),
        "errors": errors,
        "statuses": statuses,
    }


def run(
    *, quick: bool = False, clients: int = 8, seconds: float | None = None, rounds: int = 1
) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    secs = float(seconds or sizes["seconds"])
    url, drop = _create_pg_database()
    failures: list[str] = []
    loads: dict[str, list[dict[str, Any]]] = {}
    try:
        seeded = seed(url, int(sizes["datasets"]), int(sizes["departments"]), int(sizes["audit"]))
        with tempfile.TemporaryDirectory(prefix="sharehub-portalbench-") as tmp_s:
            tmp = Path(tmp_s)
            env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("SHAREHUB_")} | {
                "SHAREHUB_VAR_DIR": str(tmp / "var"),
                "SHAREHUB_DATABASE_URL": url,
                "SHAREHUB_SECRETS_FILE": str(tmp / "none.toml"),
                "SHAREHUB_CONFIG_FILE": str(tmp / "none.toml"),
                "SHAREHUB_PORTAL_SECURE_COOKIES": "false",  # plain HTTP on loopback
            }
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            proc = start_server(env, port, 1, tmp / "uvicorn.log")
            try:
                wait_healthy(proc, base, 1)
                dept = {"Cookie": _sign_in(base, "bench_dept_auditor")}
                hub_wide = {"Cookie": _sign_in(base, "bench_hub_auditor")}
                publisher = {"Cookie": _sign_in(base, "bench_publisher")}
                d = seeded["departments"]
                terms = [urllib.parse.quote(w) for w in WORDS]
                scenarios = [
                    Scenario("ping", ["/api/v1/ping"], {}, audited=False),
                    Scenario("search", [f"/portal/?q={t}" for t in terms], {}, audited=True),
                    Scenario(
                        "facets",
                        [f"/portal/?department={x}&share_type=conditional&sort=fresh" for x in d[:10]],
                        publisher,
                        audited=True,
                    ),
                    Scenario("audit_dept", ["/portal/audit"], dept, audited=True),
                    Scenario("audit_all", ["/portal/audit"], hub_wide, audited=True),
                ]
                for _ in range(rounds):
                    for sc in scenarios:
                        out = run_load(sc, port, clients, secs, "raw", proc.pid, tmp)
                        loads.setdefault(sc.name, []).append(out)
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
            finally:
                rc = stop_server(proc)
                if rc not in CLEAN_EXIT:
                    failures.append(f"server exit code {rc}")
                log = (tmp / "uvicorn.log").read_text(encoding="utf-8", errors="replace")
    finally:
        drop()
    results = {name: summary(runs) for name, runs in loads.items()}
    for name, r in results.items():
        if r["errors"] or set(r["statuses"]) - {"200"}:
            failures.append(f"{name}: errors {r['errors']}, statuses {r['statuses']}")
    return {
        "results": results,
        "sizes": {**sizes, "seconds": secs, "clients": clients, "rounds": rounds},
        "setup_s": {k: round(v, 1) for k, v in seeded["timings"].items()} if loads else {},
        "failures": failures,
        "server_log_tail": log.splitlines()[-20:] if failures else [],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args(argv)
    out = run(quick=args.quick, clients=args.clients, seconds=args.seconds, rounds=args.rounds)
    print(f"{'scenario':<11} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for name, r in out["results"].items():
        figures = f"{r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['p99_ms']:>8.1f}"
        print(f"{name:<11} {r['requests']:>9} {r['req_per_s']:>8.1f} {figures}")
    print(json.dumps({k: v for k, v in out.items() if k != "results"}, ensure_ascii=False, indent=1))
    return 1 if out["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
