"""Directory files: validation errors name file, line and field; publish keeps a version history."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from catalog import publishing
from catalog.db.engine import engine_for
from catalog.directory import store
from catalog.directory.loader import DirectoryFileError, load_directory_file

GOOD = textwrap.dedent(
    """\
    department:
      code: TEST
      name: 测试局
    datasets:
      - code: TEST-001
        name: 测试数据
        summary: 用于测试
        share: {type: conditional, condition: 办理业务需要}
        grade: important
        primary_key: [uscc]
        subject: {field: uscc, kind: enterprise}
        fields:
          - {name: uscc, label: 统一社会信用代码, rules: {not_null: true, credit_code: true}}
          - {name: ent_name, label: 企业名称}
          - {name: capital, label: 注册资本, type: "decimal(18,2)", rules: {range: {min: 0}}}
        source: {kind: sql, connection: test_db, table: ent}
    """
)


def write(tmp_path: Path, text: str, name: str = "test.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_good_file_loads(tmp_path: Path) -> None:
    d = load_directory_file(write(tmp_path, GOOD))
    assert d.department.name == "测试局"
    assert d.datasets[0].field("capital").decimal_precision_scale() == (18, 2)


def test_unknown_field_type_names_file_line_and_field(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD.replace('type: "decimal(18,2)"', "type: money"))
    with pytest.raises(DirectoryFileError) as exc:
        load_directory_file(p)
    (problem,) = exc.value.problems
    assert problem.line == 15
    assert problem.field == "datasets[0].fields[2].type (dataset TEST-001)"
    assert "unknown field type 'money'" in problem.message
    assert str(problem).startswith(f"{p}:15: datasets[0].fields[2].type")


def test_missing_and_misspelt_fields(tmp_path: Path) -> None:
    text = GOOD.replace("    primary_key: [uscc]\n", "").replace("summary:", "sumary:")
    with pytest.raises(DirectoryFileError) as exc:
        load_directory_file(write(tmp_path, text))
    msgs = {(p.field, p.message) for p in exc.value.problems}
    assert ("datasets[0].primary_key (dataset TEST-001)", "required field is missing") in msgs
    assert ("datasets[0].sumary (dataset TEST-001)", "unknown field (check its spelling)") in msgs


def test_conditional_share_needs_condition(tmp_path: Path) -> None:
    text = GOOD.replace("condition: 办理业务需要", "condition: ''")
    with pytest.raises(DirectoryFileError) as exc:
        load_directory_file(write(tmp_path, text))
    assert str(exc.value).endswith(
        ":8: datasets[0].share (dataset TEST-001): a conditional share needs a condition (共享条件)"
    )


def test_keys_must_name_declared_fields(tmp_path: Path) -> None:
    with pytest.raises(DirectoryFileError) as exc:
        load_directory_file(write(tmp_path, GOOD.replace("[uscc]", "[nope]")))
    assert str(exc.value).endswith(
        ":5: datasets[0] (dataset TEST-001): primary_key names unknown field 'nope'"
    )


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD + "  - [unclosed\n")
    with pytest.raises(DirectoryFileError) as exc:
        load_directory_file(p)
    assert exc.value.problems[0].line is not None
    assert "YAML syntax" in exc.value.problems[0].message


def test_publish_versions_and_history(tmp_path: Path) -> None:
    engine = engine_for(f"sqlite:///{tmp_path / 'hub.db'}")
    p = write(tmp_path, GOOD)
    assert [c.action for c in publishing.publish_path(engine, p)] == ["created"]
    assert [c.action for c in publishing.publish_path(engine, p)] == ["unchanged"]
    write(
        tmp_path,
        GOOD.replace("label: 企业名称}", "label: 企业名称（全称）}").replace(
            "grade: important", "grade: core"
        ),
    )
    (change,) = publishing.publish_path(engine, p)
    assert (change.action, change.version) == ("updated", 2)
    ds = store.get_dataset(engine, "TEST-001")
    assert ds.version == 2 and ds.spec.grade.value == "core"
    hist = store.history(engine, "TEST-001")
    assert [h.version for h in hist] == [1, 2]
    assert hist[0].changes == ["created"]
    assert '~ grade: "important" -> "core"' in hist[1].changes
    assert any(c.startswith("~ fields[ent_name].label") for c in hist[1].changes)


def test_dataset_cannot_move_between_departments(tmp_path: Path) -> None:
    engine = engine_for(f"sqlite:///{tmp_path / 'hub.db'}")
    publishing.publish_path(engine, write(tmp_path, GOOD))
    other = write(tmp_path, GOOD.replace("code: TEST\n", "code: OTHER\n"), "other.yaml")
    with pytest.raises(ValueError, match="belongs to department TEST"):
        publishing.publish_path(engine, other)


def test_cli_publish_list_show_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sharehub.cli.main import app
    from sharehub.settings import get_settings

    monkeypatch.setenv("SHAREHUB_VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    runner = CliRunner()
    p = write(tmp_path, GOOD)
    res = runner.invoke(app, ["catalog", "publish", str(p)])
    assert res.exit_code == 0, res.output
    assert "TEST-001 v1 created" in res.output
    res = runner.invoke(app, ["catalog", "list", "--json"])
    assert json.loads(res.output)[0]["code"] == "TEST-001"
    res = runner.invoke(app, ["catalog", "show", "TEST-001", "--json"])
    assert json.loads(res.output)["primary_key"] == ["uscc"]
    bad = write(tmp_path, GOOD.replace("kind: enterprise", "kind: company"), "bad.yaml")
    res = runner.invoke(app, ["catalog", "publish", str(bad)])
    assert res.exit_code == 1
    assert "bad.yaml:11: datasets[0].subject.kind" in " ".join(res.output.split())
    res = runner.invoke(app, ["catalog", "history", "TEST-001", "--json"])
    assert json.loads(res.output)[0]["changes"] == ["created"]
    get_settings.cache_clear()
