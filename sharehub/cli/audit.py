"""``sharehub audit``: check the hash chain of the access log and read it."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from sharehub.cli.common import console
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
            }
        )
    elif report.ok:
        console.print(f"audit log intact: {report.checked} records", highlight=False)
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
