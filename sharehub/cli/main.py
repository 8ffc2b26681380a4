"""The ``sharehub`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from sharehub.cli import access, airflow, anomalies, audit, backup, db, lake, objections, sharing
from sharehub.cli.common import console, err
from sharehub.cli.common import dump as _dump
from sharehub.cli.common import engine as _engine
from sharehub.settings import get_settings

app = typer.Typer(help="sharehub: government data exchange and sharing hub", no_args_is_help=True)
catalog_app = typer.Typer(help="the data directory (数据目录)", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(access.apps_app, name="apps")
app.add_typer(access.staff_app, name="staff")
app.add_typer(access.applications_app, name="applications")
app.add_typer(access.grants_app, name="grants")
app.add_typer(access.keys_app, name="keys")
app.add_typer(objections.app, name="objections")
app.add_typer(audit.app, name="audit")
app.add_typer(anomalies.app, name="anomalies")
app.add_typer(sharing.app, name="sharing")
app.add_typer(sharing.subscriptions_app, name="subscriptions")
app.add_typer(lake.app, name="lake")
app.add_typer(db.app, name="db")
app.add_typer(airflow.app, name="airflow")
app.command("backup")(backup.backup)
app.command("restore")(backup.restore)


# ---- catalog ------------------------------------------------------------------------------


@catalog_app.command("publish")
def catalog_publish(
    path: Annotated[Path, typer.Argument(help="a directory YAML file or a folder of them")],
    by: Annotated[str | None, typer.Option(help="who publishes (default: cli:<login name>)")] = None,
) -> None:
    """Validate and publish department directory files at once (a changed dataset gets a new
    version); recorded in the review history as approved by the operator."""
    from catalog.directory.grades import policy_of
    from catalog.directory.loader import DirectoryFileError, directory_files
    from catalog.submissions import list_submissions, publish_directly
    from sharehub.cli.common import operator as _operator

    files = directory_files(path)
    if not files:
        err.print(f"[red]no directory files at {path}[/red]")
        raise typer.Exit(2)
    engine = _engine()
    failed = False
    for f in files:
        try:
            changes = publish_directly(engine, f, by=by or _operator(), policy=policy_of(get_settings()))
        except DirectoryFileError as exc:
            failed = True
            for p in exc.problems:
                err.print(f"[red]error[/red] {escape(str(p))}", soft_wrap=True, highlight=False)
            continue
        except ValueError as exc:
            failed = True
            err.print(f"[red]error[/red] {exc}")
            continue
        for c in changes:
            console.print(f"{f.name}: {c.code} v{c.version} {c.action}")
        dept = _department_of(engine, changes)
        for pending in list_submissions(engine, department_code=dept, status="pending") if dept else []:
            err.print(
                f"[yellow]note[/yellow] submission {pending.id} of {dept} is still pending review: it was "
                "made against the directory before this publish; approving it publishes its text as it is",
                highlight=False,
            )
    if failed:
        raise typer.Exit(1)


def _department_of(engine: Any, changes: list[Any]) -> str | None:
    from catalog.directory import store

    for c in changes:
        try:
            return store.get_dataset(engine, c.code).department.code
        except KeyError:
            continue
    return None


@catalog_app.command("submissions")
def catalog_submissions(
    department: Annotated[str | None, typer.Option("--department", "-d")] = None,
    status: Annotated[str | None, typer.Option(help="pending|publishing|approved|returned|withdrawn")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The review history of directory files (目录审核), newest first."""
    from catalog.submissions import list_submissions

    items = list_submissions(_engine(), department_code=department, status=status)
    if as_json:
        _dump(
            [
                {k: v for k, v in vars(x).items() if k != "content"} | {"lines": x.content.count("\n") + 1}
                for x in items
            ]
        )
        return
    t = Table(
        "id", "department", "file", "status", "submitted by", "submitted", "decided by", "reason / changes"
    )
    for x in items:
        detail = x.reason or ""
        if x.changes:
            detail = ", ".join(f"{c['code']} v{c['version']} {c['action']}" for c in x.changes)
        t.add_row(
            str(x.id),
            x.department_code,
            x.source_name,
            x.status,
            x.submitted_by,
            x.submitted_at.strftime("%Y-%m-%d %H:%M"),
            x.decided_by or "",
            detail,
        )
    console.print(t)


_REVIEWER_HELP = "the reviewer's staff account: a hub-wide admin, not the submitter"


def _reviewer(username: str) -> Any:
    from catalog.access import staff
    from catalog.errors import HubError
    from sharehub.cli.common import fail as _fail

    user = staff.get_staff(_engine(), username)
    if user is None:
        raise _fail(HubError("staff_not_found", username=username))
    return user


@catalog_app.command("approve")
def catalog_approve(
    submission_id: int,
    staff_user: Annotated[str, typer.Option("--by", "--as", help=_REVIEWER_HELP)],
) -> None:
    """Approve a directory submission: it is published at once."""
    from catalog import submissions
    from catalog.directory.grades import policy_of
    from catalog.errors import HubError
    from sharehub.cli.common import fail as _fail

    try:
        x = submissions.approve(
            _engine(), submission_id, by=_reviewer(staff_user), policy=policy_of(get_settings())
        )
    except HubError as exc:
        raise _fail(exc) from None
    for c in x.changes or []:
        console.print(f"submission {x.id}: {c['code']} v{c['version']} {c['action']}")


@catalog_app.command("return")
def catalog_return(
    submission_id: int,
    staff_user: Annotated[str, typer.Option("--by", "--as", help=_REVIEWER_HELP)],
    reason: Annotated[str, typer.Option(help="why (the department sees it)")],
) -> None:
    """Return a directory submission to its department with a reason."""
    from catalog import submissions
    from catalog.errors import HubError
    from sharehub.cli.common import fail as _fail

    try:
        x = submissions.return_submission(_engine(), submission_id, by=_reviewer(staff_user), reason=reason)
    except HubError as exc:
        raise _fail(exc) from None
    console.print(f"submission {x.id}: {x.status}")


@catalog_app.command("list")
def catalog_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List published datasets."""
    from catalog.directory import store

    items = store.list_datasets(_engine())
    rows = [
        {
            "code": d.spec.code,
            "name": d.spec.name,
            "department": d.department.name,
            "share_type": d.spec.share.type.value,
            "open": d.spec.open.open,
            "grade": d.spec.grade.value,
            "version": d.version,
            "schedule": d.spec.schedule,
        }
        for d in items
    ]
    if as_json:
        _dump(rows)
        return
    t = Table("code", "name", "department", "share", "open", "grade", "ver", "schedule")
    for r in rows:
        t.add_row(
            str(r["code"]),
            str(r["name"]),
            str(r["department"]),
            str(r["share_type"]),
            str(r["open"]),
            str(r["grade"]),
            str(r["version"]),
            str(r["schedule"]),
        )
    console.print(t)


@catalog_app.command("show")
def catalog_show(code: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show one dataset's directory entry."""
    from catalog.directory import store

    try:
        d = store.get_dataset(_engine(), code)
    except KeyError as exc:
        err.print(f"[red]{exc.args[0]}[/red]")
        raise typer.Exit(1) from None
    doc = {
        "department": d.department.model_dump(mode="json"),
        "version": d.version,
        "published_at": d.published_at,
        **d.spec.model_dump(mode="json", exclude_none=True),
    }
    if as_json:
        _dump(doc)
        return
    s = d.spec
    console.print(f"[bold]{s.name}[/bold] ({s.code}) v{d.version} — {d.department.name}")
    console.print(
        f"share: {s.share.type.value} {s.share.condition}  open: {s.open.open}  grade: {s.grade.value}"
    )
    console.print(
        f"primary key: {', '.join(s.primary_key)}  subject: {s.subject.field if s.subject else '-'}"
    )
    t = Table("field", "label", "type", "sensitivity", "rules")
    for f in s.fields:
        rules = ", ".join(
            k for k, v in f.rules.model_dump(exclude_none=True).items() if v not in (False, None)
        )
        t.add_row(f.name, f.label, f.type, f.sensitivity.value, rules)
    console.print(t)


@catalog_app.command("history")
def catalog_history(code: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show every version of a dataset with what changed."""
    from catalog.directory import store

    try:
        entries = store.history(_engine(), code)
    except KeyError as exc:
        err.print(f"[red]{exc.args[0]}[/red]")
        raise typer.Exit(1) from None
    if as_json:
        _dump([e.__dict__ for e in entries])
        return
    for e in entries:
        console.print(f"[bold]v{e.version}[/bold] {e.published_at:%Y-%m-%d %H:%M:%S} from {e.source_file}")
        for c in e.changes:
            console.print(f"  {c}", markup=False)


# ---- runs ---------------------------------------------------------------------------------


@app.command()
def sync(
    code: str, full: Annotated[bool, typer.Option("--full", help="force a full resync")] = False
) -> None:
    """Run one dataset's sync in-process (the same code path as its DAG's tasks)."""
    from connectors.base import ConnectorError
    from lake.errors import LakeError
    from sharehub import pipeline
    from sharehub.hub import SyncError

    try:
        out = pipeline.sync(code, full=full)
    except KeyError as exc:
        err.print(f"[red]{escape(str(exc.args[0]))}[/red]")
        raise typer.Exit(1) from None
    except (SyncError, ConnectorError, LakeError) as exc:
        # the run record holds the same error (sharehub runs); no traceback for a source problem
        err.print(f"[red]{escape(code)}: sync failed: {escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    _dump(out)


def run_rows(limit: int, dataset: str | None = None) -> list[dict[str, Any]]:
    """Recent runs as JSON-able dicts (newest first); runs that died are reaped first."""
    from catalog.runs import lease
    from catalog.runs import record as runs

    lease.reap(_engine(), dataset)
    out = []
    for r in runs.recent_runs(_engine(), limit=limit, dataset_code=dataset):
        dur = r["finished_at"] - r["started_at"] if r["finished_at"] else None
        out.append(
            {
                "run_id": r["run_id"],
                "dataset": r["dataset_code"],
                "status": r["status"],
                "stage": r["stage"],
                "attempts": r.get("attempts") or {},
                "full": r["full"],
                "trigger": r["trigger"],
                "started_at": r["started_at"].isoformat(),
                "duration_s": round(dur.total_seconds(), 2) if dur else None,
                "rows_read": r["rows_read"],
                "rows_published": r["rows_published"],
                "rows_quarantined": r["rows_quarantined"],
                "pass_rate": r["pass_rate"],
                "snapshot_id": r["snapshot_id"],
                "error": r["error"],
                "drift": r["drift"],
                "files": r["files"],  # name, checksum, rows and how each was read (encoding, header line…)
            }
        )
    return out


@app.command("runs")
def runs_cmd(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    limit: Annotated[int, typer.Option(help="how many")] = 20,
    dataset: Annotated[str | None, typer.Option(help="only this dataset")] = None,
) -> None:
    """Recent sync runs with counts, status and snapshot."""
    rows = run_rows(limit, dataset)
    if as_json:
        _dump(rows)
        return
    t = Table(
        "dataset",
        "status",
        "read",
        "published",
        "quarantined",
        "pass",
        "snapshot",
        "seconds",
        "run id",
        "error",
    )
    for r in rows:
        t.add_row(
            r["dataset"],
            r["status"] if r["status"] in ("success", "running") else f"{r['status']} ({r['stage']})",
            str(r["rows_read"]),
            str(r["rows_published"]),
            str(r["rows_quarantined"]),
            f"{r['pass_rate']:.2%}" if r["pass_rate"] is not None else "-",
            str(r["snapshot_id"] or "-"),
            str(r["duration_s"]),
            r["run_id"],
            (r["error"] or "")[:160],
        )
    console.print(t)


@app.command("cancel-run")
def cancel_run(
    run_id: str,
    reason: Annotated[str, typer.Option(help="why (kept in the run record)")],
) -> None:
    """Give up an unfinished run: it is marked failed and its dataset's lock released, so that
    a new run may start (a run waiting between steps otherwise holds it for run_step_gap_seconds)."""
    from catalog.runs import lease
    from catalog.runs import record as runs

    engine = _engine()
    try:
        run = runs.get_run(engine, run_id)
    except KeyError:
        console.print(f"[red]no run {run_id}[/red]")
        raise typer.Exit(1) from None
    if run["status"] not in lease.UNFINISHED:
        console.print(f"[red]run {run_id} is {run['status']}; only an unfinished run can be cancelled[/red]")
        raise typer.Exit(1)
    runs.fail_run(engine, run_id, run["stage"], f"cancelled by the operator: {reason}")
    with engine.begin() as conn:
        lease.release(conn, run["dataset_code"], run_id)
    console.print(f"run {run_id} cancelled; {run['dataset_code']} may be synced again")


@app.command()
def quarantine(
    code: str,
    run_id: Annotated[str | None, typer.Option("--run", help="one run (default: the latest)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The correction list: a run's quarantined rows with the rule each broke."""
    from sharehub.pipeline.reports import quarantine_rows

    rows = quarantine_rows(code, run_id)
    if as_json:
        _dump(rows)
        return
    t = Table("source", "row", "reasons")
    for r in rows:
        t.add_row(str(r["source"]), str(r["row"]), "; ".join(x["message"] for x in r["reasons"]))
    console.print(t)


@app.command()
def corrections(
    code: str,
    run_id: Annotated[str | None, typer.Option("--run", help="one run (default: every run)")] = None,
    state: Annotated[str | None, typer.Option(help="open|fixed|superseded")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table|csv|xlsx")] = "table",
    out: Annotated[
        Path | None, typer.Option(help="file to write csv/xlsx to (default: stdout for csv)")
    ] = None,
    lang: Annotated[str, typer.Option(help="zh|en column headings")] = "zh",
) -> None:
    """The department's correction list (整改清单): quarantined rows of every run with the rule
    each broke, in the department's own file and row numbers, open or fixed by a later run."""
    import sys

    from catalog import corrections as corr
    from catalog.directory import store

    engine = _engine()
    try:
        spec = store.get_dataset(engine, code).spec
    except KeyError:
        err.print(f"[red]no dataset {code}[/red]")
        raise typer.Exit(2) from None
    rows = corr.correction_list(engine, spec, run_id=run_id, state=state)
    if fmt in ("csv", "xlsx"):
        data = corr.to_csv(rows, lang) if fmt == "csv" else corr.to_xlsx(rows, lang)
        if out is not None:
            out.write_bytes(data)
            console.print(f"{len(rows)} row(s) written to {out}")
        elif fmt == "csv":
            sys.stdout.buffer.write(data)
        else:
            err.print("[red]--format xlsx needs --out FILE[/red]")
            raise typer.Exit(2)
        return
    t = Table("run", "file", "row", "field", "value", "problem", "state")
    for line in corr.export_rows(rows, lang):
        t.add_row(
            str(line[0]), str(line[2]), str(line[3]), str(line[5]), str(line[6]), str(line[8]), str(line[10])
        )
    console.print(t)


policy_app = typer.Typer(
    help="the grade policy (数据分级管控): what each security grade allows", no_args_is_help=True
)
app.add_typer(policy_app, name="policy")


@policy_app.command("show")
def policy_show(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The effective grade policy: the defaults with this hub's `grade_policy` overrides."""
    from catalog.directory.grades import policy_of

    rows = policy_of(get_settings()).table()
    if as_json:
        _dump(rows)
        return
    t = Table("rule", *(f"{r['grade']} ({r['name']})" for r in rows))
    for key in [k for k in rows[0] if k not in ("grade", "name")]:
        t.add_row(key, *("—" if r[key] is None else str(r[key]) for r in rows))
    console.print(t)


# ---- serve / demo -------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    workers: Annotated[int, typer.Option(min=1, help="worker processes")] = 1,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="addresses of the load balancers whose X-Forwarded-For is trusted (client addresses "
            "for the per-address limits)"
        ),
    ] = None,
) -> None:
    """Serve the API (OpenAPI docs at /docs) with the hub's server limits (catalog.api.server)."""
    import uvicorn

    from sharehub.serve import prepare_metrics_dir

    s = get_settings()
    prepare_metrics_dir(s.var_dir, workers)  # /metrics adds up the workers' counters
    uvicorn.run(
        "sharehub.serve:create_app",
        factory=True,
        host=host or s.api_host,
        port=port or s.api_port,
        workers=workers,
        http="sharehub.serve:HttpProtocol",
        limit_concurrency=s.api_limit_concurrency,
        h11_max_incomplete_event_size=s.api_max_header_bytes,
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
    )


@app.command()
def demo(
    no_serve: Annotated[bool, typer.Option("--no-serve", help="stop after the summary")] = False,
    scale: Annotated[float, typer.Option(help="sample data size factor")] = 1.0,
    in_process: Annotated[
        bool, typer.Option("--in-process", help="run syncs in-process, not as DAG runs")
    ] = False,
) -> None:
    """Generate the sample departments, publish their directories, sync each as an Airflow DAG run."""
    from sharehub.demo.run import run_demo

    ok = run_demo(scale=scale, in_process=in_process, console=console)
    if not ok:
        raise typer.Exit(1)
    if not no_serve:
        s = get_settings()
        console.print(
            f"serving on http://{s.api_host}:{s.api_port}: portal at /portal/, API docs at /docs; "
            "Ctrl-C to stop"
        )
        serve(None, None, 1, None)


if __name__ == "__main__":
    app()
