"""The grade policy: the table, its overrides, and where it changes what the hub allows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from catalog import publishing
from catalog.access import applications as ap
from catalog.access.staff import StaffUser
from catalog.access.workdays import Calendar
from catalog.db.engine import engine_for
from catalog.directory.grades import DEFAULT_POLICY, GradePolicy, policy_of
from catalog.directory.loader import DirectoryFileError, load_directory_text
from catalog.directory.model import DirectoryFile, Grade
from catalog.errors import HubError

UTC = dt.UTC
T0 = dt.datetime(2025, 9, 29, 2, 0, tzinfo=UTC)

DEPT = {"code": "GRD", "name": "分级测试局"}


def _dataset(code: str, grade: str, *, share: str = "unconditional", open_data: bool = False) -> dict:
    return {
        "code": code,
        "name": f"{grade} 数据",
        "grade": grade,
        "share": {"type": share, "condition": "依法履职" if share == "conditional" else ""},
        "open": {"open": open_data},
        "primary_key": ["id"],
        "fields": [{"name": "id", "label": "编号"}, {"name": "v", "label": "值"}],
        "source": {"kind": "sql", "connection": "x", "table": "t"},
    }


@pytest.fixture
def engine(tmp_path: Path):
    e = engine_for(f"sqlite:///{tmp_path / 'hub.db'}")
    doc = {
        "department": DEPT,
        "datasets": [
            _dataset("GRD-GEN", "general"),
            _dataset("GRD-IMP", "important"),
            _dataset("GRD-CORE", "core"),
        ],
    }
    publishing.publish(e, DirectoryFile.model_validate(doc), source_file="grd.yaml")
    return e


@pytest.fixture
def app_id(engine) -> str:
    from catalog.access import app_registry

    app, _ = app_registry.register_app(engine, "分级应用", "GRD")
    return app.app_id


def _submit(engine, app_id, code, **kw) -> ap.Application:
    args = {
        "fields": None, "purpose": "核验", "legal_basis": "条例", "calendar": Calendar(), "deadline_days": 10,
        "default_rate_limit": 600, "now": T0,
    }  # fmt: skip
    args.update(kw)
    return ap.submit(engine, app_id, code, **args)


APPROVER = StaffUser("grd-approver", "GRD", frozenset({"approver"}), "active", 1)


def test_the_default_table() -> None:
    core, important, general = (
        DEFAULT_POLICY[Grade.CORE],
        DEFAULT_POLICY["important"],
        DEFAULT_POLICY["general"],
    )
    assert not core.may_be_open and not core.may_auto_grant and core.max_grant_days == 90
    assert core.clear_needs_second_approval and not core.bulk_allowed and core.purpose_always
    assert important.max_grant_days < 366 and important.max_rate_limit < general.max_rate_limit
    assert general.may_be_open and general.max_grant_days is None
    assert [r["grade"] for r in DEFAULT_POLICY.table()] == ["general", "important", "core"]


def test_overrides_and_bad_overrides() -> None:
    p = GradePolicy({"important": {"max_grant_days": 180}})
    assert p["important"].max_grant_days == 180 and p["core"] == DEFAULT_POLICY["core"]
    for bad in ({"secret": {}}, {"core": {"max_days": 1}}, {"core": {"default_rate_limit": 999}}):
        with pytest.raises(ValueError):
            GradePolicy(bad)

    class S:
        def __init__(self) -> None:
            self.grade_policy = {"general": {"may_be_open": False}}

    assert policy_of(S())["general"].may_be_open is False


def test_audit_retention_has_a_legal_floor() -> None:
    # whole years, counting leap days: the enforced minimum never falls short of the years
    assert [r["audit_retention_days"] for r in DEFAULT_POLICY.table()] == [1096, 1827, 3653]
    assert GradePolicy({"general": {"audit_retention_days": 180}})["general"].audit_retention_days == 180
    for bad in (179, 0, -1, 365.5, True, "1096"):
        with pytest.raises(ValueError, match=r"audit_retention_days must be .*at least 180 \(网络安全法"):
            GradePolicy({"general": {"audit_retention_days": bad}})


def test_a_core_dataset_declared_open_is_refused_with_its_line() -> None:
    doc = {
        "department": DEPT,
        "datasets": [_dataset("GRD-GEN", "general"), _dataset("GRD-CORE", "core", open_data=True)],
    }
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    with pytest.raises(DirectoryFileError) as e:
        load_directory_text(text, "grd.yaml")
    (p,) = e.value.problems
    lines = text.splitlines()
    core_at = next(i for i, t in enumerate(lines) if "GRD-CORE" in t)
    open_line = next(i for i, t in enumerate(lines, 1) if i > core_at and t.strip() == "open: true")
    assert (p.file, p.line) == ("grd.yaml", open_line) and "datasets[1].open.open" in p.field
    assert "core" in p.message and "may not be open" in p.message
    # the same file passes under a policy that allows it, and publishing checks it too
    assert load_directory_text(text, "grd.yaml", policy=GradePolicy({"core": {"may_be_open": True}}))
    with pytest.raises(DirectoryFileError):
        publishing.publish(engine_for("sqlite://"), DirectoryFile.model_validate(doc), source_file="grd.yaml")


def test_core_is_never_granted_automatically(engine, app_id) -> None:
    a = _submit(engine, app_id, "GRD-CORE")
    assert a.status == "pending" and a.grant_id is None
    g = _submit(engine, app_id, "GRD-GEN")
    assert g.status == "approved"


def test_grant_periods_and_rate_limits_follow_the_grade(engine, app_id) -> None:
    with pytest.raises(HubError) as e:
        _submit(engine, app_id, "GRD-CORE", requested_until=dt.date(2026, 1, 31))
    assert e.value.code == "grant_too_long" and e.value.params["days"] == 90
    a = _submit(engine, app_id, "GRD-CORE")
    for kw, code in (
        ({"valid_until": dt.date(2026, 3, 1)}, "grant_too_long"),
        ({"rate_limit": 121}, "rate_limit_too_high"),
    ):
        with pytest.raises(HubError) as e:
            ap.decide(engine, a.id, APPROVER, approve=True, default_rate_limit=600, now=T0, **kw)
        assert e.value.code == code
    assert ap.get_application(engine, a.id).status == "pending"  # refused decisions change nothing
    d = ap.decide(engine, a.id, APPROVER, approve=True, default_rate_limit=600, now=T0)
    (g,) = ap.list_grants(engine, app_id=app_id)
    assert d.status == "approved" and g.rate_limit == 60
    assert g.valid_until == ap.end_of_day_utc(dt.date(2025, 9, 29) + dt.timedelta(days=90))  # the longest


def test_a_policy_override_changes_the_answer(engine, app_id) -> None:
    lenient = GradePolicy({"core": {"may_auto_grant": True, "max_grant_days": None}})
    a = _submit(engine, app_id, "GRD-CORE", policy=lenient, requested_until=dt.date(2027, 1, 1))
    assert a.status == "approved"


def test_bulk_access_follows_the_grade(tmp_path) -> None:
    """A deployment lets important data be open, but not downloaded in bulk: the download answers
    404 (audited as bulk_not_allowed) and the dataset page offers no download."""
    import pyarrow as pa
    from fastapi.testclient import TestClient

    from catalog.directory import store
    from catalog.serving import tables as serving
    from tests.catalog.api_hub import build_hub

    overrides = {"important": {"may_be_open": True}}
    hub = build_hub(tmp_path, portal=True, grade_policy=overrides)
    doc = {"department": DEPT, "datasets": [_dataset("GRD-IMP", "important", open_data=True)]}
    publishing.publish(
        hub.engine, DirectoryFile.model_validate(doc), source_file="grd.yaml", policy=GradePolicy(overrides)
    )
    spec = store.get_dataset(hub.engine, "GRD-IMP").spec
    serving.ensure_serving_table(hub.engine, spec)
    serving.refresh(hub.engine, spec, pa.table({"id": ["1"], "v": ["x"]}), run_id="r1", replace=True)
    client = TestClient(hub.client.app)
    assert client.get("/api/v1/datasets/GRD-IMP/download").status_code == 404
    assert hub.last_audit()["reason"] == "bulk_not_allowed"
    assert client.get("/api/v1/datasets/SCJ-OPEN/download").status_code == 200  # general: allowed
    page = client.get("/portal/datasets/GRD-IMP").text
    assert "download?format=csv" not in page and "/portal/policy" in page
    policy_page = client.get("/portal/policy").text
    assert "数据分级管控策略" in policy_page and 'id="grade-policy"' in policy_page


def test_policy_show_prints_the_table_in_force(tmp_path, monkeypatch) -> None:
    import json

    from typer.testing import CliRunner

    from sharehub.cli.main import app
    from sharehub.settings import get_settings

    monkeypatch.setenv("SHAREHUB_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("SHAREHUB_GRADE_POLICY", json.dumps({"important": {"max_grant_days": 180}}))
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(app, ["policy", "show", "--json"])
        assert out.exit_code == 0, out.output
        rows = {r["grade"]: r for r in json.loads(out.stdout)}
        assert rows["important"]["max_grant_days"] == 180 and rows["core"]["max_grant_days"] == 90
        monkeypatch.setenv("SHAREHUB_GRADE_POLICY", json.dumps({"secret": {}}))
        get_settings.cache_clear()
        bad = CliRunner().invoke(app, ["policy", "show"])
        assert bad.exit_code != 0
    finally:
        get_settings.cache_clear()


def test_important_and_core_calls_always_state_their_purpose(tmp_path) -> None:
    """Data that is not personal needs no purpose headers — unless its grade says every call
    does (important and core by default)."""
    import pyarrow as pa

    from catalog.directory import store
    from catalog.serving import tables as serving
    from tests.catalog.api_hub import build_hub

    hub = build_hub(tmp_path)
    doc = {"department": DEPT, "datasets": [_dataset("GRD-GEN", "general"), _dataset("GRD-IMP", "important")]}
    publishing.publish(hub.engine, DirectoryFile.model_validate(doc), source_file="grd.yaml")
    app_id = hub.apps["企业开办"][0]
    for code in ("GRD-GEN", "GRD-IMP"):
        spec = store.get_dataset(hub.engine, code).spec
        serving.ensure_serving_table(hub.engine, spec)
        serving.refresh(hub.engine, spec, pa.table({"id": ["1"], "v": ["x"]}), run_id="r1", replace=True)
        assert _submit(hub.engine, app_id, code, now=dt.datetime.now(UTC)).status == "approved"
    bare = hub.as_app("企业开办", purpose=False)
    assert (
        hub.client.get("/api/v1/datasets/GRD-GEN/records", params={"id": "1"}, headers=bare).status_code
        == 200
    )
    r = hub.client.get("/api/v1/datasets/GRD-IMP/records", params={"id": "1"}, headers=bare)
    assert r.status_code == 400 and r.json()["error"]["code"] == "purpose_required"
    with_purpose = hub.as_app("企业开办")
    assert (
        hub.client.get(
            "/api/v1/datasets/GRD-IMP/records", params={"id": "1"}, headers=with_purpose
        ).status_code
        == 200
    )


def test_raising_a_grade_narrows_the_grants_at_once_and_says_why(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from tests.catalog.api_hub import build_hub
    from tests.catalog.portal.conftest import sign_in

    hub = build_hub(tmp_path, portal=True)
    secret_v = {"name": "v", "label": "值", "sensitivity": "sensitive", "mask": "full"}
    gen = {**_dataset("GRD-UP", "general"), "fields": [{"name": "id", "label": "编号"}, secret_v]}
    publishing.publish(
        hub.engine, DirectoryFile.model_validate({"department": DEPT, "datasets": [gen]}), source_file="v1"
    )
    app_id = hub.apps["不动产登记"][0]
    now = dt.datetime.now(UTC)
    a = _submit(hub.engine, app_id, "GRD-UP", clear_fields=["v"], now=now)  # clear: waits for the owner
    ap.decide(hub.engine, a.id, APPROVER, approve=True, default_rate_limit=600, rate_limit=1000, now=now)
    (before,) = ap.list_grants(hub.engine, app_id=app_id)
    assert before.valid_until is None and before.clear_fields == ["v"] and before.rate_limit == 1000

    core = {**gen, "grade": "core"}
    publishing.publish(
        hub.engine, DirectoryFile.model_validate({"department": DEPT, "datasets": [core]}), source_file="v2"
    )
    (after,) = ap.list_grants(hub.engine, app_id=app_id)
    assert after.clear_fields == [] and after.rate_limit == 120  # masked until re-approved; core's ceiling
    assert after.valid_until is not None and after.valid_until <= ap.end_of_day_utc(
        now.date() + dt.timedelta(days=91)
    )
    assert after.narrowed_at is not None and "grade raised from general to core" in after.narrowed_reason
    # the holder reads it in its grants
    listed = hub.client.get("/api/v1/grants", headers=hub.as_app("不动产登记", purpose=False)).json()["items"]
    assert "grade raised from general to core" in listed[0]["narrowed_reason"]
    # and the applicant department's staff read it in the portal, beside the grant
    portal = sign_in(TestClient(hub.client.app), hub.engine, "zgj_app").get("/portal/applications").text
    assert "因数据分级提高而收窄" in portal and "grade raised from general to core" in portal
    # lowering it again widens nothing
    publishing.publish(
        hub.engine, DirectoryFile.model_validate({"department": DEPT, "datasets": [gen]}), source_file="v3"
    )
    (again,) = ap.list_grants(hub.engine, app_id=app_id)
    assert again.clear_fields == [] and again.rate_limit == 120
