"""``sharehub apps|staff|applications|grants|keys``: access control from the command line.

These commands talk to the hub DB directly, as the operator on the hub's machine; the same
operations are in the access API for apps and department staff. Every change made here is
also recorded by the tables' own history (decided_by, revoked_by) as ``cli:<user>``.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from sharehub.cli.common import console
from sharehub.cli.common import dump as _dump
from sharehub.cli.common import engine as _engine
from sharehub.cli.common import fail as _fail
from sharehub.cli.common import operator as _operator
from sharehub.settings import get_settings

apps_app = typer.Typer(
    help="registered service systems (应用) and their client credentials", no_args_is_help=True
)
staff_app = typer.Typer(help="department staff accounts (工作人员) and roles", no_args_is_help=True)
applications_app = typer.Typer(help="sharing applications (共享申请)", no_args_is_help=True)
grants_app = typer.Typer(help="standing grants (授权)", no_args_is_help=True)
keys_app = typer.Typer(help="the hub's Ed25519 signing keys", no_args_is_help=True)


# ---- apps ---------------------------------------------------------------------------------


@apps_app.command("create")
def apps_create(
    name: str,
    department: Annotated[str, typer.Option("--department", "-d", help="department code operating the app")],
    description: str = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Register an app; prints its client id and secret (the secret is shown only this once)."""
    from catalog.access import app_registry
    from catalog.errors import HubError

    try:
        app, secret = app_registry.register_app(_engine(), name, department, description)
    except HubError as exc:
        raise _fail(exc) from None
    if as_json:
        _dump({"client_id": app.app_id, "client_secret": secret, "name": app.name, "department": department})
        return
    console.print(f"app [bold]{app.name}[/bold] registered for {department}")
    console.print(f"client_id:     {app.app_id}")
    console.print(f"client_secret: {secret}")
    console.print("[yellow]store the secret now: the hub keeps only its hash[/yellow]")


@apps_app.command("list")
def apps_list(
    department: Annotated[str | None, typer.Option("--department", "-d")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Registered apps."""
    from catalog.access import app_registry

    rows = [
        {
            "client_id": a.app_id,
            "name": a.name,
            "department": a.department_code,
            "status": a.status,
            "secret_generation": a.secret_generation,
            "secret_rotated_at": a.secret_rotated_at,
        }
        for a in app_registry.list_apps(_engine(), department)
    ]
    if as_json:
        _dump(rows)
        return
    t = Table("client_id", "name", "department", "status", "secret gen.", "rotated at")
    for r in rows:
        t.add_row(*[str(v) for v in r.values()])
    console.print(t)


@apps_app.command("rotate-secret")
def apps_rotate(client_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """New client secret; the old one and every token issued with it stop working at once."""
    from catalog.access import app_registry
    from catalog.errors import HubError

    try:
        app, secret = app_registry.rotate_secret(_engine(), client_id)
    except HubError as exc:
        raise _fail(exc) from None
    if as_json:
        _dump({"client_id": app.app_id, "client_secret": secret, "secret_generation": app.secret_generation})
        return
    console.print(f"client_secret: {secret}")


@apps_app.command("disable")
def apps_disable(client_id: str) -> None:
    """Disable an app (its tokens are refused from the next call)."""
    from catalog.access import app_registry
    from catalog.errors import HubError

    try:
        app_registry.set_status(_engine(), client_id, "disabled")
    except HubError as exc:
        raise _fail(exc) from None
    console.print(f"{client_id} disabled")


@apps_app.command("enable")
def apps_enable(client_id: str) -> None:
    """Enable a disabled app."""
    from catalog.access import app_registry
    from catalog.errors import HubError

    try:
        app_registry.set_status(_engine(), client_id, "active")
    except HubError as exc:
        raise _fail(exc) from None
    console.print(f"{client_id} enabled")


# ---- staff --------------------------------------------------------------------------------


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


@staff_app.command("create")
def staff_create(
    username: str,
    role: Annotated[
        list[str], typer.Option("--role", "-r", help="publisher|approver|applicant|auditor|admin (repeat)")
    ],
    department: Annotated[
        str | None,
        typer.Option("--department", "-d", help="department code; omit for hub-wide admin/auditor"),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from stdin")
    ] = False,
) -> None:
    """Create a staff account (password hashed with argon2id; at least 12 characters)."""
    from catalog.access import staff
    from catalog.errors import HubError

    password = _read_password(password_stdin)
    try:
        user = staff.create_staff(_engine(), username, department, role, password)
    except HubError as exc:
        raise _fail(exc) from None
    console.print(
        f"staff {user.username} ({', '.join(sorted(user.roles))}) for {department or 'the whole hub'}"
    )


@staff_app.command("link-sso")
def staff_link_sso(
    username: str,
    subject: Annotated[
        str | None, typer.Option(help="the user's `sub` at the identity provider (omit with --unlink)")
    ] = None,
    unlink: Annotated[bool, typer.Option("--unlink", help="remove the link")] = False,
    issuer: Annotated[str | None, typer.Option(help="default: SHAREHUB_OIDC_ISSUER")] = None,
) -> None:
    """Link a staff account to its identity-provider account (single sign-on), or unlink it."""
    from catalog.access import sso
    from catalog.errors import HubError

    iss = (issuer or get_settings().oidc_issuer or "").rstrip("/")
    if not iss:
        raise _fail(ValueError("no issuer: set SHAREHUB_OIDC_ISSUER or give --issuer"))
    if unlink == (subject is not None):
        raise _fail(ValueError("give --subject SUB, or --unlink"))
    try:
        sso.link(_engine(), username, iss, None if unlink else subject)
    except HubError as exc:
        raise _fail(exc) from None
    done = "unlinked" if unlink else f"linked to {subject} at {iss}"
    console.print(f"staff {username} {done}", highlight=False)


@staff_app.command("set-password")
def staff_set_password(
    username: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
) -> None:
    """Change a password (tokens issued before stop working)."""
    from catalog.access import staff
    from catalog.errors import HubError

    password = _read_password(password_stdin)
    try:
        staff.set_password(_engine(), username, password)
    except HubError as exc:
        raise _fail(exc) from None
    console.print(f"password of {username} changed")


@staff_app.command("list")
def staff_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Staff accounts."""
    from catalog.access import staff

    users = staff.list_staff(_engine())
    if as_json:
        _dump([u.to_json() for u in users])
        return
    t = Table("username", "department", "roles", "status")
    for u in users:
        t.add_row(u.username, u.department_code or "(hub-wide)", ", ".join(sorted(u.roles)), u.status)
    console.print(t)


# ---- applications and grants --------------------------------------------------------------


def _policy() -> Any:
    from catalog.directory.grades import policy_of

    return policy_of(get_settings())


def _calendar() -> Any:
    from catalog.access.workdays import Calendar

    return Calendar.from_settings(get_settings())


@applications_app.command("submit")
def applications_submit(
    client_id: str,
    dataset: str,
    purpose: Annotated[str, typer.Option(help="用途")],
    legal_basis: Annotated[str, typer.Option(help="依据")],
    field: Annotated[
        list[str] | None, typer.Option("--field", "-f", help="field (repeat); default all")
    ] = None,
    clear: Annotated[list[str] | None, typer.Option("--clear", help="sensitive field asked unmasked")] = None,
    until: Annotated[str | None, typer.Option(help="requested end date YYYY-MM-DD")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Apply on an app's behalf (operators onboarding an app; apps normally use the API)."""
    from catalog.access import applications
    from catalog.errors import HubError

    s = get_settings()
    try:
        a = applications.submit(
            _engine(),
            client_id,
            dataset,
            fields=field or None,
            clear_fields=clear or [],
            purpose=purpose,
            legal_basis=legal_basis,
            requested_until=dt.date.fromisoformat(until) if until else None,
            calendar=_calendar(),
            deadline_days=s.working_days_deadline,
            policy=_policy(),
            default_rate_limit=s.default_rate_limit,
        )
    except HubError as exc:
        raise _fail(exc) from None
    if as_json:
        _dump(a.to_json())
        return
    console.print(
        f"application {a.id}: {a.status}" + (f", decide by {a.deadline}" if a.status == "pending" else "")
    )


@applications_app.command("list")
def applications_list(
    department: Annotated[str | None, typer.Option("--department", "-d")] = None,
    app_id: Annotated[str | None, typer.Option("--app")] = None,
    status: Annotated[str | None, typer.Option()] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="only pending past the deadline")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Applications, newest first; overdue ones are flagged."""
    from catalog.access import applications

    items = applications.list_applications(
        _engine(), app_id=app_id, department_code=department, status=status, overdue_only=overdue
    )
    if as_json:
        _dump([a.to_json() for a in items])
        return
    t = Table("id", "app", "dataset", "status", "submitted", "deadline", "decided by", "reason")
    for a in items:
        status_text = f"[red]{a.status} OVERDUE[/red]" if a.overdue else a.status
        t.add_row(
            str(a.id),
            a.app_id,
            a.dataset_code,
            status_text,
            a.submitted_at.strftime("%Y-%m-%d %H:%M"),
            str(a.deadline),
            a.decided_by or "",
            a.reason or "",
        )
    console.print(t)


@applications_app.command("decide")
def applications_decide(
    application_id: int,
    staff_user: Annotated[str, typer.Option("--as", help="the approver's username")],
    approve: Annotated[bool, typer.Option("--approve/--refuse")],
    reason: str = "",
    field: Annotated[list[str] | None, typer.Option("--field", "-f", help="narrow to these fields")] = None,
    until: Annotated[str | None, typer.Option(help="grant end date YYYY-MM-DD")] = None,
    rate_limit: Annotated[int | None, typer.Option(help="requests per minute")] = None,
) -> None:
    """Approve or refuse as an approver of the owning department (a refusal needs --reason)."""
    from catalog.access import applications, staff
    from catalog.errors import HubError

    engine = _engine()
    user = staff.get_staff(engine, staff_user)
    if user is None:
        raise _fail(HubError("staff_not_found", username=staff_user))
    try:
        a = applications.decide(
            engine,
            application_id,
            user,
            approve=approve,
            reason=reason,
            fields=field or None,
            valid_until=dt.date.fromisoformat(until) if until else None,
            rate_limit=rate_limit,
            policy=_policy(),
            default_rate_limit=get_settings().default_rate_limit,
        )
    except HubError as exc:
        raise _fail(exc) from None
    console.print(f"application {a.id}: {a.status}" + (f" (grant {a.grant_id})" if a.grant_id else ""))


@grants_app.command("list")
def grants_list(
    app_id: Annotated[str | None, typer.Option("--app")] = None,
    department: Annotated[str | None, typer.Option("--department", "-d")] = None,
    active: Annotated[bool, typer.Option("--active")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Grants."""
    from catalog.access import applications

    items = applications.list_grants(_engine(), app_id=app_id, department_code=department, active_only=active)
    if as_json:
        _dump([g.to_json() for g in items])
        return
    t = Table("id", "app", "dataset", "fields", "clear", "until", "rate/min", "status")
    for g in items:
        t.add_row(
            str(g.id),
            g.app_id,
            g.dataset_code,
            str(len(g.fields)),
            ", ".join(g.clear_fields),
            str(g.valid_until or ""),
            str(g.rate_limit),
            g.status,
        )
    console.print(t)


@grants_app.command("revoke")
def grants_revoke(grant_id: int, reason: Annotated[str, typer.Option(help="why (recorded)")]) -> None:
    """Revoke a grant at once."""
    from catalog.access import applications
    from catalog.errors import HubError

    try:
        applications.revoke(_engine(), grant_id, by=_operator(), reason=reason)
    except HubError as exc:
        raise _fail(exc) from None
    console.print(f"grant {grant_id} revoked")


# ---- keys ---------------------------------------------------------------------------------


@keys_app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Signing keys (public parts; private keys stay in the keys directory)."""
    from catalog.auth.keys import KeyStore

    s = get_settings()
    rows = KeyStore(_engine(), s.signing_keys_dir).list_keys()
    if as_json:
        _dump(rows)
        return
    t = Table("kid", "purpose", "status", "created", "retired", "withdrawn since", "reason")
    for r in rows:
        t.add_row(
            r["kid"],
            r["purpose"],
            r["status"],
            str(r["created_at"]),
            str(r.get("retired_at") or ""),
            str(r.get("withdrawn_since") or ""),
            r.get("withdrawn_reason") or "",
        )
    console.print(t)


@keys_app.command("rotate")
def keys_rotate(purpose: Annotated[str, typer.Argument(help="token or certificate")]) -> None:
    """New active key; the old one is retired but stays published so what it signed still verifies."""
    from catalog.auth.keys import KeyStore

    s = get_settings()
    key = KeyStore(_engine(), s.signing_keys_dir).rotate(purpose)
    console.print(f"new {purpose} key {key.kid}")


def _parse_since(value: str) -> dt.datetime:
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 date or time", param_hint="--since") from None
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at


@keys_app.command("withdraw")
def keys_withdraw(
    kid: Annotated[str, typer.Argument(help="the leaked key (see `sharehub keys list`)")],
    since: Annotated[
        str,
        typer.Option(
            help="the earliest time the key may have been in other hands, ISO 8601 "
            "(2026-12-01T08:00+08:00; without an offset: UTC)"
        ),
    ],
    reason: Annotated[str, typer.Option(help="why (kept with the key and in the audit log)")],
    by: Annotated[str | None, typer.Option(help="who withdraws (default: cli:<login name>)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Withdraw a leaked signing key (密钥撤销): nothing it signed from --since on is trusted.

    A withdrawn token key verifies no token at all. A withdrawn certificate key's signatures
    count only where the hub's records show it made them before --since; run
    `sharehub keys sign-missing` next to re-sign the certificates it signed after that."""
    import json
    import uuid

    from catalog.audit.chain import AuditRecord
    from catalog.audit.writer import append
    from catalog.auth.keys import KeyStore

    s = get_settings()
    engine = _engine()
    who = by or _operator()
    at = _parse_since(since)
    try:
        done = KeyStore(engine, s.signing_keys_dir).withdraw(kid, since=at, reason=reason, by=who)
    except ValueError as exc:
        raise _fail(exc) from None
    append(
        engine,
        [
            AuditRecord(
                at=dt.datetime.now(dt.UTC),
                request_id=uuid.uuid4().hex,
                actor_kind="staff",
                method="CLI",
                path="sharehub keys withdraw",
                action="keys.withdraw",
                decision="allow",
                status=200,
                staff=who,
                query=json.dumps(
                    {"kid": kid, "since": done.get("withdrawn_since"), "reason": reason.strip()},
                    ensure_ascii=False,
                    sort_keys=True,
                ),
            )
        ],
    )
    if as_json:
        _dump(done)
        return
    console.print(f"{kid} ({done['purpose']}) withdrawn since {done.get('withdrawn_since')}", highlight=False)
    if done["new_active_kid"]:
        console.print(f"new active {done['purpose']} key {done['new_active_kid']}", highlight=False)
    if done["purpose"] == "certificate":
        console.print(
            "next: `sharehub keys sign-missing` re-signs the certificates it signed since then",
            highlight=False,
        )


@keys_app.command("sign-missing")
def keys_sign_missing(
    all_withdrawn: Annotated[
        bool,
        typer.Option(
            "--all-withdrawn",
            help="also re-sign what withdrawn keys signed before their withdrawal time, so that "
            "their signatures stop mattering altogether",
        ),
    ] = False,
) -> None:
    """Sign every certificate without a trusted signature with the active certificate key:
    those issued before signing existed, and those a withdrawn key signed from its withdrawal
    time on (the stored record is the truth; only the signature changes)."""
    from catalog.auth.keys import KeyStore
    from catalog.certificates import issuing

    s = get_settings()
    engine = _engine()
    keys = KeyStore(engine, s.signing_keys_dir)
    withdrawn = {
        k["kid"]: k["withdrawn_since"]
        for k in keys.list_keys()
        if k["purpose"] == "certificate" and k["status"] == "withdrawn"
    }
    n = issuing.sign_missing(
        engine, keys.active("certificate"), withdrawn=withdrawn, all_by_withdrawn=all_withdrawn
    )
    console.print(f"signed {n} certificate(s)")
