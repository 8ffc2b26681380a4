"""Step 2, validate: the quality checks over the run's raw rows; bad rows to quarantine with reasons."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from catalog import corrections
from catalog.directory import store
from catalog.directory.model import DatasetSpec, QualityPolicy
from catalog.runs import record as run_store
from catalog.values import json_value
from sharehub.hub import Hub, QualityBlocked, hub
from sharehub.pipeline import faults, intake
from sharehub.pipeline.adapters import quality_rules
from sharehub.pipeline.run_guard import run_step
from sharehub.pipeline.schemas import EXTRA, RID, ROW, RUN_ID, SOURCE, quarantine_schema, run_filter
from sharehub.settings import Settings

if TYPE_CHECKING:
    import pyarrow as pa


def _jsonable_row(row: dict[str, Any]) -> dict[str, Any]:
    """A quarantined row as JSON: :func:`catalog.values.json_value`, and any other type as text."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        v = json_value(v)
        out[k] = v if v is None or isinstance(v, int | float | str | bool) else str(v)
    return out


def _row_labels(table: pa.Table) -> pa.ChunkedArray:
    """How messages name other rows when the run read several files: "<line> of <file>".

    (A run with one source names rows by their ``_row`` line numbers as they are.)"""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(pc.cast(table.column(ROW), pa.string()), table.column(SOURCE), " of ")


def _chunks(batches: Any, rows: int) -> Any:
    """Record batches regrouped into tables of about ``rows`` rows."""
    import pyarrow as pa

    pending: list[pa.RecordBatch] = []
    n = 0
    for batch in batches:
        pending.append(batch)
        n += batch.num_rows
        if n >= rows:
            yield pa.Table.from_batches(pending)
            pending, n = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def validate(code: str, run_id: str, *, settings: Settings | None = None) -> dict[str, Any]:
    """Check the run's landed rows; quarantine bad rows with their reasons; apply the policy.

    The rows are streamed from the raw zone in chunks of ``validate_chunk_rows``: row rules run
    per chunk and the bad rows of each chunk are kept; key uniqueness and the volume check run
    once on the run's keys (see :func:`quality.validate.validate_chunks`).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from connectors.common import read_ahead
    from lake import QUARANTINE, RAW
    from quality.validate import validate_chunks

    t0 = time.perf_counter()
    h = hub(settings)
    spec = store.get_dataset(h.engine, code).spec
    with run_step(h, code, run_id, "validate") as step:
        run = step.run
        previous = run_store.last_successful_run(h.engine, code, full_only=True) if run["full"] else None
        rules = quality_rules(spec, previous["rows_read"] if previous else None)
        several_files = len(run["files"] or []) > 1
        record_names = [f.name for f in spec.fields] + [EXTRA]
        bad_parts: list[pa.Table] = []

        def labelled() -> Any:
            batches = h.lake.read_batches(RAW, code, row_filter=run_filter(run_id))
            for chunk in _chunks(batches, h.settings.validate_chunk_rows):
                yield chunk.append_column("_label", _row_labels(chunk)) if several_files else chunk

        def keep_bad(chunk: pa.Table, bad_ids: list[int]) -> None:
            if bad_ids:
                mask = pc.is_in(chunk.column(RID), pa.array(bad_ids, pa.int64()))
                bad_parts.append(chunk.filter(mask).select([*record_names, RID, SOURCE, ROW]))

        outcome = validate_chunks(
            read_ahead(labelled()),
            rules,
            row_id=RID,
            suite_name=f"{code}.suite",
            row_label="_label" if several_files else ROW,
            on_chunk=keep_bad,
            source_column=SOURCE,
        )
        reasons: dict[int, list[dict[str, Any]]] = {}
        for rid, violations in outcome.violations.items():
            reasons.setdefault(int(rid), []).extend(
                {"field": v.field, "rule": v.rule, "message": v.message} for v in violations
            )
        unlanded: list[dict[str, Any]] = []
        rejects = run_store.rejects_of(h.engine, run_id)
        # a value that could not be cast is null now: its not_null/other findings only repeat the cast reject
        cast_failed = {
            (int(rj["rid"]), rj["field"]) for rj in rejects if rj["rid"] is not None and rj["field"]
        }
        for rid in list(reasons):
            reasons[rid] = [r for r in reasons[rid] if (rid, r["field"]) not in cast_failed]
            if not reasons[rid]:
                del reasons[rid]
        for rj in rejects:
            reason = intake.reason_of(rj)
            if rj["rid"] is None:
                unlanded.append({**rj, "reasons": [reason]})
            else:
                reasons.setdefault(int(rj["rid"]), []).append(reason)
        bad = _bad_rows(h, code, run_id, bad_parts, set(reasons), [*record_names, RID, SOURCE, ROW])
        q_rows: list[dict[str, Any]] = []
        for row in bad.to_pylist():
            rid = int(row[RID])
            q_rows.append(
                {
                    RUN_ID: run_id,
                    RID: rid,
                    SOURCE: row[SOURCE],
                    ROW: row[ROW],
                    "reasons": json.dumps(reasons[rid], ensure_ascii=False),
                    "record": json.dumps(
                        _jsonable_row({k: row[k] for k in record_names}), ensure_ascii=False
                    ),
                }
            )
        for rj in unlanded:
            q_rows.append(
                {
                    RUN_ID: run_id,
                    RID: None,
                    SOURCE: rj["source"],
                    ROW: rj["row"],
                    "reasons": json.dumps(rj["reasons"], ensure_ascii=False),
                    "record": json.dumps({"raw": rj["value"]}, ensure_ascii=False),
                }
            )
        qschema = quarantine_schema()
        h.lake.ensure_table(QUARANTINE, code, qschema)
        # a retried validate replaces the quarantine rows an earlier try of this run wrote
        h.lake.delete_where(QUARANTINE, code, run_filter(run_id), run_id=run_id)
        step.fence()
        if q_rows:
            h.lake.append(QUARANTINE, code, pa.Table.from_pylist(q_rows, schema=qschema), run_id=run_id)
        faults.point("validate.after_quarantine_commit")
        with h.engine.begin() as conn:  # the department's correction list, in the hub DB
            corrections.replace_run(
                conn,
                code,
                run_id,
                (
                    {
                        "source": q[SOURCE],
                        "row": q[ROW],
                        "reasons": json.loads(q["reasons"]),
                        "record": json.loads(q["record"]),
                    }
                    for q in q_rows
                ),
                spec.primary_key,
            )
        total = outcome.row_count + len(unlanded)
        n_bad = intake.bad_count(q_rows)  # rows superseded by a later file's copy are not bad
        pass_rate = (total - n_bad) / total if total else 1.0
        summary = outcome.to_json()
        summary["findings"] = intake.file_findings(unlanded)  # refused files, missing columns: the report
        summary["notes"] = intake.file_notes(run["files"] or [])  # e.g. one file dropped under two names
        summary["quarantine_rows"] = len(q_rows)  # what the quarantine table got (lineage row count)
        blocked_reason = None
        volume = [c for c in outcome.dataset_checks.values() if not c.get("success", True)]
        if spec.quality.policy is QualityPolicy.BLOCK and n_bad:
            blocked_reason = f"{n_bad} bad row(s) and the policy is block"
        elif total and n_bad / total > spec.quality.max_bad_ratio:
            blocked_reason = (
                f"{n_bad / total:.1%} bad rows is above max_bad_ratio {spec.quality.max_bad_ratio:.1%}"
            )
        elif volume:
            blocked_reason = "; ".join(
                f"row count changed from {c['previous_row_count']} to {c['row_count']} "
                f"(more than the allowed {c['max_volume_change']:.0%})"
                for c in volume
            )
        # bad input: a declared column missing from a file blocks first (quality.missing_columns)
        blocked_reason = intake.blocked_by_missing_columns(spec, rejects) or blocked_reason
        run_store.update_run(
            h.engine,
            run_id,
            stage="publish",
            status="validated",
            rows_quarantined=n_bad,
            pass_rate=pass_rate,
            quality=summary,
        )
        run_store.add_duration(h.engine, run_id, "validate", time.perf_counter() - t0)
        write_report(h, spec)
        if blocked_reason:
            raise QualityBlocked(f"{code}: run {run_id} blocked by quality: {blocked_reason}")
        return {
            "dataset": code,
            "run_id": run_id,
            "rows": total,
            "quarantined": n_bad,
            "pass_rate": pass_rate,
        }
    raise AssertionError("unreachable")  # pragma: no cover - run_step re-raises


def _bad_rows(
    h: Hub, code: str, run_id: str, parts: list[pa.Table], wanted: set[int], columns: list[str]
) -> pa.Table:
    """The landed rows with these run row ids: from the chunks' bad rows, plus a filtered read of
    the raw zone for rows known bad only at the end (duplicate keys, cast rejects)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from lake import RAW

    have = pa.concat_tables(parts) if parts else None
    found = set(have.column(RID).to_pylist()) if have is not None else set()
    missing = sorted(wanted - found)
    if missing:
        from pyiceberg.expressions import And, In

        row_filter = And(run_filter(run_id), In(RID, missing))  # type: ignore[call-arg,arg-type]
        # the scan returns the table's column order: select puts them in the order of ``parts``
        extra = h.lake.read(RAW, code, row_filter=row_filter, columns=columns).select(columns)
        have = extra if have is None else pa.concat_tables([have, extra.cast(have.schema)])
    if have is None:
        return pa.table({c: pa.array([], pa.null()) for c in columns})
    have = have.filter(pc.is_in(have.column(RID), pa.array(sorted(wanted), pa.int64())))
    return have.sort_by(RID)


def write_report(h: Hub, spec: DatasetSpec) -> str:
    """Render the dataset's HTML quality report from its stored run results; return its path."""
    from quality import render_report

    recent = [
        r for r in run_store.recent_runs(h.engine, limit=10, dataset_code=spec.code) if r.get("quality")
    ]
    runs = [
        {
            **(r["quality"] or {}),
            "run_id": r["run_id"],
            "started_at": r["started_at"].isoformat(),
            "rows_read": r["rows_read"],
            "rows_quarantined": r["rows_quarantined"],
            "status": r["status"],
        }
        for r in recent
    ]
    html = render_report(spec.code, spec.name, runs)
    h.settings.reports_dir.mkdir(parents=True, exist_ok=True)
    path = h.settings.reports_dir / f"{spec.code}.html"
    path.write_text(html, encoding="utf-8")
    return str(path)
