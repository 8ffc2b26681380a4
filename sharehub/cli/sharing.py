"""``sharehub sharing``: Delta Sharing recipient profiles (bulk sharing, docs/exchange.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sharehub.cli.common import console, err
from sharehub.cli.common import dump as _dump
from sharehub.cli.common import engine as _engine
from sharehub.cli.common import fail as _fail
from sharehub.cli.common import operator as _operator
from sharehub.settings import get_settings

app = typer.Typer(help="bulk sharing over Delta Sharing: recipient profiles", no_args_is_help=True)


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
        raise _fail(exc) from None
    recipients.write_profile(out, f"{base}/api/v1/delta-sharing", token, rec.expires_at)
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
        raise _fail(exc) from None
    console.print(f"profile {r.id} of {r.app_id} revoked")


subscriptions_app = typer.Typer(
    help="subscriptions (订阅): granted datasets delivered into consumers' databases", no_args_is_help=True
)


@subscriptions_app.command("create")
def subscription_create(
    app_id: str,
    dataset: str,
    target: Annotated[
        str, typer.Option(help="connection ref of the consumer's database (SHAREHUB_CONNECTIONS__REF)")
    ],
    table: Annotated[str, typer.Option(help="the table to deliver into")],
    mode: Annotated[str, typer.Option(help="mirror or append")] = "mirror",
) -> None:
    """Subscribe an app to a dataset it may read in bulk."""
    from catalog.directory.grades import policy_of
    from catalog.errors import HubError
    from catalog.sharing import subscriptions

    try:
        sub = subscriptions.subscribe(
            _engine(), app_id, dataset, target_ref=target, target_table=table, mode=mode,
            by=_operator(), policy=policy_of(get_settings()),
        )  # fmt: skip
    except HubError as exc:
        raise _fail(exc) from None
    console.print(f"subscription {sub.id}: {dataset} -> {target}.{table} ({mode})")


@subscriptions_app.command("list")
def subscription_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Subscriptions and where each stands."""
    from catalog.sharing import subscriptions

    rows = [s.to_json() for s in subscriptions.list_subscriptions(_engine())]
    if as_json:
        _dump(rows)
        return
    t = Table("id", "app", "dataset", "target", "table", "mode", "status", "delivered", "last error")
    for r in rows:
        keys = ("id", "app_id", "dataset_code", "target_ref", "target_table", "mode", "status")
        t.add_row(*(str(r.get(k) or "") for k in (*keys, "delivered_at", "last_error")))
    console.print(t)


@subscriptions_app.command("deliver")
def subscription_deliver(
    subscription_id: int,
    full: Annotated[bool, typer.Option("--full", help="reload a mirror whole")] = False,
) -> None:
    """Deliver what changed since the last delivery, now (what its Airflow DAG does)."""
    from catalog.errors import HubError
    from sharehub.pipeline.delivery import DeliveryStopped, deliver

    try:
        done = deliver(subscription_id, "cli", full=full)
    except HubError as exc:
        raise _fail(exc) from None
    except DeliveryStopped as exc:
        err.print(f"[red]stopped[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(
        json.dumps({k: v for k, v in done.items() if k != "started_at"}, default=str, ensure_ascii=False)
    )


@subscriptions_app.command("end")
def subscription_end(
    subscription_id: int,
    reason: Annotated[str, typer.Option("--reason", help="why it ends (kept in the history)")],
) -> None:
    """End a subscription: no more deliveries; the target keeps what it has."""
    from catalog.errors import HubError
    from catalog.sharing import subscriptions

    try:
        sub = subscriptions.end(_engine(), subscription_id, by=_operator(), reason=reason)
    except HubError as exc:
        raise _fail(exc) from None
    console.print(f"subscription {sub.id} ended")


@subscriptions_app.command("history")
def subscription_history(
    subscription_id: int, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Deliveries of a subscription, newest first, with row counts."""
    from catalog.sharing import subscriptions

    rows = subscriptions.history(_engine(), subscription_id)
    if as_json:
        _dump(rows)
        return
    t = Table("id", "status", "from", "to", "inserted", "updated", "deleted", "finished", "error")
    for r in rows:
        t.add_row(*(str(r.get(k) if r.get(k) is not None else "") for k in ("id", "status", "from_snapshot",
                    "to_snapshot", "inserted", "updated", "deleted", "finished_at", "error")))  # fmt: skip
    console.print(t)
