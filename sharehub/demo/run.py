"""``sharehub demo``: sample departments -> directory -> one Airflow DAG run per dataset -> summary."""

from __future__ import annotations

import os
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from catalog import submissions
from catalog.db.engine import engine_for
from catalog.directory.grades import policy_of
from sharehub.settings import get_settings


def _configure_sources(scale: float, console: Console) -> None:
    from sharehub.demo import generate

    s = get_settings()
    out = (s.var_dir / "demo" / "sources").resolve()
    with console.status(f"generating the sample departments' data under {out} ..."):
        refs = generate(out, scale=scale)
    for ref, location in refs.items():
        # the Airflow task processes inherit the environment
        os.environ.setdefault(f"SHAREHUB_CONNECTIONS__{ref.upper()}", location)
    get_settings.cache_clear()
    console.print(f"sample data: {', '.join(sorted(refs))} under {out}")


def _publish(console: Console) -> list[str]:
    from catalog.directory.loader import directory_files
    from sharehub.demo import DIRECTORY_DIR

    engine = engine_for(get_settings().hub_db_url)
    codes: list[str] = []
    for f in directory_files(DIRECTORY_DIR):
        for change in submissions.publish_directly(
            engine, f, by="cli:demo", policy=policy_of(get_settings())
        ):
            codes.append(change.code)
            console.print(f"directory {f.name}: {change.code} v{change.version} {change.action}")
    return codes


def _summary(codes: list[str], results: dict[str, dict[str, Any]], console: Console) -> bool:
    from catalog.directory import store
    from catalog.runs import record as runs
    from sharehub.pipeline.reports import quarantine_rows

    s = get_settings()
    engine = engine_for(s.hub_db_url)
    t = Table(
        "dataset",
        "department",
        "read",
        "published",
        "quarantined",
        "pass rate",
        "snapshot id",
        "seconds",
        "status",
        title="sharehub demo: one sync run per dataset",
    )
    ok = True
    for code in codes:
        ds = store.get_dataset(engine, code)
        run_id = results.get(code, {}).get("run_id")
        try:
            run = runs.get_run(engine, run_id) if run_id else None
        except KeyError:
            run = None
        if run is None:
            ok = False
            t.add_row(code, ds.department.name, "-", "-", "-", "-", "-", "-", "failed")
            continue
        ok = ok and run["status"] == "success"
        t.add_row(
            f"{code} {ds.spec.name}",
            ds.department.name,
            str(run["rows_read"]),
            str(run["rows_published"]),
            str(run["rows_quarantined"]),
            f"{run['pass_rate']:.2%}" if run["pass_rate"] is not None else "-",
            str(run["snapshot_id"] or "-"),
            f"{results[code]['seconds']:.1f}",
            run["status"],
        )
    console.print(t)
    for code in codes:
        run_id = results.get(code, {}).get("run_id")
        if not run_id:
            continue
        bad = quarantine_rows(code, run_id)
        if bad:
            console.print(f"[bold]{code}[/bold]: {len(bad)} row(s) quarantined, e.g.")
            for r in bad[:3]:
                console.print(
                    f"  {r['source']} row {r['row']}: " + "; ".join(x["message"] for x in r["reasons"]),
                    markup=False,
                )
        err = results[code].get("error")
        if err:
            console.print(f"[red]{code}: {err}[/red]")
    console.print(
        f"quality reports: {s.reports_dir}/<code>.html   runs: `sharehub runs`   "
        f"correction lists: `sharehub quarantine CODE`"
    )
    return ok


def run_demo(*, scale: float = 1.0, in_process: bool = False, console: Console | None = None) -> bool:
    """Run the whole demo pipeline; True when every dataset published."""
    console = console or Console()
    t_all = time.perf_counter()
    _configure_sources(scale, console)
    codes = _publish(console)
    results: dict[str, dict[str, Any]] = {}
    if not in_process:
        from sharehub.airflow.env import ensure_airflow_db

        with console.status("preparing the Airflow metadata DB (first time: about a minute) ..."):
            ensure_airflow_db()
    for i, code in enumerate(codes, 1):
        t0 = time.perf_counter()
        label = f"[{i}/{len(codes)}] {code}"
        with console.status(
            f"{label}: {'sync' if in_process else 'Airflow DAG run'} "
            "(extract+land -> validate -> publish) ..."
        ):
            results[code] = _run_one(code, in_process)
        results[code]["seconds"] = time.perf_counter() - t0
        state = "ok" if not results[code].get("error") else "FAILED"
        console.print(f"{label}: {state} in {results[code]['seconds']:.1f}s")
    ok = _summary(codes, results, console)
    console.print(f"pipeline finished in {time.perf_counter() - t_all:.0f}s")
    if ok:
        _access(console, in_process)
    return ok


def _access(console: Console, in_process: bool) -> None:
    """Register the sample apps, make their applications, print calls that work."""
    from sharehub.demo.access import APPROVER, curl_lines, setup_access

    s = get_settings()
    engine = engine_for(s.hub_db_url)
    access = setup_access(engine, s)
    console.print("\n[bold]access control[/bold]: two service apps and their applications")
    for name, (cid, _secret) in access.credentials.items():
        console.print(f"  app {name}: client_id {cid} (secret below, shown once)")
    for a in access.applications:
        console.print(
            f"  application {a['id']}: {a['app_id']} -> {a['dataset_code']}: {a['status']} "
            f"(decided by {a['decided_by']}, deadline {a['deadline']})"
        )
    console.print(
        f"\n[bold]try it[/bold] (serve first: `make demo` does; tokens live {s.token_ttl_seconds}s):"
    )
    base = f"http://{s.api_host}:{s.api_port}"
    for line in curl_lines(access, base):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    _bulk(console, engine, s, access.credentials["企业开办"][0], base, in_process)
    console.print(f"\n[bold]portal[/bold]: {base}/portal/ (passwords are new on every run)")
    accounts = {APPROVER: (access.approver_password, "公安局审批员: decides applications for police data")}
    accounts.update(access.portal)
    for username, (password, what) in accounts.items():
        console.print(f"  {username} / {password}  — {what}", markup=False, highlight=False)


def _bulk(console: Console, engine: Any, s: Any, app_id: str, base: str, in_process: bool) -> None:
    """A Delta Sharing recipient profile and a subscription for 企业开办, and how to read them
    (docs/exchange.md)."""
    from sharehub.demo import exchange

    path = exchange.issue_profile(engine, s, app_id, base)
    console.print(
        f"\n[bold]bulk sharing[/bold] (Delta Sharing): a recipient profile for 企业开办 is in {path}; "
        "read the granted table with the official client (pip install delta-sharing):"
    )
    console.print(
        '  python3 -c "import delta_sharing as d; '
        f"print(d.load_as_pandas('{path}#sharehub.fy.fy-sxbzxr-001'))\"",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    with console.status(
        "subscription: delivering the dishonest-debtor list into 企业开办's own database ..."
    ):
        sub = exchange.subscribe(engine, s, app_id, in_process=in_process)
    d = sub.delivery
    counts = f"{d['inserted']} inserted, {d['updated']} updated, {d['deleted']} deleted"
    console.print(
        f"\n[bold]subscription[/bold] {sub.id} (订阅): the list is delivered into 企业开办's own "
        f"database {sub.database}, table {sub.table} ({d['status']}: {counts}); in production Airflow "
        "delivers again whenever the court publishes. Read it:"
    )
    console.print(
        f"  python3 -c \"import sqlite3; print(sqlite3.connect('{sub.database}')"
        f".execute('SELECT case_no, debtor_name, id_or_uscc FROM {sub.table} LIMIT 3').fetchall())\"",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"  sharehub subscriptions history {sub.id}    (and /portal/subscriptions for both departments)",
        markup=False,
        highlight=False,
    )


def _run_one(code: str, in_process: bool) -> dict[str, Any]:
    if in_process:
        from sharehub import pipeline

        run_id = pipeline.new_run_id("demo")
        try:
            pipeline.sync(code, full=True, run_id=run_id)
        except Exception as exc:
            return {"run_id": run_id, "error": str(exc)}
        return {"run_id": run_id}
    from sharehub.airflow.env import run_dag

    res = run_dag(code, full=True)
    out: dict[str, Any] = {"run_id": res.run_id}
    if res.state != "success":
        out["error"] = f"DAG run {res.state}; log: {res.log_path}"
    return out
