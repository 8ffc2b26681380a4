"""The demo's access-control scene: two service apps, their applications, and working calls.

* 企业开办 (run by the market regulator) applies for the court's list of dishonest debtors,
  shared unconditionally: granted at once.
* 不动产登记 (run by the planning and natural resources bureau) applies for the police's
  household register, shared on conditions: it waits for the police's approver, who
  approves it here (with the name and ID number masked).

Credentials are made fresh on every run (an existing app gets a new secret) and are printed
once; the hub keeps only hashes. :func:`example_calls` returns the calls as data so a test
can run exactly what the demo prints.
"""

from __future__ import annotations

import secrets
import shlex
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

END_USER = "zhang.wei@qykb"
CASE_NUMBER = "QYKB-2026-001024"

APPS = {
    "企业开办": ("SCJGJ", "企业开办一网通办：核验法定代表人、股东是否为失信被执行人"),
    "不动产登记": ("ZGJ", "不动产登记：核验申请人身份与户籍信息"),
}
APPROVER = "gaj_approver"
#: the portal's demo sign-ins besides the approver: username -> (department or None, roles, what for)
PORTAL_ACCOUNTS: dict[str, tuple[str | None, list[str], str]] = {
    "gaj_publisher": ("GAJ", ["publisher"], "公安局目录发布员: edits and submits the police directory"),
    "zgj_applicant": ("ZGJ", ["applicant"], "自规局申请员: applies for data for 不动产登记"),
    "hub_admin": (None, ["admin"], "大数据局管理员: reviews directories, supervision"),
    "hub_auditor": (None, ["auditor"], "电子监察: reads every department's records"),
}


@dataclass
class DemoCall:
    """One example call, as data (the demo prints it as curl)."""

    title: str
    method: str
    path: str
    app: str | None = None  # whose token; None = no credentials
    params: dict[str, str] = field(default_factory=dict)
    purpose: bool = False
    json: dict[str, Any] | None = None


@dataclass
class DemoAccess:
    credentials: dict[str, tuple[str, str]]  # app name -> (client_id, client_secret)
    approver_password: str
    applications: list[dict[str, Any]]
    calls: list[DemoCall]
    portal: dict[str, tuple[str, str]] = field(default_factory=dict)  # username -> (password, what for)


def _credentials(engine: sa.Engine, name: str, department: str, description: str) -> tuple[str, str]:
    from catalog.access import app_registry

    existing = app_registry.find_app(engine, name)
    if existing is None:
        app, secret = app_registry.register_app(engine, name, department, description)
    else:
        app, secret = app_registry.rotate_secret(engine, existing.app_id)
        if app.status != "active":
            app = app_registry.set_status(engine, app.app_id, "active")
    return app.app_id, secret


def _approver(engine: sa.Engine) -> str:
    from catalog.access import staff

    password = secrets.token_urlsafe(12)
    if staff.get_staff(engine, APPROVER) is None:
        staff.create_staff(engine, APPROVER, "GAJ", ["approver", "auditor"], password)
    else:
        staff.set_password(engine, APPROVER, password)
    return password


def portal_accounts(engine: sa.Engine) -> dict[str, tuple[str, str]]:
    """Create or reset the portal's demo sign-ins: username -> (fresh password, what for)."""
    from catalog.access import staff

    out = {}
    for username, (dept, roles, what) in PORTAL_ACCOUNTS.items():
        password = secrets.token_urlsafe(12)
        if staff.get_staff(engine, username) is None:
            staff.create_staff(engine, username, dept, roles, password)
        else:
            staff.set_password(engine, username, password)
        out[username] = (password, what)
    return out


def _ensure_grant(
    engine: sa.Engine, settings: Any, client_id: str, dataset: str, purpose: str, basis: str
) -> dict[str, Any]:
    """Apply unless a grant is already active; approve a pending conditional one as the approver."""
    from catalog.access import applications, staff
    from catalog.access.workdays import Calendar
    from catalog.directory.grades import policy_of

    state = applications.access_state(engine, client_id, dataset)
    if state.kind == "granted" and state.application is not None:
        return state.application.to_json()
    if state.kind == "pending" and state.application is not None:
        a = state.application
    else:
        a = applications.submit(
            engine,
            client_id,
            dataset,
            fields=None,
            purpose=purpose,
            legal_basis=basis,
            calendar=Calendar.from_settings(settings),
            deadline_days=settings.working_days_deadline,
            policy=policy_of(settings),
            default_rate_limit=settings.default_rate_limit,
        )
    if a.status == "pending":
        user = staff.get_staff(engine, APPROVER)
        assert user is not None
        a = applications.decide(
            engine,
            a.id,
            user,
            approve=True,
            default_rate_limit=settings.default_rate_limit,
            policy=policy_of(settings),
        )
    return a.to_json()


def _first(engine: sa.Engine, code: str, column: str) -> str:
    from catalog.directory import store
    from catalog.serving import tables as serving

    spec = store.get_dataset(engine, code).spec
    table = serving.serving_table(spec)
    with engine.connect() as conn:
        value = conn.execute(sa.select(table.c[column]).order_by(table.c[column]).limit(1)).scalar()
    return str(value or "")


def setup_access(engine: sa.Engine, settings: Any) -> DemoAccess:
    """Register the two apps and the approver, make the two applications, build example calls."""
    creds = {name: _credentials(engine, name, dept, desc) for name, (dept, desc) in APPS.items()}
    password = _approver(engine)
    applied = [
        _ensure_grant(
            engine,
            settings,
            creds["企业开办"][0],
            "FY-SXBZXR-001",
            "企业开办时核验法定代表人和股东是否为失信被执行人",
            "《关于对失信被执行人实施联合惩戒的合作备忘录》",
        ),
        _ensure_grant(
            engine,
            settings,
            creds["不动产登记"][0],
            "GAJ-HJRK-001",
            "不动产登记时核验申请人身份",
            "《不动产登记暂行条例》第二十七条",
        ),
    ]
    return DemoAccess(creds, password, applied, example_calls(engine), portal_accounts(engine))


def example_calls(engine: sa.Engine) -> list[DemoCall]:
    """Calls that work against the demo hub once it is published and synced."""
    from catalog.certificates import issuing

    debtor = _first(engine, "FY-SXBZXR-001", "case_no")
    person = _first(engine, "GAJ-HJRK-001", "id_no")
    cert = issuing.certificates_of(engine, person)
    calls = [
        DemoCall("the directory, as the public sees it (open data only)", "GET", "/api/v1/datasets"),
        DemoCall(
            "a dishonest-debtor record by case number (企业开办, unconditional grant)",
            "GET",
            "/api/v1/datasets/FY-SXBZXR-001/records",
            app="企业开办",
            params={"case_no": debtor},
            purpose=True,
        ),
        DemoCall(
            "a resident's household record by subject (不动产登记, approved conditional grant, masked)",
            "GET",
            "/api/v1/datasets/GAJ-HJRK-001/records",
            app="不动产登记",
            params={"subject": person},
            purpose=True,
        ),
        DemoCall(
            "everything 不动产登记 may see about that resident (一人一档)",
            "GET",
            f"/api/v1/subjects/{person}",
            app="不动产登记",
            purpose=True,
        ),
        DemoCall("the app's own grants", "GET", "/api/v1/grants", app="不动产登记"),
        DemoCall(
            "the app's own audit trail", "GET", "/api/v1/audit", app="不动产登记", params={"limit": "5"}
        ),
        DemoCall("the hub's public keys (JWKS)", "GET", "/api/v1/keys"),
    ]
    if cert:
        calls.append(
            DemoCall(
                "verify that resident's ID-card certificate (anyone)",
                "GET",
                f"/api/v1/certificates/{cert[0]['identifier']}/verify",
            )
        )
    return calls


def _token_var(app: str) -> str:
    return {"企业开办": "TOKEN_QYKB", "不动产登记": "TOKEN_BDC"}[app]


def curl_lines(access: DemoAccess, base_url: str) -> list[str]:
    """The shell lines a newcomer can paste: one token per app, then the example calls."""
    lines: list[str] = []
    for app, (cid, secret) in access.credentials.items():
        lines.append(f"# token for {app} (valid 15 minutes)")
        lines.append(
            f"{_token_var(app)}=$(curl -s -X POST {base_url}/api/v1/token -d grant_type=client_credentials "
            f"-d client_id={cid} -d client_secret={shlex.quote(secret)} "
            "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
        )
    lines.append(f"# the police approver ({APPROVER}, password {access.approver_password}): its applications")
    lines.append(
        f"TOKEN_GAJ=$(curl -s -X POST {base_url}/api/v1/token -d grant_type=password -d username={APPROVER} "
        f"-d password={shlex.quote(access.approver_password)} "
        "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
    )
    lines.append(
        f'curl -s -H "Authorization: Bearer $TOKEN_GAJ" {shlex.quote(base_url + "/api/v1/applications")}'
    )
    for call in access.calls:
        lines.append(f"# {call.title}")
        parts = ["curl", "-s"]
        if call.app:
            parts += ["-H", f'"Authorization: Bearer ${_token_var(call.app)}"']
        if call.purpose:
            parts += [
                "-H",
                shlex.quote(f"X-End-User-Id: {END_USER}"),
                "-H",
                shlex.quote(f"X-Case-Number: {CASE_NUMBER}"),
            ]
        query = urllib.parse.urlencode(call.params)
        parts.append(shlex.quote(f"{base_url}{call.path}" + (f"?{query}" if query else "")))
        lines.append(" ".join(parts))
    return lines
