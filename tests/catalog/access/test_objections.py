"""Data objections: the rules, the API as a hostile app and a careless department, the CLI."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from catalog.access import applications, objections, staff
from catalog.access.workdays import Calendar
from catalog.db import tables
from catalog.errors import HubError
from tests.catalog.api_hub import PASSWORD, USCC

KEY = {"uscc": USCC[0]}


def _grant(hub, app: str, fields: list[str]) -> None:
    a = applications.submit(
        hub.engine,
        hub.apps[app][0],
        "SCJ-LIC",
        fields=fields,
        purpose="核验",
        legal_basis="条例",
        calendar=Calendar(),
        deadline_days=10,
        default_rate_limit=600,
    )
    approver = staff.get_staff(hub.engine, "scj_appr") or staff.create_staff(
        hub.engine, "scj_appr", "SCJ", ["approver"], PASSWORD
    )
    applications.decide(hub.engine, a.id, approver, approve=True, default_rate_limit=600)


def _raise(hub, app: str, **body):
    payload = {
        "dataset": "SCJ-LIC",
        "record_key": KEY,
        "field": "ent_name",
        "reason": "企业名称已变更",
        **body,
    }
    return hub.client.post("/api/v1/objections", json=payload, headers=hub.as_app(app, purpose=False))


def test_an_app_needs_a_grant_and_may_object_only_to_released_fields(api_hub) -> None:
    r = _raise(api_hub, "不动产登记")
    assert r.status_code == 403 and r.json()["error"]["code"] == "no_grant"
    _grant(api_hub, "不动产登记", ["uscc", "ent_name"])
    r = _raise(api_hub, "不动产登记", field="legal_rep")
    assert r.status_code == 403 and r.json()["error"]["code"] == "field_not_granted"
    r = _raise(api_hub, "不动产登记")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "open" and body["department_code"] == "SCJ" and body["record_key"] == KEY
    assert body["raised_by"] == api_hub.apps["不动产登记"][0] and body["raised_department"] == "ZGJ"
    assert api_hub.last_audit()["action"] == "objections.raise"


@pytest.mark.parametrize(
    "record_key",
    [{}, {"uscc": ""}, {"uscc": USCC[0], "ent_name": "x"}, {"other": "x"}, {"uscc": True}],
)
def test_malformed_record_keys_are_refused(api_hub, record_key) -> None:
    _grant(api_hub, "不动产登记", ["uscc", "ent_name"])
    r = _raise(api_hub, "不动产登记", record_key=record_key)
    assert r.status_code in (400, 422)
    assert objections.list_objections(api_hub.engine) == []


def test_blank_reason_unknown_field_and_closed_data_are_refused(api_hub) -> None:
    _grant(api_hub, "不动产登记", ["uscc", "ent_name"])
    assert _raise(api_hub, "不动产登记", reason="   ").json()["error"]["code"] == "text_required"
    assert _raise(api_hub, "不动产登记", field="nope").json()["error"]["code"] == "unknown_field"
    assert _raise(api_hub, "不动产登记", dataset="NOPE-1").status_code == 404


def test_due_date_counts_working_days_and_overdue_follows(api_hub) -> None:
    friday = dt.datetime(2025, 9, 26, 2, tzinfo=dt.UTC)
    o = objections.raise_objection(
        api_hub.engine,
        Calendar.china(),
        dataset_code="SCJ-LIC",
        record_key=KEY,
        field=None,
        reason="名称错误",
        evidence=None,
        raised_by_kind="staff",
        raised_by="zgj_pub",
        raised_department="ZGJ",
        answer_days=5,
        at=friday,
    )
    # Sun 28 (调休 worked), Mon 29, Tue 30, then the National Day holiday: Thu Oct 9, Fri Oct 10
    assert o.due_date == dt.date(2025, 10, 10)
    listed = objections.list_objections(api_hub.engine, overdue=True, today=dt.date(2025, 10, 11))
    assert [x.id for x in listed] == [o.id] and listed[0].overdue
    assert objections.list_objections(api_hub.engine, overdue=True, today=dt.date(2025, 10, 10)) == []


def test_the_provider_answers_once_and_the_reporter_sees_it(api_hub) -> None:
    _grant(api_hub, "不动产登记", ["uscc", "ent_name"])
    oid = _raise(api_hub, "不动产登记").json()["id"]
    staff.create_staff(api_hub.engine, "zgj_pub", "ZGJ", ["publisher"], PASSWORD)
    staff.create_staff(api_hub.engine, "scj_pub", "SCJ", ["publisher"], PASSWORD)
    # the reporter's own department cannot answer; an approver of the provider is no steward
    r = api_hub.client.post(
        f"/api/v1/objections/{oid}/answer", json={"status": "corrected"}, headers=api_hub.as_staff("zgj_pub")
    )
    assert r.status_code == 404
    r = api_hub.client.post(
        f"/api/v1/objections/{oid}/answer", json={"status": "corrected"}, headers=api_hub.as_staff("scj_appr")
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_role"
    # an app cannot answer at all
    r = api_hub.client.post(
        f"/api/v1/objections/{oid}/answer",
        json={"status": "corrected"},
        headers=api_hub.as_app("不动产登记", purpose=False),
    )
    assert r.status_code == 403
    r = api_hub.client.post(
        f"/api/v1/objections/{oid}/answer", json={"status": "rejected"}, headers=api_hub.as_staff("scj_pub")
    )
    assert r.json()["error"]["code"] == "text_required"
    r = api_hub.client.post(
        f"/api/v1/objections/{oid}/answer",
        json={"status": "confirmed", "answer": "经核实与登记一致"},
        headers=api_hub.as_staff("scj_pub"),
    )
    assert r.status_code == 200 and r.json()["answered_by"] == "scj_pub"
    again = api_hub.client.post(
        f"/api/v1/objections/{oid}/answer", json={"status": "corrected"}, headers=api_hub.as_staff("scj_pub")
    )
    assert again.status_code == 409
    seen = api_hub.client.get(
        f"/api/v1/objections/{oid}", headers=api_hub.as_app("不动产登记", purpose=False)
    ).json()
    assert seen["status"] == "confirmed" and seen["answer"] == "经核实与登记一致"


def test_nobody_sees_anothers_objections(api_hub) -> None:
    _grant(api_hub, "不动产登记", ["uscc", "ent_name"])
    secret = "只有不动产登记能看到的理由-7f3a"
    oid = _raise(api_hub, "不动产登记", reason=secret).json()["id"]
    _grant(api_hub, "企业开办", ["uscc", "ent_name"])
    other = api_hub.as_app("企业开办", purpose=False)
    listing = api_hub.client.get("/api/v1/objections", headers=other)
    assert listing.status_code == 200 and secret not in listing.text and listing.json()["count"] == 0
    assert api_hub.client.get(f"/api/v1/objections/{oid}", headers=other).status_code == 404
    staff.create_staff(api_hub.engine, "rsj_pub", "RSJ", ["publisher"], PASSWORD)
    r = api_hub.client.get("/api/v1/objections", headers=api_hub.as_staff("rsj_pub"))
    assert secret not in r.text
    assert (
        api_hub.client.get(f"/api/v1/objections/{oid}", headers=api_hub.as_staff("rsj_pub")).status_code
        == 404
    )
    staff.create_staff(api_hub.engine, "scj_pub", "SCJ", ["publisher"], PASSWORD)
    assert secret in api_hub.client.get("/api/v1/objections", headers=api_hub.as_staff("scj_pub")).text


def test_answer_race_answers_once(api_hub) -> None:
    o = objections.raise_objection(
        api_hub.engine,
        Calendar(),
        dataset_code="SCJ-LIC",
        record_key=KEY,
        field=None,
        reason="错",
        evidence=None,
        raised_by_kind="staff",
        raised_by="x",
        raised_department="ZGJ",
        answer_days=5,
    )
    pub = staff.create_staff(api_hub.engine, "scj_pub", "SCJ", ["publisher"], PASSWORD)
    objections.answer_objection(api_hub.engine, o.id, status="corrected", answer="", by=pub)
    with pytest.raises(HubError) as e:
        objections.answer_objection(api_hub.engine, o.id, status="rejected", answer="不", by=pub)
    assert e.value.code == "already_answered"


def test_cli_lists_and_answers(api_hub, monkeypatch) -> None:
    from sharehub.cli.main import app

    o = objections.raise_objection(
        api_hub.engine,
        Calendar(),
        dataset_code="SCJ-LIC",
        record_key=KEY,
        field="ent_name",
        reason="名称有误",
        evidence="营业执照副本",
        raised_by_kind="staff",
        raised_by="zgj_pub",
        raised_department="ZGJ",
        answer_days=5,
    )
    staff.create_staff(api_hub.engine, "scj_pub", "SCJ", ["publisher"], PASSWORD)
    monkeypatch.setenv("SHAREHUB_VAR_DIR", str(api_hub.settings.var_dir))
    from sharehub.settings import get_settings

    get_settings.cache_clear()
    try:
        runner = CliRunner()
        out = runner.invoke(app, ["objections", "list", "--json"])
        assert out.exit_code == 0, out.output
        assert json.loads(out.stdout)[0]["reason"] == "名称有误"
        out = runner.invoke(
            app, ["objections", "answer", str(o.id), "--as", "scj_pub", "--status", "corrected"]
        )
        assert out.exit_code == 0, out.output
        assert objections.get_objection(api_hub.engine, o.id).status == "corrected"
        out = runner.invoke(
            app, ["objections", "answer", str(o.id), "--as", "scj_pub", "--status", "corrected"]
        )
        assert out.exit_code == 1 and "already_answered" in out.output
    finally:
        get_settings.cache_clear()


def test_each_step_is_in_the_audit_chain(api_hub) -> None:
    _grant(api_hub, "不动产登记", ["uscc", "ent_name"])
    oid = _raise(api_hub, "不动产登记").json()["id"]
    staff.create_staff(api_hub.engine, "scj_pub", "SCJ", ["publisher"], PASSWORD)
    api_hub.client.post(
        f"/api/v1/objections/{oid}/answer", json={"status": "corrected"}, headers=api_hub.as_staff("scj_pub")
    )
    with api_hub.engine.connect() as conn:
        actions = [
            r.action
            for r in conn.execute(
                sa.select(tables.audit.c.action).where(tables.audit.c.path.like("/api/v1/objections%"))
            )
        ]
    assert actions == ["objections.raise", "objections.answer"]
