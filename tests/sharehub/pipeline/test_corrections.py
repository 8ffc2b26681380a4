"""The correction list through real sync runs: open, fixed by a later run, superseded; exports."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

from openpyxl import load_workbook
from typer.testing import CliRunner

from catalog import corrections
from catalog.directory import store
from tests.sharehub.pipeline.fault_hub import CODE, T0, make_hub


def _by_pid(rows: list[corrections.CorrectionRow]) -> dict[int, corrections.CorrectionRow]:
    return {json.loads(r.record_key)["pid"]: r for r in rows if r.record_key}


def test_open_then_fixed_by_a_later_run_and_superseded(tmp_path: Path) -> None:
    hub = make_hub(tmp_path, rows=300)  # pids 97, 194 and 291 have no name: quarantined
    first = hub.sync("run-1")
    spec = store.get_dataset(hub.engine, CODE).spec
    rows = corrections.correction_list(hub.engine, spec)
    assert sorted(_by_pid(rows)) == [97, 194, 291]
    r97 = _by_pid(rows)[97]
    assert r97.state == "open" and r97.run_id == first["run_id"] == "run-1"
    assert r97.findings[0].field == "name" and r97.findings[0].label == "姓名"  # the directory's label
    assert r97.findings[0].rule == "not_null" and r97.source and r97.row is not None

    # the department fixes 97 at source; 194 is left alone; 291 is re-read by run-2's one-hour
    # lookback and quarantined again (still no name)
    later = T0 + dt.timedelta(days=2)
    hub.execute("UPDATE people SET name = ?, updated_at = ? WHERE pid = 97", "已补录", later.isoformat(" "))
    hub.sync("run-2")
    rows = corrections.correction_list(hub.engine, spec)
    states = {(json.loads(r.record_key)["pid"], r.run_id): (r.state, r.fixed_by_run) for r in rows}
    assert states == {
        (97, "run-1"): ("fixed", "run-2"),
        (194, "run-1"): ("open", None),  # never re-sent: still to fix
        (291, "run-1"): ("superseded", None),  # run-2 quarantined it again
        (291, "run-2"): ("open", None),
    }
    assert rows[0].run_id == "run-2"  # newest run first
    opened = corrections.correction_list(hub.engine, spec, state="open")
    assert sorted(json.loads(r.record_key)["pid"] for r in opened) == [194, 291]
    assert corrections.open_rows(hub.engine, [spec]) == 2


def test_a_retried_validate_replaces_its_runs_rows(tmp_path: Path) -> None:
    hub = make_hub(tmp_path, rows=200)
    hub.sync("run-1")
    spec = store.get_dataset(hub.engine, CODE).spec
    before = len(corrections.correction_list(hub.engine, spec, run_id="run-1"))
    with hub.engine.begin() as conn:  # what a retry of the step does with the same rows
        corrections.replace_run(
            conn,
            CODE,
            "run-1",
            [
                {
                    "source": "people",
                    "row": 97,
                    "reasons": [{"field": "name", "rule": "not_null", "message": "m"}],
                    "record": {"pid": 97},
                }
            ],
            spec.primary_key,
        )
    assert before == 2 and len(corrections.correction_list(hub.engine, spec, run_id="run-1")) == 1


def _rows_with(value: str) -> list[corrections.CorrectionRow]:
    return [
        corrections.CorrectionRow(
            run_id="run-x",
            run_started_at=dt.datetime(2026, 12, 1, 1, 30, tzinfo=dt.UTC),
            source="户籍人口_202612.xlsx",
            row=7,
            record_key='{"id_no":"110105"}',
            findings=[corrections.Finding("name", "姓名", "not_null", "姓名不能为空", value)],
            record={"name": value},
            key_values={"id_no": "110105"},
        )
    ]


def test_exports_open_in_excel_as_text_never_as_formulas() -> None:
    hostile = '=HYPERLINK("http://evil.example","点我")'
    wb = load_workbook(io.BytesIO(corrections.to_xlsx(_rows_with(hostile))))
    ws = wb.active
    assert [c.value for c in ws[1]][:4] == ["同步批次", "同步时间", "来源文件", "行号"]
    assert ws.freeze_panes == "A2"
    cells = {c.column_letter: c for c in ws[2]}
    assert cells["C"].value == "户籍人口_202612.xlsx" and cells["D"].value == 7
    assert cells["F"].value == "姓名" and cells["G"].value == hostile and cells["G"].data_type == "s"
    assert cells["B"].value == "2026-12-01 09:30"  # Beijing time
    assert cells["K"].value == "待整改"
    text = corrections.to_csv(_rows_with(hostile)).decode("utf-8")
    assert text.startswith("\ufeff同步批次,")
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text
    english = corrections.to_csv(_rows_with("x"), "en").decode("utf-8-sig")
    assert english.splitlines()[0].startswith("run,run started,file,row")


def test_cli_writes_the_xlsx(tmp_path: Path, monkeypatch) -> None:
    from sharehub.cli.main import app
    from sharehub.settings import get_settings

    hub = make_hub(tmp_path, rows=200)
    hub.sync("run-1")
    for k, v in hub.env.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    try:
        out = tmp_path / "list.xlsx"
        r = CliRunner().invoke(app, ["corrections", CODE, "--format", "xlsx", "--out", str(out)])
        assert r.exit_code == 0, r.output
        ws = load_workbook(out).active
        assert ws.max_row == 3 and {ws["E2"].value, ws["E3"].value} == {"name"}
        r = CliRunner().invoke(app, ["corrections", CODE, "--state", "fixed"])
        assert r.exit_code == 0 and "待整改" not in r.output
    finally:
        get_settings.cache_clear()
