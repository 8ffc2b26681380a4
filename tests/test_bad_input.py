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
import importlib.util
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from catalog import runs, serving, store
from sharehub import pipeline
from sharehub.settings import get_settings

CORPUS = Path(__file__).parent / "data" / "bad"
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
    mp = pytest.MonkeyPatch()
    mp.setenv("SHAREHUB_VAR_DIR", str(base / "var"))
    for case in MANIFEST:
        mp.setenv(f"SHAREHUB_CONNECTIONS__{case.upper()}", str(base / "sources" / case))
    get_settings.cache_clear()
    directory = {
        "department": {"code": "BADIN", "name": "坏数据测试局"},
        "datasets": [dataset(case, spec.get("dataset", {})) for case, spec in MANIFEST.items()],
    }
    path = base / "bad.yaml"
    path.write_text(yaml.safe_dump(directory, allow_unicode=True, sort_keys=False), encoding="utf-8")
    engine = store.engine_for(get_settings().hub_db_url)
    store.publish_path(engine, path)
    yield {"engine": engine, "expected": expected, "base": base}
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


@pytest.mark.parametrize("case", list(MANIFEST))
def test_case(case: str, corpus: dict[str, Any]) -> None:
    from lake import CURATED
    from sharehub.reports import quarantine_rows

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
        (q["source"], q["row"], r["rule"], r["message"]) for q in quarantine_rows(code, run["run_id"]) for r in q["reasons"]
    )
    want = sorted((q["source"], q["row"], q["rule"], q["message"]) for q in expect["quarantine"])
    assert [f[:3] for f in found] == [w[:3] for w in want], json.dumps(found, ensure_ascii=False)
    for f, w in zip(found, want, strict=True):
        assert w[3] in f[3], (w, f)

    # curated and serving: exactly the good rows
    good = _rows(corpus["expected"][case], names)
    lake = pipeline.hub().lake
    published = (
        _rows(lake.read(CURATED, code).to_pylist(), names)
        if run["status"] == "success"
        else []
    )
    assert published == good
    if run["status"] == "success":
        import sqlalchemy as sa

        with engine.connect() as conn:
            served = [dict(r._mapping) for r in conn.execute(sa.select(serving.serving_table(spec)))]
        assert _rows(served, names) == good
        assert run["rows_published"] == len(good)
    else:
        assert lake.current_snapshot_id(CURATED, code) is None if lake.table_exists(CURATED, code) else True

    notes = {f["name"]: f for f in run["files"] or []}
    for name, keys in (expect.get("files") or {}).items():
        assert name in notes, notes
        for key, value in keys.items():
            assert notes[name].get(key) == value, (name, key, notes[name])
