"""``sharehub objections``: data objections (数据异议) — list, show, answer."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from sharehub.cli.common import console, dump, engine
from sharehub.cli.common import fail as _fail

app = typer.Typer(help="data objections (数据异议): users say served data is wrong", no_args_is_help=True)


@app.command("list")
def objections_list(
    department: Annotated[
        str | None, typer.Option("--department", "-d", help="the providing department")
    ] = None,
    dataset: Annotated[str | None, typer.Option("--dataset")] = None,
    status: Annotated[str | None, typer.Option(help="open|corrected|confirmed|rejected")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="only open ones past their due date")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Objections, newest first; overdue ones are flagged."""
    from catalog.access import objections

    items = objections.list_objections(
        engine(),
        department_code=department,
        dataset_code=dataset,
        status=status,
        overdue=True if overdue else None,
    )
    if as_json:
        dump([o.to_json() for o in items])
        return
    t = Table("id", "dataset", "record", "field", "raised by", "due", "status", "answer")
    for o in items:
        state = f"[red]{o.status} OVERDUE[/red]" if o.overdue else o.status
        t.add_row(
            str(o.id),
            o.dataset_code,
            o.record_key,
            o.field or "",
            o.raised_by,
            str(o.due_date),
            state,
            o.answer or "",
        )
    console.print(t)


@app.command("show")
def objections_show(objection_id: int) -> None:
    """One objection in full (JSON)."""
    from catalog.access import objections
    from catalog.errors import HubError

    o = objections.get_objection(engine(), objection_id)
    if o is None:
        raise _fail(HubError("objection_not_found", id=objection_id))
    dump(o.to_json())


@app.command("answer")
def objections_answer(
    objection_id: int,
    staff_user: Annotated[str, typer.Option("--as", help="a publisher of the providing department")],
    status: Annotated[str, typer.Option(help="corrected|confirmed|rejected")],
    answer: Annotated[str, typer.Option(help="the answer (required unless corrected)")] = "",
) -> None:
    """Answer an open objection as the providing department."""
    from catalog.access import objections, staff
    from catalog.errors import HubError

    db = engine()
    user = staff.get_staff(db, staff_user)
    if user is None:
        raise _fail(HubError("staff_not_found", username=staff_user))
    try:
        o = objections.answer_objection(db, objection_id, status=status, answer=answer, by=user)
    except HubError as exc:
        raise _fail(exc) from None
    console.print(f"objection {o.id}: {o.status}")
