"""Directory review before publication: as a careless department, a hasty reviewer, two at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from catalog import submissions
from catalog.access import staff
from catalog.db.engine import engine_for
from catalog.directory import store
from catalog.errors import HubError
from tests.catalog.api_hub import PASSWORD, SCJ

SCJ_TEXT = yaml.safe_dump(SCJ, allow_unicode=True, sort_keys=False)


def _users(engine: sa.Engine) -> dict[str, staff.StaffUser]:
    out = {}
    for name, dept, roles in (
        ("scj_pub", "SCJ", ["publisher"]),
        ("admin_a", None, ["admin"]),
        ("admin_b", None, ["admin"]),
        ("scj_admin", "SCJ", ["admin"]),
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
    publishing.publish(engine, DirectoryFile.model_validate(SCJ), source_file="scj.yaml")
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


def test_cli_publish_records_history_and_reviews(api_hub, tmp_path: Path, monkeypatch) -> None:
    from sharehub.cli.main import app
    from sharehub.settings import get_settings

    monkeypatch.setenv("SHAREHUB_VAR_DIR", str(api_hub.settings.var_dir))
    get_settings.cache_clear()
    _users(api_hub.engine)
    try:
        f = tmp_path / "scj.yaml"
        f.write_text(_changed_text("命令行发布"), encoding="utf-8")
        runner = CliRunner()
        out = runner.invoke(app, ["catalog", "publish", str(f), "--by", "ops-li"])
        assert out.exit_code == 0, out.output
        (entry,) = submissions.list_submissions(api_hub.engine, department_code="SCJ")
        assert entry.status == "approved" and entry.submitted_by == entry.decided_by == "ops-li"
        assert entry.changes and entry.content == f.read_text(encoding="utf-8")
        again = runner.invoke(app, ["catalog", "publish", str(f)])  # unchanged: no new history entry
        assert again.exit_code == 0 and len(submissions.list_submissions(api_hub.engine)) == 1

        s = submissions.submit(
            api_hub.engine,
            department_code="SCJ",
            content=_changed_text("待审"),
            source_name="p",
            submitted_by="scj_pub",
        )
        out = runner.invoke(
            app, ["catalog", "return", str(s.id), "--as", "admin_a", "--reason", "请补充分类"]
        )
        assert out.exit_code == 0, out.output
        s = submissions.submit(
            api_hub.engine,
            department_code="SCJ",
            content=_changed_text("待审"),
            source_name="p",
            submitted_by="scj_pub",
        )
        out = runner.invoke(app, ["catalog", "approve", str(s.id), "--as", "scj_pub"])
        assert out.exit_code == 1 and "forbidden_role" in out.output
        out = runner.invoke(app, ["catalog", "approve", str(s.id), "--as", "admin_b"])
        assert out.exit_code == 0 and "SCJ-LIC" in out.output
        listing = runner.invoke(app, ["catalog", "submissions", "--json"])
        assert [x["status"] for x in __import__("json").loads(listing.stdout)] == [
            "approved",
            "returned",
            "approved",
        ]
    finally:
        get_settings.cache_clear()
