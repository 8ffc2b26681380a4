"""``sharehub audit``: check the hash chain of the access log, read it, archive what is past its
retention (日志留存) and check archive files."""

from __future__ import annotations

import datetime as dt
import getpass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from sharehub.cli.common import console, err
from sharehub.cli.common import dump as _dump
from sharehub.cli.common import engine as _engine

app = typer.Typer(help="the tamper-evident access log (审计日志)", no_args_is_help=True)


def _parse_time(value: str | None, option: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not an ISO date or time: {value!r}", param_hint=option) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@app.command("verify")
def verify_cmd(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    batch: Annotated[int, typer.Option(min=1, help="records read per query")] = 10_000,
) -> None:
    """Check every record's hash and link; exit 1 naming each changed, removed or reordered record."""
    from catalog import audit

    report = audit.verify(_engine(), batch=batch)
    if as_json:
        _dump(
            {
                "ok": report.ok,
                "checked": report.checked,
                "problems": report.problems,
                "last_seq": report.last_seq,
                "last_hash": report.last_hash,
                "archived": report.archived,
                "archives": report.archives,
            }
        )
    elif report.ok:
        console.print(f"audit log intact: {report.checked} records", highlight=False)
        if report.archives:
            console.print(
                f"before them: {report.archived} records in {report.archives} archive(s), a continuous "
                "chain from genesis (check their files with `sharehub audit verify-archive`)",
                highlight=False,
            )
        console.print(f"head: seq {report.last_seq} hash {report.last_hash}", highlight=False)
    else:
        console.print(
            f"audit log damaged: {len(report.problems)} problem(s) in {report.checked} records",
            style="red",
            highlight=False,
        )
        for p in report.problems:
            console.print(f"  {p}", markup=False, highlight=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(1)


@app.command("list")
def list_cmd(
    app_id: Annotated[str | None, typer.Option("--app", help="only this app")] = None,
    dataset: Annotated[list[str] | None, typer.Option(help="only this dataset (repeatable)")] = None,
    since: Annotated[
        str | None, typer.Option(help="from this ISO time (UTC if no offset), inclusive")
    ] = None,
    until: Annotated[str | None, typer.Option(help="before this ISO time, exclusive")] = None,
    decision: Annotated[str | None, typer.Option(help="allow or deny")] = None,
    after: Annotated[int | None, typer.Option(help="only records after this seq (paging)")] = None,
    limit: Annotated[int, typer.Option(min=1, help="how many")] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Audit records in seq order, filtered by app, dataset, time and decision."""
    from catalog import audit

    if decision is not None and decision not in audit.DECISIONS:
        raise typer.BadParameter("must be allow or deny", param_hint="--decision")
    rows = audit.query(
        _engine(),
        app_id=app_id,
        dataset_codes=dataset or None,
        since=_parse_time(since, "--since"),
        until=_parse_time(until, "--until"),
        after_seq=after,
        limit=limit,
        decision=decision,
    )
    archived = audit.archived_through(_engine())
    since_t = _parse_time(since, "--since")
    if archived is not None and (after or 0) < archived[0] and (since_t is None or since_t < archived[1]):
        # stderr: the --json output stays the records alone
        err.print(
            f"note: records up to seq {archived[0]} (all older than {archived[1].date().isoformat()}) are "
            f"archived ({archived[2]} archive file(s)) and not listed here",
            highlight=False,
        )
    if as_json:
        _dump([{**r, "at": r["at"].isoformat()} for r in rows])
        return
    t = Table("seq", "at (UTC)", "caller", "end user", "case", "action", "dataset / cert", "decision", "rows")
    for r in rows:
        caller = r["app_id"] or (f"staff:{r['staff']}" if r["staff"] else r["actor_kind"])
        decided = r["decision"] if r["reason"] is None else f"{r['decision']} ({r['reason']})"
        cells = [
            str(r["seq"]),
            r["at"].strftime("%Y-%m-%d %H:%M:%S"),
            caller,
            r["end_user"] or "-",
            r["case_number"] or "-",
            r["action"],
            r["dataset_code"] or r["certificate_id"] or "-",
            decided,
            str(r["row_count"]),
        ]
        t.add_row(*(escape(c) for c in cells))  # the values come from callers: never markup
    console.print(t)


def _parse_before(value: str) -> dt.datetime:
    parsed = _parse_time(value, "--before")
    assert parsed is not None
    return parsed


@app.command("archive")
def archive_cmd(
    before: Annotated[
        str, typer.Option(help="archive records older than this ISO date or time (UTC if no offset)")
    ],
    to: Annotated[Path, typer.Option("--to", help="the folder the archive file goes to")],
    by: Annotated[str | None, typer.Option(help="who archives (default: the OS user)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only say what would be archived")] = False,
    max_records: Annotated[int, typer.Option(min=1, help="at most this many records per run")] = 1_000_000,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Move the oldest records, older than --before and past their grade's retention, to a file."""
    from catalog.audit.archive import ArchiveError, ArchiveTooSoon, archive
    from catalog.directory.grades import policy_of
    from sharehub.settings import get_settings

    when = _parse_before(before)
    try:
        result = archive(
            _engine(),
            when,
            to,
            policy=policy_of(get_settings()),
            by=by or _os_user(),
            dry_run=dry_run,
            max_records=max_records,
        )
    except ArchiveError as exc:
        err.print(f"[red]not archived[/red]: {escape(str(exc))}")
        raise typer.Exit(2 if isinstance(exc, ArchiveTooSoon) else 1) from None
    p = result.plan
    if as_json:
        _dump(
            {
                "dry_run": dry_run,
                "records": p.records,
                "first_seq": p.first_seq if p.records else None,
                "last_seq": p.last_seq if p.records else None,
                "prev_hash": p.prev_hash,
                "last_hash": p.last_hash,
                "stopped_at": p.stopped_at,
                "reason": p.reason,
                "file": None if result.path is None else str(result.path),
                "file_sha256": result.file_sha256,
                "archive_id": result.archive_id,
                "anchor_seq": result.anchor_seq,
            }
        )
        return
    if p.records == 0:
        console.print(f"nothing to archive: {p.reason}", markup=False, highlight=False)
        return
    what = f"seq {p.first_seq}-{p.last_seq} ({p.records} records)"
    if dry_run:
        console.print(f"would archive {what}", highlight=False)
    else:
        console.print(f"archived {what} to {result.path}", markup=False, highlight=False)
        console.print(
            f"file sha256 {result.file_sha256}; archive row {result.archive_id}, "
            f"recorded in the chain at seq {result.anchor_seq}",
            highlight=False,
        )
    console.print(f"stopped: {p.reason}", markup=False, highlight=False)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _reachable_engine() -> Any:
    """The hub DB when there is one (an embedded SQLite file is not created for a check)."""
    from sqlalchemy.engine import make_url

    from sharehub.settings import get_settings

    url = make_url(get_settings().hub_db_url)
    if url.get_backend_name() == "sqlite" and not (url.database and Path(url.database).is_file()):
        err.print("no hub DB here: checking the file alone")
        return None
    try:
        return _engine()
    except Exception as exc:  # the file is still checked: the DB may be gone for good
        err.print(f"hub DB not reachable ({type(exc).__name__}): checking the file alone")
        return None


@app.command("verify-archive")
def verify_archive_cmd(
    file: Annotated[Path, typer.Argument(help="an archive file written by `sharehub audit archive`")],
    no_db: Annotated[bool, typer.Option("--no-db", help="check the file alone")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recompute the chain inside an archive file and compare it with its archive row in the hub DB."""
    from catalog import audit

    if not file.is_file():
        raise typer.BadParameter(f"no such file: {file}", param_hint="FILE")
    engine = None
    if not no_db:
        engine = _reachable_engine()
    check = audit.verify_file(file, engine)
    h = check.header
    if as_json:
        _dump(
            {
                "ok": check.ok,
                "file": str(file),
                "sha256": check.sha256,
                "records": check.records,
                "first_seq": h.get("first_seq"),
                "last_seq": h.get("last_seq"),
                "prev_hash": h.get("prev_hash"),
                "last_hash": h.get("last_hash"),
                "db": check.db,
                "problems": check.problems,
            }
        )
    elif check.ok:
        console.print(
            f"archive intact: seq {h.get('first_seq')}-{h.get('last_seq')} ({check.records} records), "
            f"prev_hash {h.get('prev_hash')}, last_hash {h.get('last_hash')}",
            highlight=False,
        )
        console.print(f"sha256 {check.sha256}; archive row in the hub DB: {check.db}", highlight=False)
    else:
        console.print(f"archive damaged: {len(check.problems)} problem(s)", style="red", highlight=False)
        for p in check.problems:
            console.print(f"  {p}", markup=False, highlight=False, soft_wrap=True)
    if not check.ok:
        raise typer.Exit(1)
