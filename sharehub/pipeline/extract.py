"""Step 1, extract + land: stream the department source into the run's raw rows (replaced on retry)."""

from __future__ import annotations

import logging
import time
from typing import Any

from catalog.directory import store
from catalog.runs import record as run_store
from sharehub.hub import Hub, SyncError, hub
from sharehub.pipeline import faults, intake
from sharehub.pipeline.adapters import open_source
from sharehub.pipeline.run_guard import run_step
from sharehub.pipeline.schemas import (
    RID,
    ROW,
    RUN_ID,
    SOURCE,
    declared_schema,
    raw_schema,
    run_filter,
    run_rows,
)
from sharehub.pipeline.serving_sync import converge_serving, curated_snapshot
from sharehub.settings import Settings

log = logging.getLogger("sharehub.pipeline")


def extract_land(
    code: str, run_id: str, *, full: bool = False, trigger: str = "airflow", settings: Settings | None = None
) -> dict[str, Any]:
    """Read the source and append what was read to the raw zone, tagged with the run id.

    Under the run protocol (:mod:`sharehub.pipeline.run_guard`): a retry under the same run id starts the
    run over — the raw rows an earlier try landed are deleted first, so they are never doubled —
    and a run that already published is refused. A serving table found behind its curated
    snapshot is reloaded before anything else."""
    import numpy as np
    import pyarrow as pa

    from connectors.conform import conform
    from connectors.drift import compare_schema
    from lake import RAW

    t0 = time.perf_counter()
    h = hub(settings)
    ds = store.get_dataset(h.engine, code)
    spec = ds.spec
    with run_step(h, code, run_id, "extract_land") as step:
        base = curated_snapshot(h, code)
        run_store.start_run(
            h.engine, run_id, code, ds.version, full=full, trigger=trigger, base_snapshot_id=base
        )
        converge_serving(h, spec, run_id)
        connector, watermark = open_source(h, spec, full=full)
        target = declared_schema(spec)
        rschema = raw_schema(spec)
        # file connectors match headers to the fields themselves (NFKC, title rows; sharehub.pipeline.intake)
        renamed_here = not spec.source.matches_columns
        source_names = {f.name: f.source_name for f in spec.fields if f.source_name} if renamed_here else {}
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
                    typed_source = spec.source.typed
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
                        if renamed_here:  # files report their own missing columns, per file
                            rejects.extend(intake.result_missing_columns(spec, drift.missing))
                conformed = conform(batch, target, source_names=source_names, normalize=normalize)
                n = conformed.batch.num_rows
                start = counter["rows"]
                counter["rows"] += n
                # built in C, not from Python ints: pa.array(range(...)) cost ~2 µs a row
                rids = pa.array(np.arange(start, start + n, dtype=np.int64))
                rejects.extend(_reject_record(rj) for rj in conformed.rejects)
                out = conformed.batch
                cols = {name: out.column(name) for name in out.schema.names}
                cols[RID] = rids
                cols[RUN_ID] = pa.repeat(pa.scalar(run_id, pa.string()), n)
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


def _reject_record(rj: Any) -> dict[str, Any]:
    """A connector Reject as a hub_run_rejects row (its run row id filled in later, if it landed)."""
    return intake.reject_record(rj)


def _locate_rids(h: Hub, code: str, run_id: str, rejects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from lake import RAW

    table = run_rows(h, code, run_id, RAW).select([RID, SOURCE, ROW])
    index = {
        (s, r): rid
        for rid, s, r in zip(*(table.column(c).to_pylist() for c in (RID, SOURCE, ROW)), strict=True)
    }
    return [{**rj, "rid": index.get((rj["source"], rj["row"]))} for rj in rejects]
