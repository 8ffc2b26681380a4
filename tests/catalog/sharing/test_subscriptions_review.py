"""Adversarial review of subscriptions (订阅), by a helper session: each test showed a promise of
docs/exchange.md ("Subscriptions") that the code did not keep; all 13 findings are fixed, and the
tests stay to keep them fixed."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from catalog import publishing
from catalog.access import applications
from catalog.db import tables
from catalog.directory.grades import DEFAULT_POLICY
from catalog.directory.model import DirectoryFile
from catalog.errors import HubError
from catalog.sharing import subscriptions
from sharehub import pipeline
from tests.catalog.sharing import sharing_hub
from tests.catalog.sharing.sharing_hub import CODE, SharingHub, build


class Crash(Exception):
    pass


def _crash_at(where: str) -> Any:
    def fault(point: str) -> None:
        if point == where:
            raise Crash(point)

    return fault


def _subscribe(hub: SharingHub, app: str, table: str, mode: str = "mirror", ref: str = "tjj_db") -> Any:
    return subscriptions.subscribe(
        hub.engine, hub.apps[app][0], CODE, target_ref=ref, target_table=table, mode=mode, by="ops",
        policy=DEFAULT_POLICY,
    )  # fmt: skip


def _deliver(hub: SharingHub, sub: Any, url: str | None, **kw: Any) -> dict[str, Any]:
    lake = pipeline.hub(hub.settings).lake
    return subscriptions.deliver(hub.engine, lake, sub.id, target_url=url, policy=DEFAULT_POLICY, **kw)


def _audited(hub: SharingHub, sub_id: int) -> list[tuple[int, list[str]]]:
    a = tables.audit
    q = sa.select(a.c.row_count, a.c.fields).where(
        a.c.action == "subscription.deliver", a.c.path == f"/subscriptions/{sub_id}", a.c.decision == "allow"
    )
    with hub.engine.connect() as conn:
        return [(int(r[0]), list(r[1] or [])) for r in conn.execute(q)]


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def _republish(hub: SharingHub, edit: Any) -> None:
    """Publish the test directory again, changed by ``edit(directory)``."""
    directory = copy.deepcopy(sharing_hub.DIRECTORY)
    edit(directory)
    publishing.publish(hub.engine, DirectoryFile.model_validate(directory), source_file="shr.yaml")


def _revoke_all(hub: SharingHub, app: str) -> None:
    for g in applications.list_grants(hub.engine, app_id=hub.apps[app][0], active_only=True):
        applications.revoke(hub.engine, g.id, by="shr_approver", reason="改授权")


def _sensitive_amount(d: dict[str, Any]) -> None:
    for f in d["datasets"][0]["fields"]:
        if f["name"] == "amount":
            f.update(sensitivity="sensitive", mask="full")  # an integer field: masked as "****"


# ---- promise 2: the target equals the granted, masked view after a grant change -------------


@pytest.mark.services
@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_a_field_turning_from_clear_to_masked_reloads_the_mirror_and_feeds_the_append_table(
    tmp_path: Path, request: pytest.FixtureRequest, kind: str
) -> None:
    """MEDIUM. A sensitive non-text field (integer, date, timestamp: masked ``****``) granted in
    clear and then masked (a new grant, or ``narrow_for_grade`` re-masking it when the grade is
    raised) changes the column's type, but ``_prepare`` compares column *names* only: the mirror
    "reload" empties the BIGINT table and inserts '****' into it, which PostgreSQL and MariaDB
    (strict) refuse — every delivery fails from then on, and the target keeps the field's CLEAR
    values that the grant now masks. The append table fails the same way at its next insert."""
    url = str(request.getfixturevalue("pg_url" if kind == "postgresql" else "mariadb_url"))
    hub = build(tmp_path)
    _republish(hub, _sensitive_amount)
    hub.sync()
    hub.grant("统计分析", ["pid", "amount"], clear=["amount"])
    mirror = _subscribe(hub, "统计分析", "people_mirror")
    append = _subscribe(hub, "统计分析", "people_changes", mode="append")
    for sub in (mirror, append):
        assert _deliver(hub, sub, url)["status"] == "success"
    _revoke_all(hub, "统计分析")
    hub.grant("统计分析", ["pid", "amount"])  # amount now masked
    hub.add(range(51, 53), at=dt.datetime(2026, 11, 3, 9, 0))
    hub.sync()
    for sub in (mirror, append):
        try:
            done = _deliver(hub, sub, url)
        except Exception as exc:  # the failure is the finding
            pytest.fail(f"{sub.mode} delivery after clear->masked failed: {str(exc)[:200]}")
        assert done["status"] == "success"
    assert {str(r[0]) for r in _rows(url, "SELECT amount FROM people_mirror")} == {"****"}
    new = _rows(url, "SELECT amount FROM people_changes WHERE pid > 50")
    assert [str(r[0]) for r in new] == ["****", "****"]


# ---- promise 2: schema evolution ---------------------------------------------------------------


def test_an_append_subscription_survives_a_newly_granted_column_that_older_snapshots_lack(
    tmp_path: Path,
) -> None:
    """MEDIUM. The directory gains a field (``email``), a later curated snapshot has it, and the
    grant is renewed to include it. The append subscription's next delivery diffs from the last
    delivered snapshot, which predates the column: ``files.diff`` reads that snapshot with the new
    column and fails ("Could not find column: 'email'") — on every retry, for ever (the docs: "an
    append table gains the new columns"). The mirror survives only because a grant change reloads
    it from the empty table. (Aside, outside the subscriptions code: ``sharehub sync`` itself fails
    after a field is added — serving's reload reads the pre-evolution snapshot — so this test makes
    the new snapshot with ``lake.upsert`` after evolving the curated table as ``publish`` does.)"""
    import pyarrow as pa

    from catalog.directory import store
    from sharehub.pipeline.schemas import declared_schema

    url = f"sqlite:///{tmp_path / 'tjj.db'}"
    hub = build(tmp_path)
    hub.sync()
    hub.grant("统计分析", ["pid", "amount"])
    append = _subscribe(hub, "统计分析", "people_changes", mode="append")
    assert _deliver(hub, append, url)["inserted"] == 50

    _republish(hub, lambda d: d["datasets"][0]["fields"].append({"name": "email", "label": "邮箱"}))
    lake = pipeline.hub(hub.settings).lake
    lake.ensure_table("curated", CODE, declared_schema(store.get_dataset(hub.engine, CODE).spec), key=["pid"])
    rows = lake.read("curated", CODE)
    rows = rows.filter(pa.compute.less_equal(rows.column("pid"), 3))
    emails = pa.array([f"p{p}@x.cn" for p in rows.column("pid").to_pylist()])
    lake.upsert(CODE, rows.set_column(rows.schema.get_field_index("email"), "email", emails), key=["pid"],
                run_id="evolved")  # fmt: skip
    _revoke_all(hub, "统计分析")
    hub.grant("统计分析", ["pid", "amount", "email"])

    try:
        done = _deliver(hub, append, url)
    except Exception as exc:  # the failure is the finding
        pytest.fail(f"append delivery after a new granted column failed: {exc}")
    assert done["status"] == "success" and done["updated"] == 3
    post = _rows(url, "SELECT pid, email FROM people_changes WHERE _change_type = 'update_postimage'")
    assert sorted(post) == [(1, "p1@x.cn"), (2, "p2@x.cn"), (3, "p3@x.cn")]


# ---- promise 2: what the target's column types keep ---------------------------------------------


@pytest.mark.services
def test_a_mariadb_target_keeps_float_and_timestamp_values_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mariadb_url: str
) -> None:
    """MEDIUM. ``_sql_type`` maps float64 to ``sa.Float()`` and timestamps to ``sa.DateTime()``;
    on MariaDB these are FLOAT (4-byte, ~7 digits) and DATETIME (whole seconds). A mirror of a
    ``float`` field 16777217.0 holds 16777216 (distinct values collapse), and timestamps lose
    their microseconds: the target is not the granted view the API gives. (PostgreSQL's FLOAT is
    double precision and its TIMESTAMP keeps microseconds.)"""
    d: dict[str, Any] = copy.deepcopy(sharing_hub.DIRECTORY)
    for f in d["datasets"][0]["fields"]:
        if f["name"] == "amount":
            f["type"] = "float"
    monkeypatch.setattr(sharing_hub, "DIRECTORY", d)
    hub = build(tmp_path, rows=5)
    with sqlite3.connect(hub.source) as db:
        db.execute("UPDATE people SET amount = 16777216 + pid, updated_at = '2026-11-01 08:00:00.123456'")
    hub.sync()
    lake = pipeline.hub(hub.settings).lake
    want = {r["pid"]: (r["amount"], r["updated_at"]) for r in lake.read("curated", CODE).to_pylist()}
    hub.grant("统计分析", ["pid", "amount", "updated_at"])
    mirror = _subscribe(hub, "统计分析", "people_mirror")
    assert _deliver(hub, mirror, mariadb_url)["status"] == "success"
    got = {
        int(r[0]): (float(r[1]), r[2])
        for r in _rows(mariadb_url, "SELECT pid, amount, updated_at FROM people_mirror")
    }
    assert got == want


# ---- promise 5: every delivery audited exactly once, with its rows and fields ---------------------


@pytest.mark.parametrize("stop", ["revoke", "end"])
def test_a_delivery_committed_before_a_crash_is_audited_even_when_delivery_then_stops(
    tmp_path: Path, stop: str
) -> None:
    """MEDIUM. An attempt commits 3 updated rows into the target and dies before the hub records
    it. The healing ("recorded as recovered … with its audit record") only happens in a later
    attempt that gets past the grant and subscription checks. If the grant is revoked (or the
    subscription ended) first, the next attempt is ``stopped`` and returns early: the 3 rows that
    left the hub are never audited, whatever happens later."""
    url = f"sqlite:///{tmp_path / 'tjj.db'}"
    hub = build(tmp_path)
    hub.sync()
    hub.grant("统计分析", ["pid", "name", "amount"])
    mirror = _subscribe(hub, "统计分析", "people_mirror")
    _deliver(hub, mirror, url)
    hub.change(range(1, 4), at=dt.datetime(2026, 11, 2, 9, 0), version=1)
    hub.sync()
    with pytest.raises(Crash):
        _deliver(hub, mirror, url, fault=_crash_at("after_target_commit"))
    assert sorted(_rows(url, "SELECT pid, amount FROM people_mirror WHERE pid <= 3")) == [
        (1, 11),
        (2, 21),
        (3, 31),
    ]
    if stop == "revoke":
        _revoke_all(hub, "统计分析")
    else:
        subscriptions.end(hub.engine, mirror.id, by="ops", reason="系统下线")
    assert _deliver(hub, mirror, url)["status"] == "stopped"
    assert sum(r for r, _f in _audited(hub, mirror.id)) == 50 + 3  # the 3 rows the target holds


def test_a_recovered_delivery_is_audited_with_the_fields_it_released_not_the_new_grants(
    tmp_path: Path,
) -> None:
    """MEDIUM. A crashed-after-commit attempt released 3 rows with ``name`` in CLEAR. Before the
    retry the grant is renewed with ``name`` masked. The retry reloads the mirror and "recovers"
    the crashed delivery with the *current* projection: the audit says ``name:masked`` and counts
    the recovered part as a full diff from the empty table (50 rows) instead of the 3 rows written.
    The audit log misstates what left the hub (clear names audited as masked) and how much."""
    url = f"sqlite:///{tmp_path / 'tjj.db'}"
    hub = build(tmp_path)
    hub.sync()
    hub.grant("统计分析", ["pid", "name", "amount"], clear=["name"])
    mirror = _subscribe(hub, "统计分析", "people_mirror")
    _deliver(hub, mirror, url)
    hub.change(range(1, 4), at=dt.datetime(2026, 11, 2, 9, 0), version=1)
    hub.sync()
    with pytest.raises(Crash):
        _deliver(hub, mirror, url, fault=_crash_at("after_target_commit"))
    _revoke_all(hub, "统计分析")
    hub.grant("统计分析", ["pid", "name", "amount"])  # name masked now
    assert _deliver(hub, mirror, url)["status"] == "success"
    audited = _audited(hub, mirror.id)
    clear = sum(r for r, f in audited if f"{CODE}.name" in f)
    assert (sum(r for r, _f in audited), clear) == (50 + 3 + 50, 50 + 3), audited


def test_two_attempts_at_once_audit_one_delivery_once(tmp_path: Path) -> None:
    """LOW. While attempt A sits between the target's commit and the hub's record (the window the
    crash healing is built for), a second attempt B (``sharehub subscriptions deliver`` next to the
    Airflow run, or a retry of a task Airflow thinks is lost) marks the live A ``interrupted``,
    finds the target ahead of the hub and records the same rows as ``recovered`` with an audit
    record; A then records them as ``success`` with another. 3 rows delivered, 6 audited."""
    url = f"sqlite:///{tmp_path / 'tjj.db'}"
    hub = build(tmp_path)
    hub.sync()
    hub.grant("统计分析", ["pid", "name", "amount"])
    mirror = _subscribe(hub, "统计分析", "people_mirror")
    _deliver(hub, mirror, url)
    hub.change(range(1, 4), at=dt.datetime(2026, 11, 2, 9, 0), version=1)
    hub.sync()

    def second_attempt(point: str) -> None:
        if point == "after_target_commit":
            _deliver(hub, mirror, url)

    _deliver(hub, mirror, url, fault=second_attempt)
    assert sum(r for r, _f in _audited(hub, mirror.id)) == 50 + 3


# ---- promise 6: targets cannot reach somebody else's tables -----------------------------------


def test_a_delivery_never_drops_or_alters_a_table_it_did_not_create(tmp_path: Path) -> None:
    """MEDIUM. ``subscribe`` takes any connection ref — including a dataset's *source* connection
    (``shr_src``, the data owner's own system) — and ``_prepare`` takes over whatever table of that
    name exists: a mirror reload (``--full``, or the first delivery after any grant change) DROPs
    it and creates the mirror in its place. Here the provider's source table ``people`` is
    replaced by the subscription's mirror. Nothing checks that the table is the hub's own (e.g.
    listed in ``_sharehub_deliveries``) or that the ref is a consumer's."""
    from sharehub.pipeline import delivery

    hub = build(tmp_path)
    hub.sync()
    hub.grant("统计分析", ["pid", "amount"])
    try:
        sub = _subscribe(hub, "统计分析", "people", ref="shr_src")  # a source connection, no consumer's
    except HubError:
        sub = None  # refused: fine
    if sub is not None:
        with contextlib.suppress(Exception):  # a refusal at delivery is fine too
            delivery.deliver(sub.id, settings=hub.settings, full=True)
    with sqlite3.connect(hub.source) as db:
        columns = [r[1] for r in db.execute("PRAGMA table_info(people)")]
        assert columns == ["pid", "name", "phone", "city", "amount", "updated_at"]
        assert db.execute("SELECT count(*) FROM people").fetchone() == (50,)


def test_a_consumers_own_table_of_the_same_name_is_left_alone(tmp_path: Path) -> None:
    """MEDIUM (same cause). The consumer's database already has its own ``people`` table. The
    first delivery adds ``_sh_key``, ``pid`` and ``amount`` columns to it and inserts 50 rows; a
    later reload would drop it. The delivery should refuse (recorded, nothing written)."""
    target = tmp_path / "tjj.db"
    with sqlite3.connect(target) as db:
        db.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, note TEXT)")
        db.execute("INSERT INTO people VALUES (1, 'mine')")
    hub = build(tmp_path)
    hub.sync()
    hub.grant("统计分析", ["pid", "amount"])
    mirror = _subscribe(hub, "统计分析", "people")
    for full in (False, True):  # the first delivery, then a reload
        with contextlib.suppress(Exception):  # a refusal is the right outcome
            _deliver(hub, mirror, f"sqlite:///{target}", full=full)
    with sqlite3.connect(target) as db:
        assert [r[1] for r in db.execute("PRAGMA table_info(people)")] == ["id", "note"]
        assert db.execute("SELECT * FROM people").fetchall() == [(1, "mine")]


def test_two_subscriptions_cannot_share_one_target_table(tmp_path: Path) -> None:
    """MEDIUM. Nothing stops two active subscriptions naming the same ref and table (no check in
    ``subscribe``, no unique constraint). Here 另一系统's delivery (name in clear, phone masked)
    adds its columns to 统计分析's mirror and inserts its 50 rows: 统计分析's table now holds 100
    rows and another app's clear names, and each mirror's deletes/reloads wreck the other's."""
    url = f"sqlite:///{tmp_path / 'tjj.db'}"
    hub = build(tmp_path)
    hub.sync()
    hub.grant("统计分析", ["pid", "amount"])
    hub.grant("另一系统", ["pid", "name", "phone"], clear=["name"])
    first = _subscribe(hub, "统计分析", "people")
    assert _deliver(hub, first, url)["status"] == "success"
    try:
        second = _subscribe(hub, "另一系统", "people")
    except HubError:
        return  # refused: the right answer
    with contextlib.suppress(Exception):  # a refusal at delivery is fine too
        _deliver(hub, second, url)
    engine = sa.create_engine(url)
    try:
        columns = {c["name"] for c in sa.inspect(engine).get_columns("people")}
    finally:
        engine.dispose()
    assert columns == {"_sh_key", "pid", "amount"}
    assert len(_rows(url, "SELECT pid FROM people")) == 50


def test_the_bookkeeping_table_name_is_refused_in_any_case(tmp_path: Path) -> None:
    """LOW. ``subscribe`` refuses ``_sharehub_deliveries`` by a case-sensitive prefix test, so
    ``_SHAREHUB_DELIVERIES`` is accepted; on SQLite (and MariaDB with lower_case_table_names=1) it
    *is* the bookkeeping table: the mirror tries to add its columns and rows to it and every
    delivery fails (``NOT NULL constraint failed: _sharehub_deliveries.subscription_id``)."""
    hub = build(tmp_path)
    hub.sync()
    hub.grant("统计分析", ["pid", "amount"])
    with pytest.raises(HubError, match="bad_subscription"):
        _subscribe(hub, "统计分析", "_SHAREHUB_DELIVERIES")


# ---- operations: refs, failures, leaks ------------------------------------------------------------


def test_a_connection_ref_in_upper_case_resolves_as_its_env_variable_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LOW. ``subscribe`` accepts ``--target TJJ_DB`` (the docs spell refs in the env variable's
    upper case), pydantic stores ``SHAREHUB_CONNECTIONS__TJJ_DB`` as ``tjj_db``, and
    ``delivery.deliver`` looks the ref up case-sensitively (``Settings.connection`` would not):
    the delivery stops with "not configured; set SHAREHUB_CONNECTIONS__TJJ_DB" — which is set."""
    from sharehub.pipeline import delivery
    from sharehub.settings import Settings

    monkeypatch.setenv("SHAREHUB_CONNECTIONS__TJJ_DB", f"sqlite:///{tmp_path / 'tjj.db'}")
    hub = build(tmp_path)
    hub.sync()
    hub.grant("统计分析", ["pid", "amount"])
    sub = _subscribe(hub, "统计分析", "people", ref="TJJ_DB")
    done = delivery.deliver(sub.id, settings=Settings(var_dir=tmp_path / "var", batch_size=100))
    assert done["status"] == "success"


def test_a_target_that_cannot_even_be_opened_is_recorded_failed(tmp_path: Path) -> None:
    """LOW. ``sa.create_engine(target_url)`` runs outside the ``try`` that records failures: a
    ref whose URL names a driver that is not installed (``mysql://`` → MySQLdb), an unknown
    dialect or a bad port raises with the attempt left ``running`` and no ``last_error``; the
    portal shows no problem, and the next attempt calls it "killed or lost the hub database"."""
    hub = build(tmp_path)
    hub.sync()
    hub.grant("统计分析", ["pid", "amount"])
    sub = _subscribe(hub, "统计分析", "people")
    with pytest.raises(Exception):  # raised for Airflow to retry: fine
        _deliver(hub, sub, "mysql://tjj:pw@127.0.0.1/tjj")
    assert subscriptions.history(hub.engine, sub.id)[0]["status"] == "failed"
    assert subscriptions.get(hub.engine, sub.id).last_error


@pytest.mark.services
def test_a_failed_connection_does_not_show_the_targets_url_parts(tmp_path: Path) -> None:
    """LOW. The docs: the URL "is never shown: pages, API answers and history name the ref only".
    A failed delivery stores the driver's message verbatim, which carries the consumer database's
    host, port, user and database name (psycopg: 'connection to server at "127.0.0.1", port 5432
    failed: FATAL: role "tjj_loader" does not exist'); the API and the portal show it to both
    departments. Only the password is spared."""
    hub = build(tmp_path)
    hub.sync()
    hub.grant("统计分析", ["pid", "amount"])
    sub = _subscribe(hub, "统计分析", "people")
    url = "postgresql+psycopg://tjj_loader:S3cr3tPw@127.0.0.1:5432/tjj_secret_db?connect_timeout=3"
    with pytest.raises(Exception):
        _deliver(hub, sub, url)
    token = hub.token("统计分析")
    shown = hub.client.get(
        f"/api/v1/subscriptions/{sub.id}/deliveries", headers={"Authorization": f"Bearer {token}"}
    ).text
    assert "S3cr3tPw" not in shown
    for part in ("tjj_loader", "tjj_secret_db", "127.0.0.1"):
        assert part not in shown, part


def test_a_disabled_app_gets_no_more_deliveries(tmp_path: Path) -> None:
    """LOW (not in the docs' list of stops, but the hub's meaning of disabling an app: it
    "cannot authenticate"). Deliveries do not authenticate: they check the grant only, so an app
    disabled as compromised or decommissioned keeps receiving data in its database."""
    from catalog.access import app_registry

    url = f"sqlite:///{tmp_path / 'tjj.db'}"
    hub = build(tmp_path)
    hub.sync()
    hub.grant("统计分析", ["pid", "amount"])
    sub = _subscribe(hub, "统计分析", "people")
    app_registry.set_status(hub.engine, hub.apps["统计分析"][0], "disabled")
    assert _deliver(hub, sub, url)["status"] == "stopped"
