"""The sync pipeline: one run of one dataset, extract+land -> validate -> publish.

These three functions are the Airflow tasks (see ``sharehub.dag_factory``) and also what
``sharehub sync CODE`` runs in-process. They pass state through the hub DB (the run record)
and the lake (the raw rows tagged with the run id), so each can run in its own process and be
retried. A failure at any step leaves the last published state (curated snapshot, serving
table, certificates, watermark, file ledger) untouched: those change only in ``publish``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from catalog.directory import store
from catalog.directory.model import DatasetSpec, FieldSpec, QualityPolicy
from catalog.runs import record as run_store
from catalog.serving import tables as serving
from sharehub import faults, intake
from sharehub.hub import Hub, QualityBlocked, SyncError, hub
from sharehub.run_guard import Fenced, run_step
from sharehub.settings import Settings

if TYPE_CHECKING:
    import pyarrow as pa


log = logging.getLogger("sharehub.pipeline")

RID = "_rid"  # the row's id within a run (0..n-1), unique across the run's files
RUN_ID = "_run_id"
SOURCE = "_source"
ROW = "_row"
EXTRA = "_extra"
META = (RID, RUN_ID, SOURCE, ROW, EXTRA)


# ---- schemas ------------------------------------------------------------------------------


def arrow_type(f: FieldSpec) -> pa.DataType:
    """The Arrow type of a declared field."""
    import pyarrow as pa

    ps = f.decimal_precision_scale()
    if ps:
        return pa.decimal128(ps[0], ps[1])
    return {
        "string": pa.string(),
        "integer": pa.int64(),
        "float": pa.float64(),
        "boolean": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
    }[f.type]


def declared_schema(spec: DatasetSpec) -> pa.Schema:
    """The dataset's fields as an Arrow schema."""
    import pyarrow as pa

    return pa.schema([pa.field(f.name, arrow_type(f)) for f in spec.fields])


def raw_schema(spec: DatasetSpec) -> pa.Schema:
    """Schema of the raw zone: declared fields plus where each row came from."""
    import pyarrow as pa

    meta = [
        pa.field(RID, pa.int64()),
        pa.field(RUN_ID, pa.string()),
        pa.field(SOURCE, pa.string()),
        pa.field(ROW, pa.int64()),
        pa.field(EXTRA, pa.string()),
    ]
    return pa.schema([*declared_schema(spec), *meta])


def quarantine_schema() -> pa.Schema:
    """Schema of the quarantine zone: the correction list sent back to the department."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field(RUN_ID, pa.string()),
            pa.field(RID, pa.int64()),
            pa.field(SOURCE, pa.string()),
            pa.field(ROW, pa.int64()),
            pa.field("reasons", pa.string()),  # JSON list of {field, rule, message}
            pa.field("record", pa.string()),  # JSON object of the row as received
        ]
    )


def quality_rules(spec: DatasetSpec, previous_row_count: int | None) -> Any:
    """Translate the directory's field rules into quality's plain rules."""
    from quality.rules import ColumnRule, DatasetRules

    cols: list[ColumnRule] = []
    for f in spec.fields:
        r = f.rules
        for flag in ("not_null", "unique", "citizen_id", "credit_code", "mobile", "not_future"):
            if getattr(r, flag):
                cols.append(ColumnRule(f.name, flag))
        if r.enum:
            cols.append(ColumnRule(f.name, "enum", {"values": list(r.enum)}))
        if r.range:
            cols.append(ColumnRule(f.name, "range", r.range.model_dump(exclude_none=True)))
        if r.regex:
            cols.append(ColumnRule(f.name, "regex", {"pattern": r.regex}))
        if r.max_length is not None:
            cols.append(ColumnRule(f.name, "max_length", {"max": r.max_length}))
        if r.compare:
            cols.append(ColumnRule(f.name, "compare", {"op": r.compare.op, "other": r.compare.other}))
    return DatasetRules(
        key=list(spec.primary_key),
        columns=cols,
        max_volume_change=spec.quality.max_volume_change,
        previous_row_count=previous_row_count,
        duplicate_keys=spec.quality.duplicate_keys.value,
    )


def run_filter(run_id: str) -> Any:
    """Iceberg row filter for the rows of one run."""
    from pyiceberg.expressions import EqualTo

    return EqualTo(RUN_ID, run_id)  # type: ignore[call-arg,arg-type]


def _run_rows(h: Hub, code: str, run_id: str, zone: str) -> pa.Table:
    return h.lake.read(zone, code, row_filter=run_filter(run_id))


# ---- step 1: extract + land ---------------------------------------------------------------


def _open_connector(h: Hub, spec: DatasetSpec, *, full: bool) -> tuple[Any, Any]:
    """The connector for a dataset's source and the watermark it starts from."""
    from connectors import open_connector

    src = spec.source
    location = h.settings.connection(src.connection)
    if src.kind == "sql":
        watermark = (
            None
            if full or not src.cursor
            else run_store.from_json_value(run_store.get_watermark(h.engine, spec.code))
        )
        lookback = _parse_lookback(src.lookback)
        columns = [f.source_name or f.name for f in spec.fields] if src.table else None
        conn = open_connector(
            "sql",
            url=location,
            table=src.table,
            query=src.query,
            columns=columns,
            cursor=src.cursor,
            watermark=watermark,
            lookback=lookback,
            batch_size=h.settings.batch_size,
        )
        return conn, watermark
    seen = {} if full else run_store.ledger(h.engine, spec.code)
    conn = open_connector(
        "file",
        location=location,
        pattern=src.path,
        format=src.format,
        encoding=src.encoding,
        sheet=src.sheet,
        seen=seen,
        s3=h.settings.s3_options() if location.startswith("s3://") else None,
        batch_size=h.settings.batch_size,
        columns=intake.file_columns(spec),  # bad input: headers matched to the declared fields
    )
    return conn, None


def _parse_lookback(text: str | None) -> dt.timedelta | None:
    if not text:
        return None
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    num, unit = text[:-1], text[-1]
    if unit not in units or not num.isdigit():
        raise SyncError(f"lookback {text!r} must look like 30m, 1h or 2d")
    return dt.timedelta(**{units[unit]: int(num)})


def extract_land(
    code: str, run_id: str, *, full: bool = False, trigger: str = "airflow", settings: Settings | None = None
) -> dict[str, Any]:
    """Read the source and append what was read to the raw zone, tagged with the run id.

    Under the run protocol (:mod:`sharehub.run_guard`): a retry under the same run id starts the
    run over — the raw rows an earlier try landed are deleted first, so they are never doubled —
    and a run that already published is refused. A serving table found behind its curated
    snapshot is reloaded before anything else."""
    import pyarrow as pa

    from connectors.conform import conform
    from connectors.drift import compare_schema
    from lake import RAW

    t0 = time.perf_counter()
    h = hub(settings)
    ds = store.get_dataset(h.engine, code)
    spec = ds.spec
    with run_step(h, code, run_id, "extract_land") as step:
        base = _curated_snapshot(h, code)
        run_store.start_run(
            h.engine, run_id, code, ds.version, full=full, trigger=trigger, base_snapshot_id=base
        )
        converge_serving(h, spec, run_id)
        connector, watermark = _open_connector(h, spec, full=full)
        target = declared_schema(spec)
        rschema = raw_schema(spec)
        # file connectors match headers to the fields themselves (NFKC, title rows; sharehub.intake)
        sql = spec.source.kind == "sql"
        source_names = {f.name: f.source_name for f in spec.fields if f.source_name} if sql else {}
        normalize = intake.normalisations(spec)
        rejects: list[dict[str, Any]] = []
        drift_seen: dict[str, Any] = {}
        counter = {"rows": 0}

        def batches() -> Any:
            for batch in connector.read_batches():
                source_cols = [n for n in batch.schema.names if n not in (SOURCE, ROW)]
                if not drift_seen.get("checked"):
                    drift_seen["checked"] = True
                    # only typed sources (SQL, Parquet) can be "retyped"; text drops arrive as strings
                    typed_source = spec.source.kind == "sql" or spec.source.format == "parquet"
                    cols: Any = (
                        {n: batch.schema.field(n).type for n in source_cols} if typed_source else source_cols
                    )
                    drift = compare_schema(cols, target, source_names=source_names)
                    if not drift.empty:
                        drift_seen["report"] = {
                            "added": drift.added,
                            "missing": drift.missing,
                            "retyped": [list(x) for x in drift.retyped],
                            "message": drift.describe(),
                        }
                        if spec.source.drift.value == "fail":
                            raise SyncError(
                                f"{code}: {drift.describe()} (the dataset's drift policy is fail)"
                            )
                        log.warning("%s: %s", code, drift.describe())
                        if sql:  # files report their own missing columns, per file
                            rejects.extend(intake.sql_missing_columns(spec, drift.missing))
                conformed = conform(batch, target, source_names=source_names, normalize=normalize)
                n = conformed.batch.num_rows
                start = counter["rows"]
                counter["rows"] += n
                rids = pa.array(range(start, start + n), pa.int64())
                rejects.extend(_reject_record(rj) for rj in conformed.rejects)
                out = conformed.batch
                cols = {name: out.column(name) for name in out.schema.names}
                cols[RID] = rids
                cols[RUN_ID] = pa.array([run_id] * n, pa.string())
                yield pa.RecordBatch.from_arrays([cols[f.name] for f in rschema], schema=rschema)
                if start == 0:
                    faults.point("extract.after_first_batch")

        h.lake.ensure_table(RAW, code, rschema)
        # a retried extract replaces what an earlier try of this run landed
        h.lake.delete_where(RAW, code, run_filter(run_id), run_id=run_id)
        step.fence()
        raw_snapshot = h.lake.append(RAW, code, batches(), run_id=run_id)
        faults.point("extract.after_raw_commit")
        # rows the connector could not read at all never landed: they find no run row id; its
        # field findings on rows that landed (an xlsx formula without a value) do
        rejects.extend(_reject_record(rj) for rj in getattr(connector, "rejects", []))
        # rejects of a cast carry (source, row): give them the row's run id
        if rejects and counter["rows"]:
            rejects = _locate_rids(h, code, run_id, rejects)
        run_store.add_rejects(h.engine, run_id, rejects)
        files = intake.file_entries(connector)
        new_wm = getattr(connector, "new_watermark", None)
        run_store.update_run(
            h.engine,
            run_id,
            stage="validate",
            status="landed",
            rows_read=counter["rows"],
            rows_rejected=len({(r["source"], r["row"]) for r in rejects}),
            raw_snapshot_id=raw_snapshot,
            watermark_before=run_store.as_json_value(watermark),
            watermark_after=run_store.as_json_value(new_wm if new_wm is not None else watermark),
            files=files,
            drift=drift_seen.get("report"),
        )
        run_store.add_duration(h.engine, run_id, "extract_land", time.perf_counter() - t0)
        return {
            "dataset": code,
            "run_id": run_id,
            "rows_read": counter["rows"],
            "raw_snapshot_id": raw_snapshot,
            "rejects": len(rejects),
            "files": [f["name"] for f in files],
        }
    raise AssertionError("unreachable")  # pragma: no cover - run_step re-raises


def _curated_snapshot(h: Hub, code: str) -> int | None:
    """The dataset's current curated snapshot (None before its first publish)."""
    from lake import CURATED

    return h.lake.current_snapshot_id(CURATED, code) if h.lake.table_exists(CURATED, code) else None


def converge_serving(h: Hub, spec: DatasetSpec, run_id: str) -> int | None:
    """Make the serving table reflect the current curated snapshot; the snapshot it reflects.

    When the recorded serving snapshot is not the curated one (a run died between its curated
    commit and the serving refresh, or the table was recreated), the table is reloaded whole
    from the curated snapshot — the repair every run makes before anything else."""
    current = _curated_snapshot(h, spec.code)
    fresh = serving.ensure_serving_table(h.engine, spec)
    known, served = serving.state(h.engine, spec.code)
    if known and served == current and not fresh:
        return current
    if known or current is not None or not serving.is_empty(h.engine, spec):
        log.warning(
            "%s: serving reflects snapshot %s, curated is at %s: reloading serving from curated",
            spec.code,
            served if known else "(unknown)",
            current,
        )
    serving.refresh(
        h.engine,
        spec,
        _snapshot_batches(h, spec.code, current),
        run_id=run_id,
        replace=True,
        snapshot_id=current,
    )
    return current


def _reject_record(rj: Any) -> dict[str, Any]:
    """A connector Reject as a hub_run_rejects row (its run row id filled in later, if it landed)."""
    return intake.reject_record(rj)


def _locate_rids(h: Hub, code: str, run_id: str, rejects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from lake import RAW

    table = _run_rows(h, code, run_id, RAW).select([RID, SOURCE, ROW])
    index = {
        (s, r): rid
        for rid, s, r in zip(*(table.column(c).to_pylist() for c in (RID, SOURCE, ROW)), strict=True)
    }
    return [{**rj, "rid": index.get((rj["source"], rj["row"]))} for rj in rejects]


# ---- step 2: validate ---------------------------------------------------------------------


def _jsonable_row(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, dt.date | dt.datetime):
            out[k] = v.isoformat()
        elif v is None or isinstance(v, int | float | str | bool):
            out[k] = v
        else:
            out[k] = str(v)
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
        total = outcome.row_count + len(unlanded)
        n_bad = intake.bad_count(q_rows)  # rows superseded by a later file's copy are not bad
        pass_rate = (total - n_bad) / total if total else 1.0
        summary = outcome.to_json()
        summary["findings"] = intake.file_findings(unlanded)  # refused files, missing columns: the report
        summary["notes"] = intake.file_notes(run["files"] or [])  # e.g. one file dropped under two names
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


# ---- step 3: publish ----------------------------------------------------------------------


def publish(code: str, run_id: str, *, settings: Settings | None = None) -> dict[str, Any]:
    """Commit the good rows to curated (one snapshot), bring serving to that snapshot, issue the
    certificates, and record the run — resumable and fenced (see the module docstring).

    * **Fenced**: the run must start from the dataset's published state. When the curated table
      is no longer at the snapshot the run started from (a newer run published since), the step
      is refused: a late retry must not overwrite newer data or rewind the watermark and ledger.
    * **Resumable**: when this run's curated commit is already there (an earlier try died after
      it), the commit is not made again; the try goes on from there. Serving is brought to the
      run's snapshot — by the run's own rows when it reflected the run's starting snapshot, else
      by a reload from curated — and the certificates issued (idempotent).
    * **One last transaction** checks the lock is still the run's, stores the watermark and the
      file ledger, records the success and releases the lock.
    """
    import pyarrow as pa

    from catalog.auth.keys import KeyStore
    from catalog.certificates import issuing
    from catalog.runs import lease
    from lake import CURATED, QUARANTINE, RAW

    t0 = time.perf_counter()
    h = hub(settings)
    ds = store.get_dataset(h.engine, code)
    spec = ds.spec
    with run_step(h, code, run_id, "publish") as step:
        run = step.run
        names = [f.name for f in spec.fields]
        declared = declared_schema(spec)
        h.lake.ensure_table(CURATED, code, declared, key=list(spec.primary_key))
        current = h.lake.current_snapshot_id(CURATED, code)
        own = h.lake.snapshot_for_run(CURATED, code, run_id)
        base = run["base_snapshot_id"]
        if own is not None and own != current:
            raise Fenced(
                f"{code}: run {run_id} published snapshot {own}, but snapshot {current} of a newer run "
                "is current; nothing is changed"
            )
        if own is None and current != base:
            newer = h.lake.snapshots(CURATED, code)[-1].run_id if current is not None else None
            raise Fenced(
                f"{code}: run {run_id} started from snapshot {base}, but the published state is now "
                f"snapshot {current} (run {newer}); publishing it late would overwrite newer data — "
                "start a new run"
            )
        bad_rids = (
            _run_rows(h, code, run_id, QUARANTINE).column(RID).drop_null()
            if h.lake.table_exists(QUARANTINE, code)
            else None
        )

        def good_batches() -> Any:
            import pyarrow.compute as pc

            for b in h.lake.read_batches(RAW, code, row_filter=run_filter(run_id), columns=[*names, RID]):
                if bad_rids is not None and len(bad_rids):
                    b = b.filter(pc.invert(pc.is_in(b.column(RID), bad_rids)))
                yield pa.RecordBatch.from_arrays([b.column(n) for n in names], names=names).cast(declared)

        fresh = serving.ensure_serving_table(h.engine, spec)
        known, served = serving.state(h.engine, code)
        # serving can take the run's own rows only if it reflected the run's starting snapshot
        serving_at_base = known and served == base and not fresh
        good: pa.Table | None = None
        n_good: int
        result: Any = None
        if own is None and run["full"] and h.engine.dialect.name == "postgresql":
            step.fence()
            faults.point("publish.before_curated_commit")
            result = _publish_full_with_serving(h, spec, good_batches(), run_id)
            snapshot, n_good = result.snapshot_id, result.inserted
        elif own is None and run["full"]:
            step.fence()
            faults.point("publish.before_curated_commit")
            result = h.lake.overwrite(code, good_batches(), run_id=run_id)
            snapshot, n_good = result.snapshot_id, result.inserted
            faults.point("publish.after_curated_commit")
            _reload_serving(h, spec, snapshot, run_id)
        elif own is None:
            good = pa.Table.from_batches(list(good_batches()), schema=declared)
            step.fence()
            faults.point("publish.before_curated_commit")
            result = h.lake.upsert(code, good, key=list(spec.primary_key), run_id=run_id)
            snapshot = result.snapshot_id if result.snapshot_id is not None else _curated_snapshot(h, code)
            n_good = good.num_rows
            faults.point("publish.after_curated_commit")
            _serve_upsert(h, spec, good, snapshot, run_id, at_base=serving_at_base)
        else:  # resumed: the run's curated commit landed in an earlier try
            snapshot = own
            log.warning("%s: run %s resumes after its curated commit (snapshot %s)", code, run_id, own)
            if run["full"]:
                n_good = sum(b.num_rows for b in good_batches())
                if not (known and served == snapshot):
                    _reload_serving(h, spec, snapshot, run_id)
            else:
                good = pa.Table.from_batches(list(good_batches()), schema=declared)
                n_good = good.num_rows
                if not (known and served == snapshot):
                    _serve_upsert(h, spec, good, snapshot, run_id, at_base=serving_at_base)
        faults.point("publish.after_serving_commit")
        issued: dict[str, Any] = {}
        for ct in store.certificate_types_for(h.engine, code):
            if spec.certificate and spec.certificate.type_code == ct["code"]:
                rows = (
                    good
                    if good is not None and serving_at_base
                    else h.lake.read(CURATED, code, snapshot_id=snapshot)
                )
                signer = KeyStore(h.engine, h.settings.signing_keys_dir).active("certificate")
                res = issuing.issue(
                    h.engine, spec, ds.department, ct["code"], rows, run_id=run_id, signer=signer
                )
                issued[ct["code"]] = res.__dict__
        run_store.add_duration(h.engine, run_id, "publish", time.perf_counter() - t0)
        faults.point("publish.before_final_record")
        step.fence()
        with h.engine.begin() as conn:
            if not lease.holds(conn, code, run_id):
                raise Fenced(
                    f"{code}: run {run_id} no longer holds the dataset's lock; its record is not written"
                )
            if run["full"]:
                run_store.reset_dataset_state(conn, code)
            if spec.source.cursor and run["watermark_after"] is not None:
                run_store.set_watermark(conn, code, run["watermark_after"], run_id)
            run_store.record_files(conn, code, run["files"] or [], run_id)
            run_store.finish_run_in(conn, run_id, "success", rows_published=n_good, snapshot_id=snapshot)
            lease.release(conn, code, run_id)
        return {
            "dataset": code,
            "run_id": run_id,
            "published": n_good,
            "snapshot_id": snapshot,
            "inserted": result.inserted if result is not None else None,
            "updated": result.updated if result is not None else None,
            "resumed": own is not None,
            "certificates": issued,
        }
    raise AssertionError("unreachable")  # pragma: no cover - run_step re-raises


def _faulty(batches: Any) -> Any:
    """The serving load's batches, with the fault point half-way (after the first batch)."""
    for i, b in enumerate(batches):
        yield b
        if i == 0:
            faults.point("publish.during_serving_load")


def _serve_upsert(
    h: Hub, spec: DatasetSpec, good: pa.Table, snapshot: int | None, run_id: str, *, at_base: bool
) -> None:
    """Bring serving to ``snapshot`` after an upsert: apply the run's good rows when serving was
    at the run's base, else reload it whole from the snapshot."""
    if at_base:
        serving.refresh(
            h.engine, spec, _faulty(good.to_batches()), run_id=run_id, replace=False, snapshot_id=snapshot
        )
    else:
        _reload_serving(h, spec, snapshot, run_id)


def _reload_serving(h: Hub, spec: DatasetSpec, snapshot: int | None, run_id: str) -> None:
    """Replace the serving table with curated ``snapshot`` (and record that it reflects it)."""
    serving.refresh(
        h.engine,
        spec,
        _faulty(_snapshot_batches(h, spec.code, snapshot)),
        run_id=run_id,
        replace=True,
        snapshot_id=snapshot,
    )


def _snapshot_batches(h: Hub, code: str, snapshot: int | None) -> Any:
    from lake import CURATED

    return h.lake.read_batches(CURATED, code, snapshot_id=snapshot) if snapshot else iter(())


def _publish_full_with_serving(h: Hub, spec: DatasetSpec, batches: Any, run_id: str) -> Any:
    """A full run's rows to curated (this thread) and serving (a thread) from one read.

    The serving table is loaded and indexed beside the lake write, then waits: it is swapped
    in only after the lake's commit succeeded, so a failed lake write leaves both as they were.
    """
    import threading

    from sharehub.fanout import Fanout

    lake_done = threading.Event()
    lake_ok: list[bool] = []

    def wait_for_lake() -> None:
        lake_done.wait()
        if not lake_ok:
            raise SyncError(f"{spec.code}: the curated write failed; the serving table is left as it was")

    committed: list[Any] = []

    def load_serving(rows: Any) -> int:
        return serving.refresh(
            h.engine,
            spec,
            _faulty(rows),
            run_id=run_id,
            replace=True,
            before_commit=wait_for_lake,
            snapshot_id=lambda: committed[0].snapshot_id,
        )

    with Fanout(load_serving, name=f"serving-{spec.code}") as fan:
        try:
            result = h.lake.overwrite(spec.code, fan.feed(batches), run_id=run_id)
            committed.append(result)
            lake_ok.append(True)
            faults.point("publish.after_curated_commit")
        finally:
            lake_done.set()
        fan.result()
    return result


def new_run_id(trigger: str = "cli") -> str:
    """A run id like Airflow's: ``cli__2026-11-22T10:00:00.123456+00:00``."""
    return f"{trigger}__{dt.datetime.now(dt.UTC).isoformat()}"


def sync(
    code: str, *, full: bool = False, settings: Settings | None = None, run_id: str | None = None
) -> dict[str, Any]:
    """Run the three steps in-process (the same code path as the DAG tasks)."""
    rid = run_id or new_run_id("cli")
    out: dict[str, Any] = {"run_id": rid}
    out["extract_land"] = extract_land(code, rid, full=full, trigger="cli", settings=settings)
    out["validate"] = validate(code, rid, settings=settings)
    out["publish"] = publish(code, rid, settings=settings)
    return out
