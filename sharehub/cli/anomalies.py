"""``sharehub anomalies``: access anomalies (异常访问) — scan the audit log, list, clear."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from sharehub.cli.common import console
from sharehub.cli.common import dump as _dump
from sharehub.cli.common import engine as _engine
from sharehub.cli.common import fail as _fail
from sharehub.cli.common import operator as _operator
from sharehub.settings import get_settings

app = typer.Typer(
    help="access anomalies (异常访问): apps reading unlike their own history", no_args_is_help=True
)


def _show(rows: list[dict[str, object]]) -> None:
    t = Table("id", "app", "dataset", "department", "kind", "observed", "baseline", "threshold", "detected",
              "throttled until", "status")  # fmt: skip
    for r in rows:
        t.add_row(*(str(r.get(k) if r.get(k) is not None else "") for k in (
            "id", "app_id", "dataset_code", "department_code", "kind", "observed", "baseline", "threshold",
            "detected_at", "throttled_until", "status")))  # fmt: skip
    console.print(t)


@app.command("scan")
def scan_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Judge the latest window of the audit log against each app's history; record what stands out
    (the API does this every SHAREHUB_ANOMALY_SCAN_SECONDS; run it from cron where that is 0)."""
    from catalog import anomalies
    from catalog.directory.grades import policy_of

    s = get_settings()
    found = anomalies.scan(_engine(), anomalies.Thresholds.of(s), policy_of(s))
    rows = [a.to_json() for a in found]
    if as_json:
        _dump(rows)
        return
    if not rows:
        console.print("no access anomalies in the latest window")
        return
    _show(rows)


@app.command("list")
def list_cmd(
    department: Annotated[str | None, typer.Option("--department", "-d")] = None,
    all_: Annotated[bool, typer.Option("--all", help="cleared ones too")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Open anomalies (newest first), of every department or one."""
    from catalog import anomalies

    status = None if all_ else "open"
    found = anomalies.list_anomalies(_engine(), department_code=department, status=status)
    rows = [a.to_json() for a in found]
    if as_json:
        _dump(rows)
        return
    _show(rows)


@app.command("clear")
def clear_cmd(
    anomaly_id: int,
    reason: Annotated[str, typer.Option(help="what was found (kept with the anomaly)")],
    by: Annotated[str | None, typer.Option(help="who clears it (default: cli:<login name>)")] = None,
) -> None:
    """Close an anomaly after looking into it; its throttle ends."""
    from catalog import anomalies
    from catalog.errors import HubError

    who = by or _operator()
    try:
        done = anomalies.clear(_engine(), anomaly_id, by=who, reason=reason)
    except HubError as exc:
        raise _fail(exc) from None
    console.print(f"anomaly {done.id} cleared by {who}", highlight=False)
