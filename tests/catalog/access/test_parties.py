"""Passwords, client secrets, registered apps and staff accounts on a real SQLite hub DB."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.profiles import RFC_9106_LOW_MEMORY

from catalog import publishing
from catalog.access import app_registry, passwords, staff
from catalog.api.status import HTTP_STATUS, status_of
from catalog.db import tables
from catalog.db.engine import engine_for
from catalog.errors import MESSAGES, HubError, error_body
from tests.paths import REPO

DIRECTORY = REPO / "directory"
T0 = dt.datetime(2025, 9, 26, 9, 0, tzinfo=dt.UTC)
PW = "correct horse battery"


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    eng = engine_for(f"sqlite:///{tmp_path / 'hub.db'}")
    for path in sorted(DIRECTORY.glob("*.yaml")):
        publishing.publish_path(eng, path)
    return eng


def api_error(exc: pytest.ExceptionInfo[HubError], code: str, status: int) -> None:
    assert (exc.value.code, status_of(exc.value)) == (code, status)
    error_body(exc.value)  # the params fill the message placeholders


# ---- passwords ----------------------------------------------------------------------------


def test_password_hash_is_argon2id_with_rfc9106_low_memory_params() -> None:
    stored = passwords.hash_password(PW)
    p = RFC_9106_LOW_MEMORY
    assert stored.startswith(f"$argon2id$v=19$m={p.memory_cost},t={p.time_cost},p={p.parallelism}$")
    assert passwords.hash_password(PW) != stored  # salted
    assert passwords.verify_password(stored, PW)
    assert not passwords.verify_password(stored, PW + "x")
    assert not passwords.needs_rehash(stored)


def test_verify_never_raises_on_garbage() -> None:
    for garbage in ["", "garbage", "$argon2id$v=19$m=65536,t=3,p=4$abc$def", "$2b$12$" + "a" * 53]:
        assert passwords.verify_password(garbage, PW) is False
        assert passwords.needs_rehash(garbage)


def test_needs_rehash_for_weaker_params() -> None:
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PW)
    assert passwords.verify_password(old, PW)  # old hashes still verify
    assert passwords.needs_rehash(old)


def test_password_strength() -> None:
    with pytest.raises(HubError) as exc:
        passwords.check_password_strength("x" * 11)
    api_error(exc, "weak_password", 400)
    passwords.check_password_strength("x" * 12)


def test_client_secrets() -> None:
    a, b = passwords.new_client_secret(), passwords.new_client_secret()
    assert a != b
    assert re.fullmatch(r"shs_[A-Za-z0-9_-]{43}", a)  # 32 bytes = 256 bits, base64url
    digest = passwords.hash_client_secret(a)
    assert digest == hashlib.sha256(a.encode()).hexdigest()
    assert passwords.client_secret_matches(digest, a)
    assert not passwords.client_secret_matches(digest, b)
    assert not passwords.client_secret_matches(digest, "")


def test_dummy_password_hash_is_a_real_hash() -> None:
    dummy = passwords.dummy_password_hash()
    assert dummy.startswith("$argon2id$") and not passwords.needs_rehash(dummy)
    assert passwords.dummy_password_hash() == dummy  # made once
    assert not passwords.verify_password(dummy, PW)


def test_new_error_codes_have_both_languages() -> None:
    for code in ("roles_required", "hub_wide_role", "bad_rate_limit"):
        en, zh = MESSAGES[code]
        assert en and zh


# ---- apps ---------------------------------------------------------------------------------


def test_register_and_authenticate_app(engine: sa.Engine) -> None:
    app, secret = app_registry.register_app(engine, "一网通办", "SGB", "portal", now=T0)
    assert re.fullmatch(r"app-[0-9a-f]{12}", app.app_id)
    assert (app.name, app.department_code, app.description, app.status) == (
        "一网通办",
        "SGB",
        "portal",
        "active",
    )
    assert app.secret_generation == 1 and app.created_at == T0 == app.secret_rotated_at
    with engine.connect() as conn:
        stored = conn.execute(sa.select(tables.apps.c.secret_hash)).scalar_one()
    assert stored == passwords.hash_client_secret(secret) and secret not in stored
    assert app_registry.authenticate_app(engine, app.app_id, secret) == app
    assert app_registry.authenticate_app(engine, app.app_id, secret + "x") is None
    assert app_registry.authenticate_app(engine, "app-000000000000", secret) is None
    assert app.to_json()["created_at"] == T0.isoformat()


def test_register_app_errors(engine: sa.Engine) -> None:
    app_registry.register_app(engine, "审批系统", "SCJGJ")
    with pytest.raises(HubError) as exc:
        app_registry.register_app(engine, "审批系统", "GAJ")
    api_error(exc, "app_name_taken", 409)
    with pytest.raises(HubError) as exc:
        app_registry.register_app(engine, "另一个", "NOPE")
    api_error(exc, "department_not_found", 404)
    with pytest.raises(ValueError):
        app_registry.register_app(engine, "  ", "GAJ")


def test_get_find_list_apps(engine: sa.Engine) -> None:
    a, _ = app_registry.register_app(engine, "b-app", "SGB")
    b, _ = app_registry.register_app(engine, "a-app", "GAJ")
    assert app_registry.get_app(engine, a.app_id) == a
    assert app_registry.get_app(engine, "b-app") is None
    assert app_registry.find_app(engine, "b-app") == a
    assert app_registry.find_app(engine, b.app_id) == b
    assert app_registry.find_app(engine, "nobody") is None
    assert [x.name for x in app_registry.list_apps(engine)] == ["a-app", "b-app"]
    assert app_registry.list_apps(engine, "SGB") == [a]
    assert app_registry.list_apps(engine, "FY") == []


def test_rotate_secret_invalidates_old_secret(engine: sa.Engine) -> None:
    app, old = app_registry.register_app(engine, "rotating", "SGB", now=T0)
    later = T0 + dt.timedelta(days=30)
    rotated, new = app_registry.rotate_secret(engine, app.app_id, now=later)
    assert new != old
    assert rotated.secret_generation == 2 and rotated.secret_rotated_at == later
    assert rotated.created_at == T0
    assert app_registry.authenticate_app(engine, app.app_id, old) is None
    assert app_registry.authenticate_app(engine, app.app_id, new) == rotated
    assert app_registry.rotate_secret(engine, app.app_id)[0].secret_generation == 3
    with pytest.raises(HubError) as exc:
        app_registry.rotate_secret(engine, "app-000000000000")
    api_error(exc, "app_not_found", 404)


def test_disabled_app_cannot_authenticate(engine: sa.Engine) -> None:
    app, secret = app_registry.register_app(engine, "switch", "SGB")
    disabled = app_registry.set_status(engine, app.app_id, "disabled")
    assert disabled.status == "disabled" and not disabled.active
    assert app_registry.authenticate_app(engine, app.app_id, secret) is None
    app_registry.set_status(engine, app.app_id, "active")
    assert app_registry.authenticate_app(engine, app.app_id, secret) is not None
    with pytest.raises(ValueError):
        app_registry.set_status(engine, app.app_id, "deleted")  # type: ignore[arg-type]
    with pytest.raises(HubError) as exc:
        app_registry.set_status(engine, "app-000000000000", "disabled")
    api_error(exc, "app_not_found", 404)


def test_authenticate_app_compares_on_every_path(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unknown id, disabled app and wrong secret all hash and compare once (no cheap early exit)."""
    app, secret = app_registry.register_app(engine, "counted", "SGB")
    other, _ = app_registry.register_app(engine, "disabled one", "SGB")
    app_registry.set_status(engine, other.app_id, "disabled")
    calls: list[str] = []
    real = passwords.client_secret_matches

    def counting(stored: str, given: str) -> bool:
        calls.append(stored)
        return real(stored, given)

    monkeypatch.setattr(app_registry, "client_secret_matches", counting)
    for client_id, given in [
        ("app-000000000000", secret),
        (other.app_id, secret),
        (app.app_id, "wrong"),
        (app.app_id, secret),
    ]:
        before = len(calls)
        app_registry.authenticate_app(engine, client_id, given)
        assert len(calls) == before + 1
    assert len(set(map(len, calls))) == 1  # the dummy is a real sha256 hex digest too


# ---- staff --------------------------------------------------------------------------------


def test_create_and_authenticate_staff(engine: sa.Engine) -> None:
    user = staff.create_staff(engine, "zhang", "GAJ", ["approver", "publisher"], PW, now=T0)
    assert user == staff.StaffUser("zhang", "GAJ", frozenset({"approver", "publisher"}), "active", 1)
    assert staff.get_staff(engine, "zhang") == user
    assert staff.authenticate_staff(engine, "zhang", PW) == user
    assert staff.authenticate_staff(engine, "zhang", PW + "!") is None
    assert staff.authenticate_staff(engine, "nobody", PW) is None
    with engine.connect() as conn:
        row = conn.execute(sa.select(tables.staff)).one()
    assert row.password_hash.startswith("$argon2id$") and PW not in row.password_hash
    assert row.roles == ["publisher", "approver"]  # stored in the canonical order
    assert user.to_json()["roles"] == ["publisher", "approver"]


def test_roles_and_scope() -> None:
    approver = staff.StaffUser("a", "GAJ", frozenset({"approver"}), "active", 1)
    assert approver.has("approver") and not approver.has("auditor") and not approver.has("admin")
    assert approver.covers("GAJ") and not approver.covers("SGB")
    admin = staff.StaffUser("b", "GAJ", frozenset({"admin"}), "active", 1)
    assert all(admin.has(r) for r in staff.ROLES)
    assert admin.covers("GAJ") and not admin.covers("SGB")
    hub = staff.StaffUser("c", None, frozenset({"auditor"}), "active", 1)
    assert hub.covers("GAJ") and hub.covers("SGB")
    assert hub.has("auditor") and not hub.has("approver")


def test_create_staff_errors(engine: sa.Engine) -> None:
    cases = [
        (("u1", "GAJ", ["approver", "boss"], PW), "unknown_role", 400),
        (("u1", "GAJ", [], PW), "roles_required", 400),
        (("u1", "NOPE", ["approver"], PW), "department_not_found", 404),
        (("u1", "GAJ", ["approver"], "short"), "weak_password", 400),
        (("u1", None, ["approver"], PW), "hub_wide_role", 400),
        (("u1", None, ["auditor", "publisher"], PW), "hub_wide_role", 400),
    ]
    for args, code, status in cases:
        with pytest.raises(HubError) as exc:
            staff.create_staff(engine, *args)
        api_error(exc, code, status)
    assert staff.list_staff(engine) == []
    staff.create_staff(engine, "u1", "GAJ", ["approver"], PW)
    with pytest.raises(HubError) as exc:
        staff.create_staff(engine, "u1", "SGB", ["publisher"], PW)
    api_error(exc, "staff_exists", 409)


def test_hub_wide_accounts(engine: sa.Engine) -> None:
    auditor = staff.create_staff(engine, "jiancha", None, ["auditor"], PW)
    admin = staff.create_staff(engine, "root", None, ["admin", "approver"], PW)
    assert auditor.department_code is None and admin.department_code is None
    assert [u.username for u in staff.list_staff(engine)] == ["jiancha", "root"]


def test_disabled_staff_cannot_log_in(engine: sa.Engine) -> None:
    staff.create_staff(engine, "li", "SGB", ["publisher"], PW)
    assert staff.set_status(engine, "li", "disabled").status == "disabled"
    assert staff.authenticate_staff(engine, "li", PW) is None
    staff.set_status(engine, "li", "active")
    assert staff.authenticate_staff(engine, "li", PW) is not None
    with pytest.raises(HubError) as exc:
        staff.set_status(engine, "nobody", "active")
    api_error(exc, "staff_not_found", 404)


def test_authenticate_staff_verifies_on_every_path(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unknown, disabled and wrong-password logins all cost one argon2 verification."""
    staff.create_staff(engine, "wang", "GAJ", ["approver"], PW)
    staff.create_staff(engine, "zhao", "GAJ", ["approver"], PW)
    staff.set_status(engine, "zhao", "disabled")
    verified: list[str] = []
    real = passwords.verify_password

    def counting(stored: str, given: str) -> bool:
        verified.append(stored)
        return real(stored, given)

    monkeypatch.setattr(staff, "verify_password", counting)
    for username, given in [("ghost", PW), ("zhao", PW), ("wang", "wrong password!"), ("wang", PW)]:
        before = len(verified)
        staff.authenticate_staff(engine, username, given)
        assert len(verified) == before + 1
    assert verified[0] == passwords.dummy_password_hash()
    assert all(v.startswith("$argon2id$") for v in verified)


def test_login_rehashes_outdated_hash(engine: sa.Engine) -> None:
    staff.create_staff(engine, "chen", "FY", ["approver"], PW)
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PW)
    with engine.begin() as conn:
        conn.execute(tables.staff.update().values(password_hash=old))
    assert staff.authenticate_staff(engine, "chen", "not the password") is None
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(tables.staff.c.password_hash)).scalar_one() == old
        )  # no rehash on failure
    user = staff.authenticate_staff(engine, "chen", PW)
    assert user is not None and user.password_generation == 1  # same password, same generation
    with engine.connect() as conn:
        new = conn.execute(sa.select(tables.staff.c.password_hash)).scalar_one()
    assert new != old and not passwords.needs_rehash(new) and passwords.verify_password(new, PW)
    assert staff.authenticate_staff(engine, "chen", PW) == user


def test_set_password_bumps_generation(engine: sa.Engine) -> None:
    staff.create_staff(engine, "sun", "RSJ", ["auditor"], PW, now=T0)
    user = staff.set_password(engine, "sun", "a brand new passphrase", now=T0 + dt.timedelta(days=1))
    assert user.password_generation == 2
    assert staff.authenticate_staff(engine, "sun", PW) is None
    assert staff.authenticate_staff(engine, "sun", "a brand new passphrase") == user
    with engine.connect() as conn:
        changed = conn.execute(sa.select(tables.staff.c.password_changed_at)).scalar_one()
    assert changed.replace(tzinfo=dt.UTC) == T0 + dt.timedelta(days=1)
    with pytest.raises(HubError) as exc:
        staff.set_password(engine, "sun", "short")
    api_error(exc, "weak_password", 400)
    with pytest.raises(HubError) as exc:
        staff.set_password(engine, "nobody", "long enough password")
    api_error(exc, "staff_not_found", 404)


def test_set_roles_and_list(engine: sa.Engine) -> None:
    staff.create_staff(engine, "a1", "GAJ", ["publisher"], PW)
    staff.create_staff(engine, "b1", "SGB", ["approver"], PW)
    staff.create_staff(engine, "hub", None, ["auditor"], PW)
    assert staff.set_roles(engine, "a1", ["approver", "admin"]).roles == frozenset({"approver", "admin"})
    with pytest.raises(HubError) as exc:
        staff.set_roles(engine, "hub", ["approver"])
    api_error(exc, "hub_wide_role", 400)
    with pytest.raises(HubError) as exc:
        staff.set_roles(engine, "a1", ["root"])
    api_error(exc, "unknown_role", 400)
    with pytest.raises(HubError) as exc:
        staff.set_roles(engine, "nobody", ["approver"])
    api_error(exc, "staff_not_found", 404)
    assert [u.username for u in staff.list_staff(engine, "GAJ")] == ["a1"]
    assert [u.username for u in staff.list_staff(engine)] == ["a1", "b1", "hub"]


def test_every_error_code_has_its_http_status_in_one_place() -> None:
    """Domain code raises codes without any HTTP status; the API's table answers each one."""
    dynamic = {"http_error"}  # the status the HTTP parser chose
    assert set(MESSAGES) - dynamic == set(HTTP_STATUS), set(MESSAGES) ^ set(HTTP_STATUS)
    assert all(100 <= s < 600 for s in HTTP_STATUS.values())
