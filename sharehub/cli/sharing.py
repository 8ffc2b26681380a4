"""``sharehub sharing``: Delta Sharing recipient profiles (bulk sharing, docs/exchange.md)."""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sharehub.cli.common import console, err
from sharehub.cli.common import dump as _dump
from sharehub.cli.common import engine as _engine
from sharehub.settings import get_settings

app = typer.Typer(help="bulk sharing over Delta Sharing: recipient profiles", no_args_is_help=True)


def _operator() -> str:
    return "cli:" + (os.environ.get("SUDO_USER") or getpass.getuser())


@app.command("profile")
def profile_cmd(
    app_id: Annotated[str, typer.Argument(help="the recipient app (see `sharehub apps list`)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="where to write the profile file (mode 0600)")],
    endpoint: Annotated[
        str | None,
        typer.Option(help="the hub as the recipient reaches it, e.g. https://hub.example.gov.cn"),
    ] = None,
    days: Annotated[int, typer.Option(help="how long the profile works (1-365)")] = 90,
    label: Annotated[str, typer.Option(help="what it is for")] = "profile",
) -> None:
    """Issue a recipient profile for an app and write it where the consumer will read it.

    The file holds a bearer token shown nowhere else; hand it over like a password."""
    from catalog.errors import HubError
    from catalog.sharing import recipients

    s = get_settings()
    base = (endpoint or f"http://{s.api_host}:{s.api_port}").rstrip("/")
    try:
        token, rec = recipients.issue(_engine(), app_id, days=days, label=label, by=_operator())
    except HubError as exc:
        err.print(f"[red]error[/red] {exc.code}: {exc}", highlight=False)
        raise typer.Exit(1) from None
    doc = recipients.profile(f"{base}/api/v1/delta-sharing", token, rec.expires_at)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(doc, indent=2) + "\n")
    console.print(f"profile {rec.id} for {app_id} written to {out}, valid until {rec.expires_at:%Y-%m-%d}")
    console.print(f"read it with: delta_sharing.load_as_pandas('{out}#sharehub.<department>.<dataset>')")


@app.command("list")
def list_cmd(
    app_id: Annotated[str | None, typer.Option("--app")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recipient profiles (never their tokens)."""
    from catalog.sharing import recipients

    rows = [r.to_json() for r in recipients.list_recipients(_engine(), app_id)]
    if as_json:
        _dump(rows)
        return
    t = Table("id", "app", "label", "created", "by", "expires", "revoked")
    for r in rows:
        t.add_row(*(str(r.get(k) or "") for k in ("id", "app_id", "label", "created_at", "created_by",
                                                   "expires_at", "revoked_at")))  # fmt: skip
    console.print(t)


@app.command("revoke")
def revoke_cmd(recipient_id: int) -> None:
    """End a recipient profile at once."""
    from catalog.errors import HubError
    from catalog.sharing import recipients

    try:
        r = recipients.revoke(_engine(), recipient_id, by=_operator())
    except HubError as exc:
        err.print(f"[red]error[/red] {exc.code}", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"profile {r.id} of {r.app_id} revoked")
