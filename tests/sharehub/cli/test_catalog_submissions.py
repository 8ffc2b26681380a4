"""`sharehub catalog publish|submissions|approve|return`: the operator publishes at once and the
review history still shows it; reviews from the command line follow the portal's rules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from catalog import submissions
from catalog.access import staff
from catalog.db.engine import engine_for
from catalog.directory import store
from sharehub.demo import DIRECTORY_DIR

PASSWORD = "correct horse battery"
SUMMARY = "本市登记的企业营业执照信息"


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    """An empty embedded hub; the operator's login name is ``ops_wang``."""
    from sharehub.settings import get_settings

    monkeypatch.setenv("SHAREHUB_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.setattr("getpass.getuser", lambda: "ops_wang")
    get_settings.cache_clear()
    yield engine_for(get_settings().hub_db_url)
    get_settings.cache_clear()


def run(*args: str, code: int = 0) -> str:
    from sharehub.cli.main import app

    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == code, res.output
    return str(res.output)


def scj_file(tmp_path: Path, summary: str | None = None, contact: str | None = None) -> Path:
    text = (DIRECTORY_DIR / "scjgj.yaml").read_text(encoding="utf-8")
    if summary is not None:
        text = text.replace(f"summary: {SUMMARY}", f"summary: {summary}", 1)
    if contact is not None:
        text = text.replace("contact: 数据资源处 0571-00000001", f"contact: {contact}", 1)
    f = tmp_path / "scjgj.yaml"
    f.write_text(text, encoding="utf-8")
    return f


def test_publish_records_every_published_file_once(hub: sa.Engine, tmp_path: Path) -> None:
    f = scj_file(tmp_path)
    out = run("catalog", "publish", str(f))
    assert "created" in out
    (first,) = submissions.list_submissions(hub)
    assert (first.status, first.submitted_by, first.decided_by) == (
        "approved",
        "cli:ops_wang",
        "cli:ops_wang",
    )
    assert first.department_code == "SCJGJ" and first.content == f.read_text(encoding="utf-8")
    assert first.changes and {c["action"] for c in first.changes} == {"created"}
    assert {c["code"] for c in first.changes} == {d.spec.code for d in store.list_datasets(hub)}

    run("catalog", "publish", str(f))  # the same file again: nothing published, nothing recorded
    assert len(submissions.list_submissions(hub)) == 1

    f = scj_file(tmp_path, contact="数据资源处 0571-99999999")  # the department row only
    assert "updated" not in run("catalog", "publish", str(f), "--by", "ops-li")
    latest = submissions.list_submissions(hub)[0]
    assert latest.submitted_by == "ops-li" and "0571-99999999" in latest.content

    f = scj_file(tmp_path, summary="命令行发布的摘要", contact="数据资源处 0571-99999999")
    out = run("catalog", "publish", str(f), "--by", "ops-li")
    latest = submissions.list_submissions(hub)[0]
    assert latest.changes is not None
    (updated,) = [c for c in latest.changes if c["action"] == "updated"]
    assert f"{updated['code']} v2 updated" in out
    assert store.get_dataset(hub, updated["code"]).spec.summary.startswith("命令行发布的摘要，")

    listed = json.loads(run("catalog", "submissions", "--json"))
    assert [x["submitted_by"] for x in listed] == ["ops-li", "ops-li", "cli:ops_wang"]
    assert all("content" not in x for x in listed)


def test_publish_refuses_a_bad_file_and_records_nothing(hub: sa.Engine, tmp_path: Path) -> None:
    f = scj_file(tmp_path)
    lines = f.read_text(encoding="utf-8").splitlines()
    at = next(i for i, text in enumerate(lines) if "type: conditional" in text)
    lines[at] = lines[at].replace("conditional", "sometimes")
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = run("catalog", "publish", str(f), code=1)
    assert f"scjgj.yaml:{at + 1}:" in out and "share.type" in out
    assert submissions.list_submissions(hub) == [] and store.list_datasets(hub) == []


def test_review_from_the_command_line(hub: sa.Engine, tmp_path: Path) -> None:
    run("catalog", "publish", str(scj_file(tmp_path)))
    for name, dept, roles in (
        ("scj_pub", "SCJGJ", ["publisher"]),
        ("admin_a", None, ["admin"]),
        ("admin_b", None, ["admin"]),
    ):
        staff.create_staff(hub, name, dept, roles, PASSWORD)
    code = next(d.spec.code for d in store.list_datasets(hub) if d.spec.summary.startswith(SUMMARY))
    version = store.get_dataset(hub, code).version
    text = scj_file(tmp_path, summary="待审的摘要").read_text(encoding="utf-8")
    s = submissions.submit(
        hub, department_code="SCJGJ", content=text, source_name="portal", submitted_by="scj_pub"
    )
    pending = json.loads(run("catalog", "submissions", "--status", "pending", "--json"))
    assert [x["id"] for x in pending] == [s.id]

    assert "reason_required" in run(
        "catalog", "return", str(s.id), "--by", "admin_a", "--reason", " ", code=1
    )
    run("catalog", "return", str(s.id), "--by", "admin_a", "--reason", "请补充分类")
    assert submissions.get_submission(hub, s.id).status == "returned"  # type: ignore[union-attr]
    assert store.get_dataset(hub, code).version == version

    s = submissions.submit(
        hub, department_code="SCJGJ", content=text, source_name="portal", submitted_by="scj_pub"
    )
    # the operator publishes while a submission waits: told that approving it publishes its text
    assert f"submission {s.id} of SCJGJ is still pending" in run(
        "catalog", "publish", str(scj_file(tmp_path))
    )
    assert "forbidden_role" in run("catalog", "approve", str(s.id), "--by", "scj_pub", code=1)
    assert "staff_not_found" in run("catalog", "approve", str(s.id), "--by", "nobody", code=1)
    out = run("catalog", "approve", str(s.id), "--as", "admin_b")  # --as: the older spelling
    assert f"{code} v{version + 1} updated" in out
    assert "submission_decided" in run("catalog", "approve", str(s.id), "--by", "admin_a", code=1)
    assert store.get_dataset(hub, code).spec.summary.startswith("待审的摘要，")

    s = submissions.submit(
        hub, department_code="SCJGJ", content=text, source_name="p", submitted_by="admin_a"
    )
    assert "own_submission" in run("catalog", "approve", str(s.id), "--by", "admin_a", code=1)

    listed = json.loads(run("catalog", "submissions", "--department", "SCJGJ", "--json"))
    assert [x["status"] for x in listed] == ["pending", "approved", "returned", "approved"]
    assert listed[1]["decided_by"] == "admin_b" and listed[2]["reason"] == "请补充分类"
