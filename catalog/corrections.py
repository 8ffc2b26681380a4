"""The correction list (整改清单): the rows each sync run quarantined, for the department that
sent them, and whether each has been fixed since.

The validate step writes each run's quarantined rows here as well as to the lake's quarantine
zone (:func:`replace_run`; a retried step replaces its run's rows). Each row is named as the
department knows it — its file and row number there — with the rule each value broke, the
field's label from the directory, and the values as sent. A row's **state**:

* ``fixed`` — its key is served now, written by a successful run that started after the run
  that quarantined it: that later run published the key cleanly (``fixed_by_run``);
* ``superseded`` — a later run quarantined the same key again (that newer entry is the one to
  fix), or the row had no usable key and a later successful run has read the source again;
* ``open`` — otherwise.

A row without a usable key (the key field itself was unreadable) cannot be followed from run to
run; it is open until a later successful run supersedes it.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from catalog.clock import as_utc
from catalog.db import tables
from catalog.directory.model import DatasetSpec
from catalog.serving import tables as serving
from catalog.values import key_text, spreadsheet_text

_Q = tables.quarantine_rows
_R = tables.sync_runs
STATES = ("open", "fixed", "superseded")


@dataclass(frozen=True)
class Finding:
    field: str | None
    label: str  # the field's label in the directory (中文名称), or the field name
    rule: str
    message: str
    value: Any


@dataclass
class CorrectionRow:
    run_id: str
    run_started_at: dt.datetime
    source: str | None
    row: int | None
    record_key: str | None
    findings: list[Finding]
    record: dict[str, Any]
    state: str = "open"
    fixed_by_run: str | None = None
    key_values: dict[str, Any] = field(default_factory=dict)


def replace_run(
    conn: sa.Connection,
    dataset_code: str,
    run_id: str,
    rows: Iterable[Mapping[str, Any]],
    primary_key: Sequence[str],
) -> int:
    """Store a run's quarantined rows (replacing what an earlier try of the run stored).

    Each row: ``source``, ``row``, ``reasons`` (list of {field, rule, message}) and ``record``
    (the values as sent, JSON-ready). The record key is taken from the record when every key
    field has a value."""
    conn.execute(_Q.delete().where(_Q.c.run_id == run_id))
    values = []
    for r in rows:
        record = dict(r["record"])
        key = {k: record.get(k) for k in primary_key}
        usable = all(v not in (None, "") for v in key.values()) and "raw" not in record
        text = key_text(key) if usable else None
        values.append(
            {
                "run_id": run_id,
                "dataset_code": dataset_code,
                "source": None if r.get("source") is None else str(r["source"])[:500],
                "row": r.get("row"),
                "record_key": text if text is None or len(text) <= 500 else None,
                "reasons": list(r["reasons"]),
                "record": record,
            }
        )
    if values:
        conn.execute(_Q.insert(), values)
    return len(values)


def _python(column: sa.Column[Any], value: Any) -> Any:
    """A key value from its JSON text form to what the serving column compares with."""
    if value is None:
        return None
    t = column.type
    try:
        if isinstance(t, sa.DateTime):
            return dt.datetime.fromisoformat(str(value))
        if isinstance(t, sa.Date):
            return dt.date.fromisoformat(str(value))
        if isinstance(t, sa.Numeric) and not isinstance(t, sa.Float | sa.Integer):
            return decimal.Decimal(str(value))
        if isinstance(t, sa.Integer):
            return int(value)
    except (ValueError, decimal.InvalidOperation):
        return None
    return value


def _served_by(engine: sa.Engine, spec: DatasetSpec, keys: set[str]) -> dict[str, str]:
    """record_key -> the run that last wrote that key to the serving table (keys served now)."""
    table = serving.serving_table(spec)
    if not keys or not sa.inspect(engine).has_table(table.name):
        return {}
    pk = [table.c[k] for k in spec.primary_key]
    wanted: list[tuple[Any, ...]] = []
    for text in keys:
        parsed = json.loads(text)
        values = tuple(_python(c, parsed.get(c.name)) for c in pk)
        if None not in values:
            wanted.append(values)
    out: dict[str, str] = {}
    with engine.connect() as conn:
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            cond = pk[0].in_([v[0] for v in chunk]) if len(pk) == 1 else sa.tuple_(*pk).in_(chunk)
            for row in conn.execute(sa.select(*pk, table.c._run_id).where(cond)):
                m = row._mapping
                out[key_text({c.name: m[c.name] for c in pk})] = m["_run_id"]
    return out


def correction_list(
    engine: sa.Engine,
    spec: DatasetSpec,
    *,
    run_id: str | None = None,
    state: str | None = None,
    limit: int = 10_000,
) -> list[CorrectionRow]:
    """The dataset's quarantined rows (newest run first, then by file and row) with their state."""
    labels = {f.name: f.label for f in spec.fields}
    with engine.connect() as conn:
        runs = {
            r.run_id: (as_utc(r.started_at), r.status)
            for r in conn.execute(
                sa.select(_R.c.run_id, _R.c.started_at, _R.c.status).where(_R.c.dataset_code == spec.code)
            )
        }
        q = sa.select(_Q).where(_Q.c.dataset_code == spec.code)
        if run_id is not None:
            q = q.where(_Q.c.run_id == run_id)
        rows = conn.execute(q).all()
        # every quarantined key of the dataset, by run: a later quarantine supersedes an older one
        seen_keys: dict[str, list[str]] = {}
        for r in conn.execute(
            sa.select(_Q.c.record_key, _Q.c.run_id).where(
                _Q.c.dataset_code == spec.code, _Q.c.record_key.is_not(None)
            )
        ):
            seen_keys.setdefault(r.record_key, []).append(r.run_id)
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    successes = sorted((at for at, status in runs.values() if status == "success"))
    served = _served_by(engine, spec, {r.record_key for r in rows if r.record_key})
    out = []
    for r in rows:
        started, _status = runs.get(r.run_id, (epoch, ""))
        findings = [
            Finding(
                field=f.get("field"),
                label=labels.get(f.get("field") or "", f.get("field") or ""),
                rule=str(f.get("rule", "")),
                message=str(f.get("message", "")),
                value=(r.record or {}).get(f.get("field") or "", (r.record or {}).get("raw")),
            )
            for f in (r.reasons or [])
        ]
        item = CorrectionRow(
            run_id=r.run_id,
            run_started_at=started,
            source=r.source,
            row=r.row,
            record_key=r.record_key,
            findings=findings,
            record=dict(r.record or {}),
            key_values=json.loads(r.record_key) if r.record_key else {},
        )
        if r.record_key is not None:
            writer = served.get(r.record_key)
            if (
                writer is not None
                and writer in runs
                and runs[writer][1] == "success"
                and runs[writer][0] > started
            ):
                item.state, item.fixed_by_run = "fixed", writer
            elif any(runs.get(other, (epoch, ""))[0] > started for other in seen_keys.get(r.record_key, [])):
                item.state = "superseded"
        elif any(at > started for at in successes):
            item.state = "superseded"
        if state is None or item.state == state:
            out.append(item)
    out.sort(key=lambda c: (-c.run_started_at.timestamp(), str(c.source or ""), c.row or 0))
    return out[:limit]


def open_rows(engine: sa.Engine, specs: Sequence[DatasetSpec]) -> int:
    """How many quarantined rows of these datasets are still open (for supervision); only the
    datasets that have any quarantined row are looked at closely."""
    by_code = {s.code: s for s in specs}
    if not by_code:
        return 0
    with engine.connect() as conn:
        having = [
            r[0]
            for r in conn.execute(
                sa.select(_Q.c.dataset_code).where(_Q.c.dataset_code.in_(list(by_code))).distinct()
            )
        ]
    return sum(len(correction_list(engine, by_code[c], state="open")) for c in having)


# ---- exports: what the department downloads -----------------------------------------------

HEADERS = {
    "zh": [
        "同步批次",
        "同步时间",
        "来源文件",
        "行号",
        "数据项",
        "数据项名称",
        "取值",
        "规则",
        "问题说明",
        "主键",
        "状态",
        "修正批次",
    ],
    "en": [
        "run",
        "run started",
        "file",
        "row",
        "field",
        "label",
        "value",
        "rule",
        "problem",
        "key",
        "state",
        "fixed by run",
    ],
}
STATE_WORDS = {
    "zh": {"open": "待整改", "fixed": "已修正", "superseded": "已被后续批次取代"},
    "en": {"open": "open", "fixed": "fixed", "superseded": "superseded"},
}


def export_rows(rows: Sequence[CorrectionRow], lang: str = "zh") -> list[list[Any]]:
    """One line per finding (a row breaking two rules gives two lines), in the headers' order."""
    from zoneinfo import ZoneInfo

    words = STATE_WORDS["en" if lang == "en" else "zh"]
    tz = ZoneInfo("Asia/Shanghai")
    out: list[list[Any]] = []
    for r in rows:
        started = r.run_started_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        key = ", ".join(f"{k}={v}" for k, v in r.key_values.items())
        for f in r.findings or [Finding(None, "", "", "", None)]:
            value = "" if f.value is None else f.value
            out.append(
                [
                    r.run_id,
                    started,
                    r.source or "",
                    r.row,
                    f.field or "",
                    f.label,
                    value,
                    f.rule,
                    f.message,
                    key,
                    words[r.state],
                    r.fixed_by_run or "",
                ]
            )
    return out


def to_csv(rows: Sequence[CorrectionRow], lang: str = "zh") -> bytes:
    """UTF-8 with a BOM (Excel opens Chinese text right), formulas neutralised."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(HEADERS["en" if lang == "en" else "zh"])
    for line in export_rows(rows, lang):
        w.writerow([spreadsheet_text(v) for v in line])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(rows: Sequence[CorrectionRow], lang: str = "zh") -> bytes:
    """An Excel workbook: a frozen bold header row, readable widths, every value as text
    (never a formula: cells are typed as strings)."""
    import io

    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "整改清单" if lang != "en" else "corrections"
    headers = HEADERS["en" if lang == "en" else "zh"]
    ws.append(headers)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for line in export_rows(rows, lang):
        ws.append(
            [
                None if v is None else v if isinstance(v, int) and not isinstance(v, bool) else str(v)
                for v in line
            ]
        )
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # "=1+1" stays text
    ws.freeze_panes = "A2"
    widths = [28, 17, 24, 8, 16, 16, 24, 14, 40, 30, 14, 28]
    for i, w in enumerate(widths, start=1):
        ws.column_dimensions[ws.cell(row=1, column=i).column_letter].width = w
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
