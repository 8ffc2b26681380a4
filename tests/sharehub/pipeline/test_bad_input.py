"""The bad-input corpus (tests/data/bad) through the real pipeline, row by row.

Every case of ``tests/data/bad/manifest.yaml`` is its own dataset on one embedded hub (SQLite hub
DB, local warehouse). Each is synced with ``sharehub.pipeline.sync`` (full), then:

* the run's status (and error) is the declared one;
* curated and the serving table hold exactly the good rows the case's builder returns, value by
  value, and nothing else;
* the quarantine holds exactly the declared entries (source, row, rule, message), nothing else;
* the declared notes are on the run's file list.
"""

from __future__ import annotations

import datetime as dt
import html
import importlib.util
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from catalog import publishing
from catalog.db.engine import engine_for
from catalog.directory import store
from catalog.runs import record as runs
from catalog.serving import tables as serving
from sharehub import pipeline
from sharehub.settings import get_settings
from tests.paths import DATA

CORPUS = DATA / "bad"
MANIFEST = yaml.safe_load((CORPUS / "manifest.yaml").read_text(encoding="utf-8"))["cases"]
FORMATS = {"csv": "*.csv", "xlsx": "*.xlsx", "jsonl": "*.jsonl", "parquet": "*.parquet"}
BASE_FIELDS = [
    {"name": "code", "label": "编号", "source_name": "编号", "rules": {"not_null": True}},
    {"name": "name", "label": "名称", "source_name": "名称", "rules": {"not_null": True}},
    {"name": "amount", "label": "金额", "type": "float", "source_name": "金额"},
    {"name": "at", "label": "时间", "type": "timestamp", "source_name": "时间"},
]
SOURCE_NAMES = {"uscc": "统一社会信用代码", "id_no": "身份证号"}


def _builder() -> Any:
    spec = importlib.util.spec_from_file_location("bad_corpus_build", CORPUS / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dataset_code(case: str) -> str:
    return f"BAD-{case}"


def dataset(case: str, decl: dict[str, Any]) -> dict[str, Any]:
    """The directory entry of one case: the base dataset with the case's changes."""
    fmt = case.split("_", 1)[0]
    fields = [dict(f) for f in BASE_FIELDS]
    if decl.get("ascii_headers"):
        for f in fields:
            f["source_name"] = f["name"]
    for extra in decl.get("fields", []):
        fields.append({"source_name": SOURCE_NAMES[extra["name"]], **extra})
    for f in fields:
        f.update(decl.get("field_options", {}).get(f["name"], {}))
    return {
        "code": dataset_code(case),
        "name": f"bad input: {case}",
        "share": {"type": "unconditional"},
        "primary_key": ["code"],
        "fields": fields,
        "source": {
            "kind": "file",
            "connection": case,
            "path": FORMATS[fmt],
            "format": fmt,
            **decl.get("source", {}),
        },
        "schedule": None,
        "quality": {
            "policy": "quarantine",
            "max_bad_ratio": 1.0,
            "max_volume_change": None,
            **decl.get("quality", {}),
        },
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("bad")
    expected = _builder().build(base / "sources", list(MANIFEST))
    env = {"SHAREHUB_VAR_DIR": str(base / "var")}
    env |= {f"SHAREHUB_CONNECTIONS__{case.upper()}": str(base / "sources" / case) for case in MANIFEST}
    mp = pytest.MonkeyPatch()
    for key, value in env.items():
        mp.setenv(key, value)
    get_settings.cache_clear()
    directory = {
        "department": {"code": "BADIN", "name": "坏数据测试局"},
        "datasets": [dataset(case, spec.get("dataset", {})) for case, spec in MANIFEST.items()],
    }
    path = base / "bad.yaml"
    path.write_text(yaml.safe_dump(directory, allow_unicode=True, sort_keys=False), encoding="utf-8")
    engine = engine_for(get_settings().hub_db_url)
    publishing.publish_path(engine, path)
    yield {"engine": engine, "expected": expected, "base": base, "env": env}
    mp.undo()
    get_settings.cache_clear()


def test_the_corpus_has_at_least_forty_cases() -> None:
    assert len(MANIFEST) >= 40
    assert set(MANIFEST) == set(_builder().CASES), "manifest and build.py must name the same cases"


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


def _rows(rows: list[dict[str, Any]], names: list[str]) -> list[dict[str, Any]]:
    return sorted(({n: _plain(r[n]) for n in names} for r in rows), key=lambda r: str(r["code"]))


def use(corpus: dict[str, Any], monkeypatch: pytest.MonkeyPatch, **more: str) -> None:
    """The corpus hub's settings for this test (the autouse fixture clears SHAREHUB_* per test)."""
    for key, value in {**corpus["env"], **more}.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()


@pytest.mark.parametrize("case", list(MANIFEST))
def test_case(case: str, corpus: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from lake import CURATED
    from sharehub.pipeline.reports import quarantine_rows

    use(corpus, monkeypatch)
    expect = MANIFEST[case]["expect"]
    engine = corpus["engine"]
    code = dataset_code(case)
    spec = store.get_dataset(engine, code).spec
    names = [f.name for f in spec.fields]
    try:
        pipeline.sync(code, full=True)
    except pipeline.QualityBlocked:
        pass
    except Exception:
        if expect["status"] != "failed":
            raise
    (run,) = runs.recent_runs(engine, limit=1, dataset_code=code)
    assert run["status"] == expect["status"], run["error"]
    if "error" in expect:
        assert expect["error"] in (run["error"] or "")

    # the quarantine: exactly the declared entries
    found = sorted(
        (q["source"], q["row"], r["rule"], r["message"])
        for q in quarantine_rows(code, run["run_id"])
        for r in q["reasons"]
    )
    want = sorted((q["source"], q["row"], q["rule"], q["message"]) for q in expect["quarantine"])
    assert [f[:3] for f in found] == [w[:3] for w in want], json.dumps(found, ensure_ascii=False)
    for f, w in zip(found, want, strict=True):
        assert w[3] in f[3], (w, f)
    # the department's correction list (hub DB) names the same files, rows, rules and messages
    from catalog import corrections

    listed = sorted(
        (c.source, c.row, f.rule, f.message)
        for c in corrections.correction_list(engine, spec, run_id=run["run_id"])
        for f in c.findings
    )
    assert listed == found

    # curated and serving: exactly the good rows
    good = _rows(corpus["expected"][case], names)
    lake = pipeline.hub().lake
    published = _rows(lake.read(CURATED, code).to_pylist(), names) if run["status"] == "success" else []
    assert published == good
    if run["status"] == "success":
        import sqlalchemy as sa

        with engine.connect() as conn:
            served = [dict(r._mapping) for r in conn.execute(sa.select(serving.serving_table(spec)))]
        assert _rows(served, names) == good
        assert run["rows_published"] == len(good)
    else:
        assert lake.current_snapshot_id(CURATED, code) is None if lake.table_exists(CURATED, code) else True

    # file-level findings are in the quality report too, not only in the correction list
    report = html.unescape((get_settings().reports_dir / f"{code}.html").read_text(encoding="utf-8"))
    for q in expect["quarantine"]:
        if q["rule"] in ("file", "missing_column"):
            assert q["message"] in report, q

    for name, keys in (expect.get("files") or {}).items():
        if "identical_to" in keys:  # pointed out to the department, not only recorded
            assert f"{name} has the same bytes as {keys['identical_to']}" in report

    notes = {f["name"]: f for f in run["files"] or []}
    for name, keys in (expect.get("files") or {}).items():
        assert name in notes, notes
        for key, value in keys.items():
            assert notes[name].get(key) == value, (name, key, notes[name])


def _publish_extra(corpus: dict[str, Any], dept: str, datasets: list[dict[str, Any]]) -> None:
    path = corpus["base"] / f"{dept}.yaml"
    directory = {"department": {"code": dept, "name": dept}, "datasets": datasets}
    path.write_text(yaml.safe_dump(directory, allow_unicode=True, sort_keys=False), encoding="utf-8")
    publishing.publish_path(corpus["engine"], path)


def test_cli_sync_of_a_connector_failure_prints_the_error_without_a_traceback(
    corpus: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from sharehub.cli.main import app

    spec = dataset("csv_cli_no_folder", {})
    spec["code"] = "BAD-cli"
    _publish_extra(corpus, "BADCLI", [spec])
    use(corpus, monkeypatch, SHAREHUB_CONNECTIONS__CSV_CLI_NO_FOLDER=str(corpus["base"] / "no-such-folder"))
    res = CliRunner().invoke(app, ["sync", "BAD-cli"])
    assert res.exit_code == 1
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    flat = " ".join(res.output.split())  # rich wraps long lines
    assert "BAD-cli: sync failed:" in flat and "no-such-folder: cannot list files" in flat
    (run,) = runs.recent_runs(corpus["engine"], limit=1, dataset_code="BAD-cli")
    assert run["status"] == "failed" and "cannot list files" in run["error"]


def test_sql_query_missing_a_declared_column_is_a_finding_that_blocks(
    corpus: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from sharehub.pipeline.reports import quarantine_rows

    db = corpus["base"] / "dept.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (code TEXT, name TEXT, amount REAL, at TEXT)")
        conn.executemany(
            "INSERT INTO t VALUES (?, ?, ?, ?)", [(f"C{i}", f"n{i}", i, "2026-01-01") for i in range(3)]
        )
    spec = dataset("csv_sql", {"ascii_headers": True})
    spec["code"] = "BAD-sql"
    spec["source"] = {"kind": "sql", "connection": "bad_sql", "query": "SELECT code, name, at FROM t"}
    _publish_extra(corpus, "BADSQL", [spec])
    use(corpus, monkeypatch, SHAREHUB_CONNECTIONS__BAD_SQL=f"sqlite:///{db}")
    with pytest.raises(pipeline.QualityBlocked, match=r"declared column amount \(field amount\) is missing"):
        pipeline.sync("BAD-sql", full=True)
    (run,) = runs.recent_runs(corpus["engine"], limit=1, dataset_code="BAD-sql")
    found = [
        (q["source"], q["row"], r["rule"])
        for q in quarantine_rows("BAD-sql", run["run_id"])
        for r in q["reasons"]
    ]
    assert found == [("query", 0, "missing_column")]
