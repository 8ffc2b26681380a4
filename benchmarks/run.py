"""``make bench``: every figure of docs/benchmarks.md side by side with its baseline, in one run.

Prints one table — id, figure, sharehub, baseline, ratio, target, pass/fail — and writes the
same to ``benchmarks/results/latest.json`` with the machine's description. The baselines are
measured in the same run on the same machine, so the ratios hold even though this machine is
shared and its absolute speed varies.

* B1-B4: :mod:`benchmarks.sync_bench` (a generated licence table in the local PostgreSQL,
  synced by child processes into a hub on PostgreSQL + a local warehouse);
* B5-B6: :mod:`benchmarks.access_api` (the access API under uvicorn, load from another process);
* B7: :mod:`benchmarks.dag_parse` (200 generated DAGs parsed by a real DagBag);
* B8: :mod:`benchmarks.portal_pages` (the portal's directory and audit pages with 5,000 datasets
  and 1,000,000 audit records, p95 at 8 clients against ``/api/v1/ping``);
* B9: :mod:`benchmarks.anomaly_scan` (one access-anomaly scan over 1,000,000 audit records
  against one plain pass over the same two weeks; exactly the planted anomalies found);
* B10: :mod:`benchmarks.bulk_sharing` (a 1,000,000-row granted table read with the official
  Delta Sharing client against reading the curated Parquet files directly);
* B11: :mod:`benchmarks.subscription_delivery` (a subscription's delivery of 1 % changed rows of
  a 1,000,000-row table against the full copy into the same PostgreSQL target);
* B12: :mod:`benchmarks.dlt_peer` (sharehub's extract+land of the 1,000,000-row licence table
  against dlt's ``sql_table`` with the connectorx and pyarrow backends to Parquet and Iceberg,
  and against the raw ADBC read of the table).

``--quick`` runs small sizes (10k / 20k rows, 2 s of load, 20 DAGs) and reports no pass/fail:
it is what CI runs so the benchmarks keep working. Sizes can also be set one by one.
Exit status: 0 when every target holds (always 0 with ``--quick`` unless a run fails).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import licence_source, sync_bench  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
SERVER = os.environ.get("SHAREHUB_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
GIB = 1024**3
#: databases the run creates on SERVER: <prefix>_src, _hub, _src_big, _hub_big, _hub_peer
PREFIX = os.environ.get("SHAREHUB_BENCH_DB_PREFIX", "sharehub_bench")


@dataclass
class Row:
    id: str
    figure: str
    sharehub: float | None
    baseline: float | None
    unit: str
    ratio: float | None
    target: str
    passed: bool | None  # None: no target (quick run) or not measured
    note: str = ""


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            models = {line.split(":", 1)[1].strip() for line in f if line.startswith("model name")}
        info["cpu_model"] = ", ".join(sorted(models))
        with open("/proc/meminfo", encoding="utf-8") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / 1024**2, 1)
        info["load_average"] = os.getloadavg()
    except OSError:
        pass
    try:
        import psycopg

        with psycopg.connect(SERVER.replace("postgresql+psycopg://", "postgresql://")) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            info["postgresql"] = row[0] if row else None
    except Exception as exc:  # a description, never a reason to fail
        info["postgresql"] = f"unavailable: {exc}"
    return info


# ---- B1-B4 -----------------------------------------------------------------------------------


def sync_figures(rows: int, big_rows: int, quick: bool, work: Path) -> tuple[list[Row], dict[str, Any]]:
    raw: dict[str, Any] = {"rows": rows, "big_rows": big_rows}
    src = licence_source.ensure_database(SERVER, f"{PREFIX}_src")
    t0 = time.perf_counter()
    raw["source_loaded"] = licence_source.load(src, rows)
    raw["source_load_s"] = time.perf_counter() - t0

    copy_psycopg = sync_bench.copy_baseline(src)
    copy_libpq = sync_bench.copy_baseline_libpq(src)
    copy_s = min(copy_psycopg["seconds"], copy_libpq["seconds"])
    pandas = sync_bench.pandas_baseline(src, work / "pandas.parquet")
    raw["baselines"] = {"copy_psycopg": copy_psycopg, "copy_libpq": copy_libpq, "pandas": pandas}

    licence_source.drop_database(SERVER, f"{PREFIX}_hub")
    hub = licence_source.ensure_database(SERVER, f"{PREFIX}_hub")
    var = work / "hub"
    sync_bench.prepare_hub(var, hub)
    env = sync_bench.hub_env(var, hub, src)
    full = sync_bench.run_child(env, full=True, run_id="bench__full")
    raw["full"] = full
    # the serving table now exists: measure PostgreSQL's own ingest of the same rows beside it
    copy_in = sync_bench.copy_in_limit(src, hub, "srv_scj_yyzz_001")
    raw["baselines"]["copy_in"] = copy_in
    changed = licence_source.change_rows(src)
    try:
        incr = sync_bench.run_child(env, full=False, run_id="bench__incremental")
    finally:
        licence_source.restore_rows(src)
    raw["incremental"] = {**incr, "changed_rows": changed}
    expected_bad = licence_source.bad_row_count(rows)
    if full["quarantined"] != expected_bad or full["rows_read"] != rows:
        raise RuntimeError(
            f"full sync read {full['rows_read']} rows and quarantined {full['quarantined']}; "
            f"the generator made {rows} rows with {expected_bad} bad ones"
        )

    t = full["times"]
    el = t["extract_land"]
    whole = t["extract_land"] + t["validate"] + t["publish"]
    incr_whole = sum(incr["times"][k] for k in ("extract_land", "validate", "publish"))
    check = not quick
    out = [
        Row(
            "B1",
            f"extract+land {rows:,} rows vs COPY binary read (s)",
            round(el, 3),
            round(copy_s, 3),
            "s",
            _ratio(copy_s, el),
            ">= 0.50",
            (copy_s / el >= 0.5) if check else None,
            "ratio = COPY time / sharehub time (= rate ratio)",
        ),
        Row(
            "B1",
            "extract+land vs pandas read_sql + to_parquet (s)",
            round(el, 3),
            round(pandas["seconds"], 3),
            "s",
            _ratio(pandas["seconds"], el),
            ">= 3.0",
            (pandas["seconds"] / el >= 3.0) if check else None,
            "ratio = pandas time / sharehub time",
        ),
        Row(
            "B1",
            "whole full sync (extract, land, validate, curated, serving) vs COPY (s)",
            round(whole, 3),
            round(copy_s, 3),
            "s",
            _ratio(copy_s, whole),
            ">= 0.25",
            (copy_s / whole >= 0.25) if check else None,
            f"validate {t['validate']:.2f} s, publish {t['publish']:.2f} s; "
            f"imports {t['imports']:.2f} s not counted",
        ),
        Row(
            "B1",
            "bound: PostgreSQL's own COPY FROM + primary key of the rows vs whole-run budget (s)",
            round(copy_in["seconds"], 3),
            round(4 * copy_s, 3),
            "s",
            _ratio(copy_in["seconds"], 4 * copy_s),
            "info",
            None,
            f"COPY FROM {copy_in['copy_in_s']:.2f} s + primary key {copy_in['primary_key_s']:.2f} s; "
            "budget = 4 x COPY out (the 25 % target)",
        ),
        Row(
            "B2",
            f"incremental sync after {changed:,} rows changed vs full sync (s)",
            round(incr_whole, 3),
            round(whole, 3),
            "s",
            _ratio(incr_whole, whole),
            "<= 0.10",
            (incr_whole / whole <= 0.10) if check else None,
            f"read {incr['rows_read']:,}, updated {incr['updated']:,}",
        ),
        Row(
            "B4",
            "validation vs extract+land (s)",
            round(t["validate"], 3),
            round(el, 3),
            "s",
            _ratio(t["validate"], el),
            "<= 0.50",
            (t["validate"] / el <= 0.5) if check else None,
        ),
    ]

    # B3: the same sync at big_rows, in its own source and hub databases
    big_src = licence_source.ensure_database(SERVER, f"{PREFIX}_src_big")
    t0 = time.perf_counter()
    raw["big_source_loaded"] = licence_source.load(big_src, big_rows)
    raw["big_source_load_s"] = time.perf_counter() - t0
    licence_source.drop_database(SERVER, f"{PREFIX}_hub_big")
    big_hub = licence_source.ensure_database(SERVER, f"{PREFIX}_hub_big")
    big_var = work / "hub-big"
    sync_bench.prepare_hub(big_var, big_hub)
    big = sync_bench.run_child(sync_bench.hub_env(big_var, big_hub, big_src), full=True, run_id="bench__big")
    raw["big"] = big
    small_rss, big_rss = full["max_rss_bytes"], big["max_rss_bytes"]
    peak = max(small_rss, big_rss)
    out += [
        Row(
            "B3",
            f"peak RSS of a full sync, {big_rows:,} rows (GiB)",
            round(big_rss / GIB, 3),
            round(1.5, 3),
            "GiB",
            _ratio(peak / GIB, 1.5),
            "<= 1.5 GiB",
            (peak <= 1.5 * GIB) if check else None,
            f"{rows:,} rows: {small_rss / GIB:.2f} GiB; per step: {big['peak_rss_after']}",
        ),
        Row(
            "B3",
            f"peak RSS {big_rows:,} rows / {rows:,} rows",
            round(big_rss / GIB, 3),
            round(small_rss / GIB, 3),
            "GiB",
            _ratio(big_rss, small_rss),
            "<= 1.30",
            (big_rss / small_rss <= 1.3) if check else None,
        ),
    ]
    return out, raw


# ---- B5-B6 -----------------------------------------------------------------------------------


def access_figures(quick: bool, seconds: float, clients: int) -> tuple[list[Row], dict[str, Any]]:
    from benchmarks import access_api

    # two rounds: the scenarios alternate, so noise from other work on the machine hits each alike
    res = access_api.run(clients=clients, seconds=seconds, quick=quick, rounds=1 if quick else 2)
    bare, records, verify = res["bare"], res["records"], res["verify"]
    check = not quick
    audit = res["audit"]
    out = [
        Row(
            "B5",
            f"record lookups by subject, {clients} clients (req/s)",
            records["req_per_s"],
            bare["req_per_s"],
            "req/s",
            _ratio(records["req_per_s"], bare["req_per_s"]),
            ">= 0.50",
            (records["req_per_s"] / bare["req_per_s"] >= 0.5) if check and bare["req_per_s"] else None,
        ),
        Row(
            "B5",
            "record lookups p99 latency (ms)",
            records["p99_ms"],
            bare["p99_ms"],
            "ms",
            _ratio(records["p99_ms"], bare["p99_ms"]),
            "<= 50 ms",
            (records["p99_ms"] <= 50.0) if check else None,
        ),
        Row(
            "B5",
            "audit records = audited responses",
            float(audit["new_rows"]),
            float(audit["audited_responses"]),
            "rows",
            _ratio(audit["new_rows"], audit["audited_responses"]),
            "= 1 and chain verifies",
            bool(audit["match"] and audit["verify_ok"]),
        ),
        Row(
            "B6",
            f"certificate verify, {clients} clients (req/s)",
            verify["req_per_s"],
            bare["req_per_s"],
            "req/s",
            _ratio(verify["req_per_s"], bare["req_per_s"]),
            ">= 0.50",
            (verify["req_per_s"] / bare["req_per_s"] >= 0.5) if check and bare["req_per_s"] else None,
        ),
    ]
    return out, res


# ---- B7 --------------------------------------------------------------------------------------


def dag_figures(n: int, quick: bool, work: Path) -> tuple[list[Row], dict[str, Any]]:
    from benchmarks import dag_parse

    specs = dag_parse.synthetic_specs(n)
    build_s = dag_parse.bench_build(specs)
    bag_dir = work / "dags"
    bag_dir.mkdir()
    bag = dag_parse.bench_dagbag(specs, bag_dir)
    file_s = sum(float(s["duration_s"]) for s in bag["file_stats"])  # type: ignore[attr-defined]
    ok = not bag["import_errors"] and bag["dags"] == n
    row = Row(
        "B7",
        f"parse of {n} generated DAGs vs dagbag_import_timeout (s)",
        round(file_s, 3),
        30.0,
        "s",
        _ratio(file_s, 30.0),
        "<= 10 s",
        (file_s <= 10.0 and ok) if not quick else (None if ok else False),
        f"factory {build_s:.2f} s; Airflow import {bag['airflow_import_s']:.2f} s once per parser; "
        f"{bag['dags']} DAGs, {len(bag['import_errors'])} import errors",  # type: ignore[arg-type]
    )
    return [row], {"build_s": build_s, **bag}


# ---- B8 --------------------------------------------------------------------------------------


def portal_figures(quick: bool, seconds: float | None) -> tuple[list[Row], dict[str, Any]]:
    from benchmarks import portal_pages

    res = portal_pages.run(quick=quick, clients=8, seconds=seconds)
    if res["failures"]:
        raise RuntimeError("; ".join(res["failures"]))
    r = res["results"]
    ping = r["ping"]["p95_ms"]
    sizes = res["sizes"]
    out = []
    for name, figure in (
        ("search", "directory search, public"),
        ("facets", "directory with two facets, signed in"),
        ("audit_dept", "audit page, a department's auditor"),
        ("audit_all", "audit page, a hub-wide auditor"),
    ):
        p95 = r[name]["p95_ms"]
        out.append(
            Row(
                "B8",
                f"{figure}: p95 at 8 clients, {sizes['datasets']:,} datasets, "
                f"{sizes['audit']:,} audit records (ms)",
                p95,
                ping,
                "ms",
                _ratio(p95, ping),
                "p95 <= 300 ms",
                (p95 <= portal_pages.TARGET_P95_MS) if not quick else None,
                f"p50 {r[name]['p50_ms']} ms, {r[name]['req_per_s']} req/s; baseline = /api/v1/ping p95",
            )
        )
    return out, res


# ---- B9 --------------------------------------------------------------------------------------


def anomaly_figures(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    from benchmarks import anomaly_scan

    res = anomaly_scan.run(quick=quick)
    if res["failures"]:
        raise RuntimeError("; ".join(res["failures"]))
    row = Row(
        "B9",
        f"access-anomaly scan over {res['records']:,} audit records (ms)",
        res["scan_ms"],
        res["baseline_ms"],
        "ms",
        res["ratio"],
        f"<= {anomaly_scan.TARGET_RATIO:g} x one pass",
        (res["ratio"] is not None and res["ratio"] <= anomaly_scan.TARGET_RATIO) if not quick else None,
        f"found exactly the planted {res['flags']}; baseline = count + distinct subjects over the 14 days",
    )
    return [row], res


# ---- B10 -------------------------------------------------------------------------------------


def sharing_figures(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    from benchmarks import bulk_sharing

    res = bulk_sharing.run(quick=quick)
    if res["failures"]:
        raise RuntimeError("; ".join(res["failures"]))
    row = Row(
        "B10",
        f"bulk read of {res['rows']:,} granted rows via Delta Sharing vs the Parquet files directly (s)",
        res["sharing_s"],
        res["direct_s"],
        "s",
        res["ratio"],
        f">= {bulk_sharing.TARGET_RATIO:g} of direct",
        (res["ratio"] is not None and res["ratio"] >= bulk_sharing.TARGET_RATIO) if not quick else None,
        f"ratio = direct / sharing; first read (writes the per-grant file) {res['first_s']} s",
    )
    return [row], res


# ---- B11 -------------------------------------------------------------------------------------


def delivery_figures(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    from benchmarks import subscription_delivery

    res = subscription_delivery.run(quick=quick, server=SERVER)
    if res["failures"]:
        raise RuntimeError("; ".join(res["failures"]))
    row = Row(
        "B11",
        f"subscription delivery of 1 % changed of {res['rows']:,} rows vs the full copy (s)",
        res["change_s"],
        res["full_s"],
        "s",
        res["ratio"],
        f"<= {subscription_delivery.TARGET_RATIO:g} of the full copy",
        (res["ratio"] is not None and res["ratio"] <= subscription_delivery.TARGET_RATIO)
        if not quick
        else None,
        f"ratio = change / full; per round {res['changed_per_round']}",
    )
    return [row], res


# ---- B12 -------------------------------------------------------------------------------------


def peer_figures(rows: int, quick: bool, work: Path) -> tuple[list[Row], dict[str, Any]]:
    from benchmarks import dlt_peer

    src = licence_source.ensure_database(SERVER, f"{PREFIX}_src")
    licence_source.load(src, rows)
    raw: dict[str, Any] = {"rows": rows, "limit": dlt_peer.raw_read(src)}
    licence_source.drop_database(SERVER, f"{PREFIX}_hub_peer")
    hub = licence_source.ensure_database(SERVER, f"{PREFIX}_hub_peer")
    var = work / "hub-peer"
    sync_bench.prepare_hub(var, hub)
    mine = sync_bench.run_child(
        sync_bench.hub_env(var, hub, src), full=True, run_id="bench__peer", extract_only=True
    )
    raw["sharehub"] = mine
    raw["dlt"] = dlt_peer.run_dlt(src, work / "dlt")
    for got in (raw["limit"]["rows"], mine["rows_read"], *(r["rows"] for r in raw["dlt"])):
        if got != rows:
            raise RuntimeError(f"B12 read {got} rows of {rows}: {raw}")
    el = mine["times"]["extract_land"]
    limit_s = raw["limit"]["seconds"]
    fastest = min(raw["dlt"], key=lambda r: r["seconds"])
    check = not quick
    out = [
        Row(
            "B12",
            f"extract+land {rows:,} rows vs dlt {r['backend']} -> {r['table_format']} (s)",
            round(el, 3),
            round(r["seconds"], 3),
            "s",
            _ratio(r["seconds"], el),
            "> 1.0 (fastest)" if r is fastest else "info",
            (r["seconds"] / el > 1.0) if check and r is fastest else None,
            "ratio = dlt time / sharehub time",
        )
        for r in raw["dlt"]
    ]
    out.append(
        Row(
            "B12",
            f"extract+land {rows:,} rows vs raw ADBC read to Arrow, nothing written (s)",
            round(el, 3),
            round(limit_s, 3),
            "s",
            _ratio(limit_s, el),
            ">= 0.50",
            (limit_s / el >= 0.5) if check else None,
            "ratio = raw read time / sharehub time (= rate ratio)",
        )
    )
    return out, raw


# ---- report ----------------------------------------------------------------------------------


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.1f}"


def print_table(rows: list[Row]) -> None:
    head = (
        f"{'id':<3} {'figure':<74} {'sharehub':>10} {'baseline':>10} {'ratio':>7} "
        f"{'target':>22} {'result':>6}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        verdict = "-" if r.passed is None else ("pass" if r.passed else "FAIL")
        print(
            f"{r.id:<3} {r.figure[:74]:<74} {_fmt(r.sharehub):>10} {_fmt(r.baseline):>10} "
            f"{_fmt(r.ratio):>7} {r.target:>22} {verdict:>6}"
        )
        if r.note:
            print(f"{'':<4}  {r.note}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="small sizes, no targets (what CI runs)")
    ap.add_argument("--rows", type=int, help="B1/B2/B4 table size (default 1,000,000; quick 10,000)")
    ap.add_argument("--big-rows", type=int, help="B3's second size (default 5,000,000; quick 20,000)")
    ap.add_argument("--seconds", type=float, help="load time per access scenario (default 10; quick 2)")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--dags", type=int, help="B7's DAG count (default 200; quick 20)")
    ap.add_argument(
        "--only",
        default="sync,access,dags,portal,anomalies,sharing,delivery,peer",
        help="comma-separated: sync, access, dags, portal, anomalies, sharing, delivery, peer",
    )
    ap.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    ap.add_argument("--drop", action="store_true", help="drop the benchmark databases afterwards")
    args = ap.parse_args(argv)
    quick = args.quick
    rows = args.rows or (10_000 if quick else 1_000_000)
    big_rows = args.big_rows or (20_000 if quick else 5_000_000)
    seconds = args.seconds or (2.0 if quick else 10.0)
    dags = args.dags or (20 if quick else 200)
    parts = {p.strip() for p in args.only.split(",") if p.strip()}

    started = dt.datetime.now(dt.UTC)
    table: list[Row] = []
    raw: dict[str, Any] = {}
    failures: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="sharehub-bench-"))
    try:
        for name, fn in (
            ("sync", lambda: sync_figures(rows, big_rows, quick, work)),
            ("access", lambda: access_figures(quick, seconds, args.clients)),
            ("dags", lambda: dag_figures(dags, quick, work)),
            ("portal", lambda: portal_figures(quick, args.seconds)),
            ("anomalies", lambda: anomaly_figures(quick)),
            ("sharing", lambda: sharing_figures(quick)),
            ("delivery", lambda: delivery_figures(quick)),
            ("peer", lambda: peer_figures(rows, quick, work)),
        ):
            if name not in parts:
                continue
            t0 = time.perf_counter()
            try:
                got, detail = fn()
            except Exception as exc:
                failures.append(f"{name}: {type(exc).__name__}: {exc}")
                print(f"FAIL {name}: {exc}", file=sys.stderr)
                continue
            table += got
            raw[name] = {**detail, "elapsed_s": round(time.perf_counter() - t0, 1)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if args.drop:
            for suffix in ("src", "hub", "src_big", "hub_big", "hub_peer"):
                licence_source.drop_database(SERVER, f"{PREFIX}_{suffix}")

    print_table(table)
    info = machine()
    print(
        f"\nmachine: {info.get('cpus')} CPUs ({info.get('cpu_model', '?')}), "
        f"{info.get('memory_gib', '?')} GiB, "
        f"PostgreSQL {info.get('postgresql')}, Python {info['python']}; "
        f"sizes: {rows:,} / {big_rows:,} rows, {args.clients} clients x {seconds:g} s, {dags} DAGs"
        + ("; QUICK run: no targets" if quick else "")
    )
    result = {
        "started_at": started.isoformat(),
        "quick": quick,
        "machine": info,
        "sizes": {
            "rows": rows,
            "big_rows": big_rows,
            "seconds": seconds,
            "clients": args.clients,
            "dags": dags,
        },
        "table": [asdict(r) for r in table],
        "raw": raw,
        "failures": failures,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(result, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8"
    )
    print(f"written: {args.out}")
    if failures:
        return 2
    return 0 if all(r.passed is not False for r in table) else 1


if __name__ == "__main__":
    raise SystemExit(main())
