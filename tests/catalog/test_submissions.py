"""Directory review before publication: as a careless department, a hasty reviewer, two at once."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
import yaml

from catalog import submissions
from catalog.access import staff
from catalog.db.engine import engine_for
from catalog.directory import store
from catalog.directory.model import dump_dataset
from catalog.errors import HubError
from tests.catalog.api_hub import PASSWORD, RSJ, SCJ

SCJ_TEXT = yaml.safe_dump(SCJ, allow_unicode=True, sort_keys=False)


def _users(engine: sa.Engine) -> dict[str, staff.StaffUser]:
    out = {}
    for name, dept, roles in (
        ("scj_pub", "SCJ", ["publisher"]),
        ("admin_a", None, ["admin"]),
        ("admin_b", None, ["admin"]),
        ("scj_admin", "SCJ", ["admin"]),
        ("scj_approver", "SCJ", ["approver"]),
        ("rsj_pub", "RSJ", ["publisher"]),
    ):
        out[name] = staff.get_staff(engine, name) or staff.create_staff(engine, name, dept, roles, PASSWORD)
    return out


def _changed_text(summary: str = "审核后的摘要") -> str:
    doc = {**SCJ, "datasets": [dict(d) for d in SCJ["datasets"]]}
    doc["datasets"][0] = {**doc["datasets"][0], "summary": summary}
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def test_problems_name_the_line_and_field() -> None:
    broken = "department:\n  code: SCJ\n  name: [unclosed\ndatasets: []\n"
    checked = submissions.check_text(broken, source_name="scj.yaml")
    assert checked.directory is None and [(p.file, p.line) for p in checked.problems] == [("scj.yaml", 4)]
    tabbed = submissions.check_text("department:\n  code: SCJ\n\tname: x\n", source_name="scj.yaml")
    assert [p.line for p in tabbed.problems] == [3] and "YAML syntax" in tabbed.problems[0].message
    bad = SCJ_TEXT.replace("type: conditional", "type: sometimes", 1)
    checked = submissions.check_text(bad, source_name="scj.yaml")
    (p,) = checked.problems
    line = next(i for i, text in enumerate(bad.splitlines(), 1) if "type: sometimes" in text)
    assert p.line == line and "share.type" in p.field


def test_preview_says_what_publishing_would_do(api_hub) -> None:
    checked = submissions.check_text(_changed_text(), source_name="scj.yaml")
    assert checked.directory is not None
    diffs = {d.code: d for d in submissions.preview(api_hub.engine, checked.directory)}
    assert diffs["SCJ-LIC"].action == "changed" and any("审核后的摘要" in c for c in diffs["SCJ-LIC"].changes)
    assert diffs["SCJ-OPEN"].action == "unchanged"
    only_one = {**SCJ, "datasets": [SCJ["datasets"][0]]}
    checked = submissions.check_text(yaml.safe_dump(only_one, allow_unicode=True), source_name="scj.yaml")
    diffs = {d.code: d for d in submissions.preview(api_hub.engine, checked.directory)}
    assert diffs["SCJ-OPEN"].action == "absent"


def test_a_department_submits_only_its_own_directory(api_hub) -> None:
    with pytest.raises(HubError) as e:
        submissions.submit(
            api_hub.engine, department_code="ZGJ", content=SCJ_TEXT, source_name="x", submitted_by="zgj_pub"
        )
    assert e.value.code == "wrong_department"
    # a file that names its own department but claims another department's dataset
    doc = {**SCJ, "department": {**SCJ["department"], "code": "ZGJ", "name": "自规局"}}
    with pytest.raises(HubError) as e:
        submissions.submit(
            api_hub.engine,
            department_code="ZGJ",
            content=yaml.safe_dump(doc, allow_unicode=True),
            source_name="x",
            submitted_by="zgj_pub",
        )
    assert e.value.code == "wrong_department"
    with pytest.raises(HubError) as e:
        submissions.submit(
            api_hub.engine, department_code="SCJ", content="datasets: [", source_name="x", submitted_by="p"
        )
    assert e.value.code == "directory_invalid"


def test_review_states_four_eyes_and_history(api_hub) -> None:
    u = _users(api_hub.engine)
    before = store.get_dataset(api_hub.engine, "SCJ-LIC")
    s = submissions.submit(
        api_hub.engine,
        department_code="SCJ",
        content=_changed_text(),
        source_name="portal",
        submitted_by="scj_pub",
    )
    with pytest.raises(HubError) as e:
        submissions.submit(
            api_hub.engine,
            department_code="SCJ",
            content=_changed_text("二"),
            source_name="p",
            submitted_by="scj_pub",
        )
    assert e.value.code == "submission_pending"
    for who, code in (("scj_pub", "forbidden_role"), ("scj_admin", "forbidden_role")):
        with pytest.raises(HubError) as e:
            submissions.approve(api_hub.engine, s.id, by=u[who])
        assert e.value.code == code
    with pytest.raises(HubError) as e:
        submissions.return_submission(api_hub.engine, s.id, by=u["admin_a"], reason=" ")
    assert e.value.code == "reason_required"
    returned = submissions.return_submission(api_hub.engine, s.id, by=u["admin_a"], reason="摘要不规范")
    assert returned.status == "returned" and returned.reason == "摘要不规范"
    assert store.get_dataset(api_hub.engine, "SCJ-LIC").version == before.version  # nothing published
    with pytest.raises(HubError) as e:
        submissions.approve(api_hub.engine, s.id, by=u["admin_b"])
    assert e.value.code == "submission_decided"

    # an admin's own submission needs another admin
    s2 = submissions.submit(
        api_hub.engine,
        department_code="SCJ",
        content=_changed_text(),
        source_name="p",
        submitted_by="admin_a",
    )
    with pytest.raises(HubError) as e:
        submissions.approve(api_hub.engine, s2.id, by=u["admin_a"])
    assert e.value.code == "own_submission"
    done = submissions.approve(api_hub.engine, s2.id, by=u["admin_b"])
    assert done.status == "approved" and done.decided_by == "admin_b"
    after = store.get_dataset(api_hub.engine, "SCJ-LIC")
    assert after.version == before.version + 1 and after.spec.summary == "审核后的摘要"
    assert {"code": "SCJ-LIC", "version": after.version, "action": "updated"} in done.changes
    assert submissions.published_text(api_hub.engine, "SCJ") == _changed_text()


def test_two_reviewers_approving_at_once_publish_once(hub_pg_url: str) -> None:
    from catalog import publishing
    from catalog.directory.model import DirectoryFile

    engine = engine_for(hub_pg_url)
    for name, doc in (("scj.yaml", SCJ), ("rsj.yaml", RSJ)):
        publishing.publish(engine, DirectoryFile.model_validate(doc), source_file=name)
    u = _users(engine)
    for _round in range(5):
        summary = f"第 {_round} 轮"
        s = submissions.submit(
            engine,
            department_code="SCJ",
            content=_changed_text(summary),
            source_name="p",
            submitted_by="scj_pub",
        )
        version = store.get_dataset(engine, "SCJ-LIC").version
        results: list[str] = []
        barrier = threading.Barrier(2)

        def approve(who: str) -> None:
            barrier.wait()
            try:
                submissions.approve(engine, s.id, by=u[who])
                results.append("ok")
            except HubError as exc:
                results.append(exc.code)

        threads = [threading.Thread(target=approve, args=(w,)) for w in ("admin_a", "admin_b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["ok", "submission_decided"]
        assert store.get_dataset(engine, "SCJ-LIC").version == version + 1
        assert len(store.history(engine, "SCJ-LIC")) == version + 1
    engine.dispose()


def test_syntax_errors_point_at_a_line_the_editor_has() -> None:
    # an unclosed quote is found at the end of the stream: the line is the text's last one
    unclosed = 'department:\n  code: SCJ\n  name: "市场监督管理局\n'
    (p,) = submissions.check_text(unclosed, source_name="scj.yaml").problems
    assert p.line == 3 and p.message.startswith("YAML syntax")
    # an unclosed flow list: found on line 4, and the message says where the list started
    (p,) = submissions.check_text(
        "department:\n  code: SCJ\n  name: [unclosed\ndatasets: []\n", source_name="scj.yaml"
    ).problems
    assert p.line == 4 and "started on line 3" in p.message


def test_a_key_given_twice_is_refused_not_silently_dropped() -> None:
    # YAML would keep the second share: and lose the first without a word
    lines = SCJ_TEXT.splitlines()
    at = next(i for i, text in enumerate(lines) if text.strip() == "share:")
    indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
    doubled = [*lines[: at + 1], *lines[at + 1 :]]
    doubled.insert(at, f"{indent}share: {{type: unconditional}}")
    checked = submissions.check_text("\n".join(doubled) + "\n", source_name="scj.yaml")
    assert checked.directory is None
    (p,) = checked.problems
    assert (p.line, p.field) == (at + 2, "datasets[0].share")
    assert f"first on line {at + 1}" in p.message


def test_refusal_carries_every_problem_with_its_line(api_hub) -> None:
    bad = SCJ_TEXT.replace("type: conditional", "type: sometimes", 1).replace(
        "kind: enterprise", "kind: company", 1
    )
    lines = bad.splitlines()
    expected = sorted(
        i for i, text in enumerate(lines, 1) if "type: sometimes" in text or "kind: company" in text
    )
    with pytest.raises(submissions.DirectoryInvalid) as e:
        submissions.submit(
            api_hub.engine, department_code="SCJ", content=bad, source_name="scj.yaml", submitted_by="scj_pub"
        )
    assert e.value.code == "directory_invalid"
    assert sorted(p.line for p in e.value.problems if p.line) == expected
    assert "scj.yaml:" in e.value.params["problems"]
    assert submissions.list_submissions(api_hub.engine) == []


def test_a_department_may_not_carry_off_another_departments_dataset(api_hub) -> None:
    # RSJ's own file, plus SCJ's licence dataset pasted in
    doc = {**RSJ, "datasets": [*RSJ["datasets"], SCJ["datasets"][0]]}
    with pytest.raises(HubError) as e:
        submissions.submit(
            api_hub.engine,
            department_code="RSJ",
            content=yaml.safe_dump(doc, allow_unicode=True),
            source_name="rsj.yaml",
            submitted_by="rsj_pub",
        )
    assert (e.value.code, e.value.params) == ("wrong_department", {"code": "SCJ-LIC"})
    assert submissions.list_submissions(api_hub.engine) == []
    assert store.get_dataset(api_hub.engine, "SCJ-LIC").department.code == "SCJ"


def test_approve_twice_and_a_returned_submission_leaves_everything_as_published(api_hub) -> None:
    u = _users(api_hub.engine)
    before = store.get_dataset(api_hub.engine, "SCJ-LIC")
    s = submissions.submit(
        api_hub.engine,
        department_code="SCJ",
        content=_changed_text(),
        source_name="p",
        submitted_by="scj_pub",
    )
    submissions.return_submission(api_hub.engine, s.id, by=u["admin_a"], reason="请补充说明")
    after = store.get_dataset(api_hub.engine, "SCJ-LIC")
    assert dump_dataset(after.spec) == dump_dataset(before.spec) and after.version == before.version
    assert after.published_at == before.published_at
    assert len(store.history(api_hub.engine, "SCJ-LIC")) == before.version
    with pytest.raises(HubError) as e:
        submissions.withdraw(api_hub.engine, s.id, by=u["scj_pub"])
    assert e.value.code == "submission_decided"

    s = submissions.submit(
        api_hub.engine,
        department_code="SCJ",
        content=_changed_text(),
        source_name="p",
        submitted_by="scj_pub",
    )
    done = submissions.approve(api_hub.engine, s.id, by=u["admin_a"])
    assert done.changes is not None
    assert {c["code"]: c["action"] for c in done.changes} == {
        "SCJ-LIC": "updated",
        "SCJ-OPEN": "unchanged",
        "SCJ-SECRET": "unchanged",
    }
    for who in ("admin_a", "admin_b"):
        with pytest.raises(HubError) as e:
            submissions.approve(api_hub.engine, s.id, by=u[who])
        assert (e.value.code, e.value.params["status"]) == ("submission_decided", "approved")
    with pytest.raises(HubError) as e:
        submissions.return_submission(api_hub.engine, s.id, by=u["admin_b"], reason="晚了")
    assert e.value.code == "submission_decided"
    assert store.get_dataset(api_hub.engine, "SCJ-LIC").version == before.version + 1
    assert len(store.history(api_hub.engine, "SCJ-LIC")) == before.version + 1


def test_withdraw_is_the_departments_own_publishers(api_hub) -> None:
    u = _users(api_hub.engine)
    s = submissions.submit(
        api_hub.engine,
        department_code="SCJ",
        content=_changed_text(),
        source_name="p",
        submitted_by="scj_pub",
    )
    with pytest.raises(HubError) as e:
        submissions.withdraw(api_hub.engine, s.id, by=u["rsj_pub"])
    assert e.value.code == "submission_not_found"  # another department does not even see it
    with pytest.raises(HubError) as e:
        submissions.withdraw(api_hub.engine, s.id, by=u["scj_approver"])
    assert e.value.code == "forbidden_role"
    assert submissions.withdraw(api_hub.engine, s.id, by=u["scj_pub"]).status == "withdrawn"
    with pytest.raises(HubError) as e:
        submissions.approve(api_hub.engine, s.id, by=u["admin_a"])
    assert e.value.code == "submission_decided"
    again = submissions.submit(
        api_hub.engine,
        department_code="SCJ",
        content=_changed_text(),
        source_name="p",
        submitted_by="scj_pub",
    )
    assert again.status == "pending"
    assert [x.status for x in submissions.list_submissions(api_hub.engine, department_code="SCJ")] == [
        "pending",
        "withdrawn",
    ]


def test_publish_directly_records_what_was_published_once(api_hub, tmp_path) -> None:
    f = tmp_path / "scj.yaml"
    f.write_text(SCJ_TEXT, encoding="utf-8")
    # published before reviews were recorded (api_hub used the bare publish): the file is recorded
    # although no dataset changed, so the history holds the real text
    changes = submissions.publish_directly(api_hub.engine, f, by="cli:ops")
    assert {c.action for c in changes} == {"unchanged"}
    (first,) = submissions.list_submissions(api_hub.engine, department_code="SCJ")
    assert (first.status, first.submitted_by, first.decided_by) == ("approved", "cli:ops", "cli:ops")
    assert first.content == SCJ_TEXT
    submissions.publish_directly(api_hub.engine, f, by="cli:ops")  # the same file again: nothing new
    assert len(submissions.list_submissions(api_hub.engine, department_code="SCJ")) == 1
    # only the department's contact line changed: no dataset version, but a different file published
    doc = {**SCJ, "department": {**SCJ["department"], "contact": "数据资源处"}}
    f.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    submissions.publish_directly(api_hub.engine, f, by="cli:ops")
    latest = submissions.list_submissions(api_hub.engine, department_code="SCJ")[0]
    assert latest.id != first.id and "数据资源处" in latest.content
    assert store.get_dataset(api_hub.engine, "SCJ-LIC").department.contact == "数据资源处"


def test_a_return_does_not_race_an_approval_that_is_publishing(api_hub, monkeypatch) -> None:
    from catalog import publishing

    u = _users(api_hub.engine)
    s = submissions.submit(
        api_hub.engine,
        department_code="SCJ",
        content=_changed_text(),
        source_name="p",
        submitted_by="scj_pub",
    )
    real_publish = publishing.publish
    refused: list[str] = []

    def publish_while_another_returns(*args, **kwargs):
        # admin_b presses "return" while admin_a's approval is publishing
        with pytest.raises(HubError) as e:
            submissions.return_submission(api_hub.engine, s.id, by=u["admin_b"], reason="退回")
        refused.append(f"{e.value.code} {e.value.params['status']}")
        return real_publish(*args, **kwargs)

    monkeypatch.setattr(publishing, "publish", publish_while_another_returns)
    done = submissions.approve(api_hub.engine, s.id, by=u["admin_a"])
    assert refused == ["submission_decided publishing"]
    assert (done.status, done.decided_by, done.reason) == ("approved", "admin_a", None)


def test_an_approval_abandoned_while_publishing_can_be_returned_later(api_hub) -> None:
    import datetime as dt

    from catalog.clock import utc_now
    from catalog.db import tables

    u = _users(api_hub.engine)
    s = submissions.submit(
        api_hub.engine,
        department_code="SCJ",
        content=_changed_text(),
        source_name="p",
        submitted_by="scj_pub",
    )
    t = tables.directory_submissions

    def claimed(ago: dt.timedelta) -> None:  # as an approval whose process died leaves it
        with api_hub.engine.begin() as conn:
            conn.execute(
                t.update()
                .where(t.c.id == s.id)
                .values(status="publishing", decided_by="admin_a", decided_at=utc_now() - ago)
            )

    claimed(dt.timedelta(minutes=1))
    with pytest.raises(HubError) as e:
        submissions.return_submission(api_hub.engine, s.id, by=u["admin_b"], reason="无人处理")
    assert (e.value.code, e.value.params["status"]) == ("submission_decided", "publishing")
    with pytest.raises(HubError) as e:
        submissions.approve(api_hub.engine, s.id, by=u["admin_b"])
    assert (e.value.code, e.value.params["status"]) == ("submission_decided", "publishing")
    claimed(submissions.STALE_PUBLISHING + dt.timedelta(minutes=1))
    back = submissions.return_submission(api_hub.engine, s.id, by=u["admin_b"], reason="无人处理")
    assert (back.status, back.decided_by, back.reason) == ("returned", "admin_b", "无人处理")


def test_a_department_may_not_take_over_another_departments_certificate_type(api_hub, tmp_path) -> None:
    # RSJ's file declares the business licence type (SCJ's) on its own dataset: approved, the
    # hub would issue 营业执照 from RSJ's data. The preview shows datasets only, so the rule must hold.
    from catalog.directory.model import DirectoryFile
    from tests.catalog.api_hub import LICENCE_CERT_TYPE

    doc = {**RSJ, "certificate_types": [{**LICENCE_CERT_TYPE, "dataset": "RSJ-PEN"}]}
    text = yaml.safe_dump(doc, allow_unicode=True)
    assert DirectoryFile.model_validate(doc).certificate_types  # a valid file on its own
    with pytest.raises(HubError) as e:
        submissions.submit(
            api_hub.engine,
            department_code="RSJ",
            content=text,
            source_name="rsj.yaml",
            submitted_by="rsj_pub",
        )
    assert (e.value.code, e.value.params["owner"]) == ("certificate_type_foreign", "SCJ")
    f = tmp_path / "rsj.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="belongs to department SCJ"):  # the operator's path too
        submissions.publish_directly(api_hub.engine, f, by="cli:ops")
    with api_hub.engine.connect() as conn:
        ct = conn.execute(
            sa.text("SELECT department_code, dataset_code FROM hub_certificate_types WHERE code = :c"),
            {"c": LICENCE_CERT_TYPE["code"]},
        ).one()
    assert tuple(ct) == ("SCJ", "SCJ-LIC")
    assert submissions.list_submissions(api_hub.engine) == []


def test_a_dataset_code_may_not_name_another_datasets_tables(api_hub, tmp_path) -> None:
    # "scj.lic" is not "SCJ-LIC", but both give curated.scj_lic and srv_scj_lic: RSJ's syncs
    # would write into SCJ's business licences
    pen = RSJ["datasets"][0]
    for doc, clash in (
        ({**RSJ, "datasets": [pen, {**pen, "code": "scj.lic"}]}, ("scj.lic", "SCJ-LIC")),
        ({**RSJ, "datasets": [pen, {**pen, "code": "rsj_pen"}]}, ("rsj_pen", "RSJ-PEN")),
        (
            {**RSJ, "datasets": [pen, {**pen, "code": "RSJ-NEW"}, {**pen, "code": "rsj.new"}]},
            ("rsj.new", "RSJ-NEW"),
        ),
    ):
        text = yaml.safe_dump(doc, allow_unicode=True)
        with pytest.raises(HubError) as e:
            submissions.submit(
                api_hub.engine,
                department_code="RSJ",
                content=text,
                source_name="rsj.yaml",
                submitted_by="rsj_pub",
            )
        assert e.value.code == "dataset_code_clash"
        assert (e.value.params["code"], e.value.params["other"]) == clash
        f = tmp_path / "rsj.yaml"
        f.write_text(text, encoding="utf-8")
        with pytest.raises(ValueError, match="names the same tables"):
            submissions.publish_directly(api_hub.engine, f, by="cli:ops")
    assert submissions.list_submissions(api_hub.engine) == []
    assert {d.spec.code for d in store.list_datasets(api_hub.engine)} == {
        "SCJ-LIC",
        "SCJ-OPEN",
        "SCJ-SECRET",
        "RSJ-PEN",
    }
