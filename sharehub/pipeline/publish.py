"""Step 3, publish: the good rows into curated (fenced on the run's base snapshot), then serving."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from catalog.directory import store
from catalog.directory.model import DatasetSpec
from catalog.runs import record as run_store
from catalog.serving import tables as serving
from sharehub.hub import Hub, SyncError, hub
from sharehub.pipeline import faults
from sharehub.pipeline.run_guard import Fenced, run_step
from sharehub.pipeline.schemas import RID, declared_schema, run_filter, run_rows
from sharehub.pipeline.serving_sync import curated_snapshot, faulty_batches, reload_serving, serve_upsert
from sharehub.settings import Settings

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("sharehub.pipeline")


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
            run_rows(h, code, run_id, QUARANTINE).column(RID).drop_null()
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
            reload_serving(h, spec, snapshot, run_id)
        elif own is None:
            good = pa.Table.from_batches(list(good_batches()), schema=declared)
            step.fence()
            faults.point("publish.before_curated_commit")
            result = h.lake.upsert(code, good, key=list(spec.primary_key), run_id=run_id)
            snapshot = result.snapshot_id if result.snapshot_id is not None else curated_snapshot(h, code)
            n_good = good.num_rows
            faults.point("publish.after_curated_commit")
            serve_upsert(h, spec, good, snapshot, run_id, at_base=serving_at_base)
        else:  # resumed: the run's curated commit landed in an earlier try
            snapshot = own
            log.warning("%s: run %s resumes after its curated commit (snapshot %s)", code, run_id, own)
            if run["full"]:
                n_good = sum(b.num_rows for b in good_batches())
                if not (known and served == snapshot):
                    reload_serving(h, spec, snapshot, run_id)
            else:
                good = pa.Table.from_batches(list(good_batches()), schema=declared)
                n_good = good.num_rows
                if not (known and served == snapshot):
                    serve_upsert(h, spec, good, snapshot, run_id, at_base=serving_at_base)
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
            if spec.source.incremental and run["watermark_after"] is not None:
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


def _publish_full_with_serving(h: Hub, spec: DatasetSpec, batches: Any, run_id: str) -> Any:
    """A full run's rows to curated (this thread) and serving (a thread) from one read.

    The serving table is loaded and indexed beside the lake write, then waits: it is swapped
    in only after the lake's commit succeeded, so a failed lake write leaves both as they were.
    """
    import threading

    from sharehub.pipeline.fanout import Fanout

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
            faulty_batches(rows),
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
