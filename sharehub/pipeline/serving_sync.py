"""Keeping serving equal to curated: the snapshot serving reflects, the repair every run makes
first (``converge_serving``), the incremental update after an upsert and the full reload."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from catalog.directory.model import DatasetSpec
from catalog.serving import tables as serving
from sharehub.hub import Hub
from sharehub.pipeline import faults

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("sharehub.pipeline")


def curated_snapshot(h: Hub, code: str) -> int | None:
    """The dataset's current curated snapshot (None before its first publish)."""
    from lake import CURATED

    return h.lake.current_snapshot_id(CURATED, code) if h.lake.table_exists(CURATED, code) else None


def converge_serving(h: Hub, spec: DatasetSpec, run_id: str) -> int | None:
    """Make the serving table reflect the current curated snapshot; the snapshot it reflects.

    When the recorded serving snapshot is not the curated one (a run died between its curated
    commit and the serving refresh, or the table was recreated), the table is reloaded whole
    from the curated snapshot — the repair every run makes before anything else."""
    current = curated_snapshot(h, spec.code)
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
        snapshot_batches(h, spec.code, current),
        run_id=run_id,
        replace=True,
        snapshot_id=current,
    )
    return current


def faulty_batches(batches: Any) -> Any:
    """The serving load's batches, with the fault point half-way (after the first batch)."""
    for i, b in enumerate(batches):
        yield b
        if i == 0:
            faults.point("publish.during_serving_load")


def serve_upsert(
    h: Hub, spec: DatasetSpec, good: pa.Table, snapshot: int | None, run_id: str, *, at_base: bool
) -> None:
    """Bring serving to ``snapshot`` after an upsert: apply the run's good rows when serving was
    at the run's base, else reload it whole from the snapshot."""
    if at_base:
        serving.refresh(
            h.engine,
            spec,
            faulty_batches(good.to_batches()),
            run_id=run_id,
            replace=False,
            snapshot_id=snapshot,
        )
    else:
        reload_serving(h, spec, snapshot, run_id)


def reload_serving(h: Hub, spec: DatasetSpec, snapshot: int | None, run_id: str) -> None:
    """Replace the serving table with curated ``snapshot`` (and record that it reflects it)."""
    serving.refresh(
        h.engine,
        spec,
        faulty_batches(snapshot_batches(h, spec.code, snapshot)),
        run_id=run_id,
        replace=True,
        snapshot_id=snapshot,
    )


def snapshot_batches(h: Hub, code: str, snapshot: int | None) -> Any:
    from lake import CURATED

    return h.lake.read_batches(CURATED, code, snapshot_id=snapshot) if snapshot else iter(())
