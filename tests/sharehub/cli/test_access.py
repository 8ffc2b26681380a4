"""`sharehub apps|staff|applications|grants|keys` on an embedded hub: the operator's path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from catalog import publishing
from catalog.access import app_registry
from catalog.db.engine import engine_for
from sharehub.demo import DIRECTORY_DIR


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    from sharehub.settings import get_settings

    monkeypatch.setenv("SHAREHUB_VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    engine = engine_for(get_settings().hub_db_url)
    for f in sorted(DIRECTORY_DIR.glob("*.yaml")):
        publishing.publish_path(engine, f)
    yield CliRunner()
    get_settings.cache_clear()


def run(cli: CliRunner, *args: str, stdin: str | None = None, code: int = 0) -> str:
    from sharehub.cli.main import app

    res = cli.invoke(app, list(args), input=stdin)
    assert res.exit_code == code, res.output
    return str(res.output)


def test_operator_onboards_an_app_end_to_end(cli: CliRunner) -> None:
    from sharehub.settings import get_settings

    created = json.loads(run(cli, "apps", "create", "不动产登记", "--department", "ZGJ", "--json"))
    cid, secret = created["client_id"], created["client_secret"]
    engine = engine_for(get_settings().hub_db_url)
    assert app_registry.authenticate_app(engine, cid, secret) is not None
    out = run(cli, "apps", "create", "不动产登记", "--department", "ZGJ", code=1)
    assert "app_name_taken" in out
    assert "NOPE" in run(cli, "apps", "create", "x", "--department", "NOPE", code=1)
    listed = json.loads(run(cli, "apps", "list", "--json"))
    assert [a["client_id"] for a in listed] == [cid] and secret not in json.dumps(listed)

    rotated = json.loads(run(cli, "apps", "rotate-secret", cid, "--json"))
    assert rotated["secret_generation"] == 2
    assert app_registry.authenticate_app(engine, cid, secret) is None
    assert app_registry.authenticate_app(engine, cid, rotated["client_secret"]) is not None

    out = run(
        cli,
        "staff",
        "create",
        "gaj_approver",
        "-d",
        "GAJ",
        "-r",
        "approver",
        "--password-stdin",
        stdin="short\n",
        code=1,
    )
    assert "weak_password" in out
    run(
        cli,
        "staff",
        "create",
        "gaj_approver",
        "-d",
        "GAJ",
        "-r",
        "approver",
        "--password-stdin",
        stdin="a long enough passphrase\n",
    )
    assert json.loads(run(cli, "staff", "list", "--json"))[0]["roles"] == ["approver"]

    a = json.loads(
        run(
            cli,
            "applications",
            "submit",
            cid,
            "GAJ-HJRK-001",
            "--purpose",
            "核验身份",
            "--legal-basis",
            "条例",
            "-f",
            "id_no",
            "-f",
            "name",
            "--json",
        )
    )
    assert a["status"] == "pending" and a["fields"] == ["id_no", "name"]
    pending = json.loads(run(cli, "applications", "list", "-d", "GAJ", "--json"))
    assert [x["id"] for x in pending] == [a["id"]]
    assert json.loads(run(cli, "applications", "list", "--overdue", "--json")) == []
    out = run(cli, "applications", "decide", str(a["id"]), "--as", "gaj_approver", "--refuse", code=1)
    assert "reason_required" in out
    out = run(
        cli, "applications", "decide", str(a["id"]), "--as", "gaj_approver", "--approve", "--rate-limit", "30"
    )
    assert "approved" in out
    (grant,) = json.loads(run(cli, "grants", "list", "--active", "--json"))
    assert grant["rate_limit"] == 30 and grant["fields"] == ["id_no", "name"]
    run(cli, "grants", "revoke", str(grant["id"]), "--reason", "办结")
    assert json.loads(run(cli, "grants", "list", "--active", "--json")) == []
    assert "grant_not_active" in run(cli, "grants", "revoke", str(grant["id"]), "--reason", "x", code=1)

    run(cli, "apps", "disable", cid)
    assert json.loads(run(cli, "apps", "list", "--json"))[0]["status"] == "disabled"


def test_keys_rotate_and_list(cli: CliRunner) -> None:
    out = run(cli, "keys", "rotate", "certificate")
    kid = out.split()[-1]
    run(cli, "keys", "rotate", "certificate")
    keys = json.loads(run(cli, "keys", "list", "--json"))
    statuses = {k["kid"]: k["status"] for k in keys}
    assert statuses[kid] == "retired" and list(statuses.values()).count("active") == 1
    assert "signed 0 certificate(s)" in run(cli, "keys", "sign-missing")


def test_keys_withdraw_from_the_command_line(cli: CliRunner) -> None:
    import sqlalchemy as sa

    from catalog.db import tables
    from sharehub.settings import get_settings

    kid = run(cli, "keys", "rotate", "certificate").split()[-1]
    out = run(
        cli, "keys", "withdraw", kid, "--since", "2026-12-01T08:00", "--reason", "私钥泄露", "--by", "ops"
    )
    assert f"{kid} (certificate) withdrawn since 2026-12-01T08:00:00Z" in out  # no offset: UTC
    assert "new active certificate key cert-" in out and "keys sign-missing" in out
    keys = {k["kid"]: k for k in json.loads(run(cli, "keys", "list", "--json"))}
    assert keys[kid]["status"] == "withdrawn" and keys[kid]["withdrawn_reason"] == "私钥泄露"
    assert [k["status"] for k in keys.values()].count("active") == 1
    with engine_for(get_settings().hub_db_url).connect() as conn:
        rec = conn.execute(sa.select(tables.audit).where(tables.audit.c.action == "keys.withdraw")).one()
    assert rec.staff == "ops" and json.loads(rec.query) == {
        "kid": kid,
        "reason": "私钥泄露",
        "since": "2026-12-01T08:00:00Z",
    }
    assert "already withdrawn" in run(
        cli, "keys", "withdraw", kid, "--since", "2026-12-02", "--reason", "again", code=1
    )
    withdraw = ("keys", "withdraw")
    assert "no signing key" in run(cli, *withdraw, "cert-x", "--since", "2026-01-01", "--reason", "x", code=1)
    assert "not an ISO 8601" in run(cli, *withdraw, kid, "--since", "yesterday", "--reason", "x", code=2)
