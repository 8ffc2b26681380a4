"""``sharehub db``: the hub database's schema (Alembic migrations)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from sharehub.settings import get_settings

app = typer.Typer(help="the hub database: migrations and schema checks", no_args_is_help=True)
console = Console(width=None if sys.stdout.isatty() else 160, highlight=False)
err = Console(stderr=True, highlight=False)


@app.command("upgrade")
def upgrade_cmd(
    revision: Annotated[str, typer.Option("--revision", help="target revision")] = "head",
) -> None:
    """Apply the migrations up to a revision (default: the newest); a no-op when already there."""
    from alembic.util import CommandError

    from catalog.db import migrate

    url = get_settings().hub_db_url
    before = migrate.current(url)
    try:
        migrate.upgrade(url, revision)
    except CommandError as exc:
        err.print(f"[red]error[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    after = migrate.current(url)
    where = escape(migrate.masked_url(url))
    if before == after:
        console.print(f"{where}: already at revision {after or 'none'}")
    else:
        console.print(f"{where}: upgraded from {before or 'an empty database'} to revision {after}")


@app.command("current")
def current_cmd() -> None:
    """Print the database's revision ("none" before the first upgrade) and whether it is the head."""
    from catalog.db import migrate

    rev = migrate.current(get_settings().hub_db_url)
    head = migrate.head()
    if rev == head:
        console.print(f"{rev} (head)")
    else:
        console.print(f"{rev or 'none'} (head is {head}: run `sharehub db upgrade`)")


@app.command("check")
def check_cmd() -> None:
    """Compare the database with the models; exit 1 listing every difference."""
    from catalog.db import migrate

    url = get_settings().hub_db_url
    diffs = migrate.check(url)
    if not diffs:
        console.print(
            f"{escape(migrate.masked_url(url))}: in sync with the models (revision {migrate.head()})"
        )
        return
    for d in diffs:
        console.print(escape(d), soft_wrap=True)
    err.print(f"[red]{len(diffs)} difference(s)[/red] between the database and the models")
    raise typer.Exit(1)


@app.command("url")
def url_cmd() -> None:
    """Print the hub database URL (password masked)."""
    from catalog.db import migrate

    typer.echo(migrate.masked_url(get_settings().hub_db_url))
