"""The record of sync runs: status, counts, snapshot ids, quality, watermarks, file ledger."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from catalog.clock import utc_now
from catalog.db import tables


def start_run(
    engine: sa.Engine,
    run_id: str,
    dataset_code: str,
    version: int,
    *,
    full: bool,
    trigger: str,
    base_snapshot_id: int | None = None,
) -> None:
    """Record a run as started; a retried run id starts over (its rejects are cleared, its
    step attempts counted on). ``base_snapshot_id``: the curated snapshot it starts from."""
    previous = None
    with engine.connect() as conn:
        previous = conn.execute(
            sa.select(tables.sync_runs.c.attempts).where(tables.sync_runs.c.run_id == run_id)
        ).scalar()
    attempts = dict(previous or {})
    attempts["extract_land"] = int(attempts.get("extract_land", 0)) + 1
    row = {
        "dataset_code": dataset_code,
        "dataset_version": version,
        "status": "running",
        "stage": "extract_land",
        "full": full,
        "trigger": trigger,
        "started_at": utc_now(),
        "finished_at": None,
        "rows_read": None,
        "rows_rejected": None,
        "rows_published": None,
        "rows_quarantined": None,
        "pass_rate": None,
        "raw_snapshot_id": None,
        "snapshot_id": None,
        "error": None,
        "durations": {},
        "base_snapshot_id": base_snapshot_id,
        "attempts": attempts,
        "watermark_before": None,
        "watermark_after": None,
        "files": None,
        "drift": None,
        "quality": None,
    }
    with engine.begin() as conn:
        conn.execute(tables.run_rejects.delete().where(tables.run_rejects.c.run_id == run_id))
        if conn.execute(
            sa.select(tables.sync_runs.c.run_id).where(tables.sync_runs.c.run_id == run_id)
        ).first():
            conn.execute(tables.sync_runs.update().where(tables.sync_runs.c.run_id == run_id).values(**row))
        else:
            conn.execute(tables.sync_runs.insert().values(run_id=run_id, **row))


def update_run(engine: sa.Engine, run_id: str, **values: Any) -> None:
    """Update fields of a run record."""
    with engine.begin() as conn:
        conn.execute(tables.sync_runs.update().where(tables.sync_runs.c.run_id == run_id).values(**values))


def add_duration(engine: sa.Engine, run_id: str, stage: str, seconds: float) -> None:
    """Record how long a stage took."""
    run = get_run(engine, run_id)
    durations = dict(run.get("durations") or {})
    durations[stage] = round(seconds, 3)
    update_run(engine, run_id, durations=durations)


def finish_run(
    engine: sa.Engine, run_id: str, status: str, *, error: str | None = None, **values: Any
) -> None:
    """Close a run with its final status."""
    update_run(engine, run_id, status=status, stage="done", finished_at=utc_now(), error=error, **values)


def finish_run_in(conn: sa.Connection, run_id: str, status: str, **values: Any) -> None:
    """:func:`finish_run` inside the caller's transaction (publish's last commit)."""
    conn.execute(
        tables.sync_runs.update()
        .where(tables.sync_runs.c.run_id == run_id)
        .values(status=status, stage="done", finished_at=utc_now(), error=None, **values)
    )


def fail_run(engine: sa.Engine, run_id: str, step: str, error: str, *, status: str = "failed") -> None:
    """A step failed: the run is ``failed`` (or ``blocked``) and keeps the step as its ``stage``,
    so that a retry of that step knows the earlier ones are done."""
    update_run(engine, run_id, status=status, stage=step, finished_at=utc_now(), error=error[:4000])


def begin_step(engine: sa.Engine, run_id: str, step: str, status: str) -> None:
    """A later step (validate, publish) starts or is retried: count the attempt, clear the error."""
    run = get_run(engine, run_id)
    attempts = dict(run.get("attempts") or {})
    attempts[step] = int(attempts.get(step, 0)) + 1
    update_run(engine, run_id, stage=step, status=status, error=None, finished_at=None, attempts=attempts)


def get_run(engine: sa.Engine, run_id: str) -> dict[str, Any]:
    """One run record; KeyError when unknown."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(tables.sync_runs).where(tables.sync_runs.c.run_id == run_id)).first()
    if row is None:
        raise KeyError(f"no sync run {run_id!r}")
    return dict(row._mapping)


def recent_runs(
    engine: sa.Engine, *, limit: int = 20, dataset_code: str | None = None
) -> list[dict[str, Any]]:
    """Most recent runs first."""
    q = sa.select(tables.sync_runs).order_by(tables.sync_runs.c.started_at.desc()).limit(limit)
    if dataset_code:
        q = q.where(tables.sync_runs.c.dataset_code == dataset_code)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def last_successful_run(
    engine: sa.Engine, dataset_code: str, *, full_only: bool = False
) -> dict[str, Any] | None:
    """The latest run of a dataset that published."""
    q = (
        sa.select(tables.sync_runs)
        .where(tables.sync_runs.c.dataset_code == dataset_code, tables.sync_runs.c.status == "success")
        .order_by(tables.sync_runs.c.started_at.desc())
        .limit(1)
    )
    if full_only:
        q = q.where(tables.sync_runs.c.full.is_(True))
    with engine.connect() as conn:
        row = conn.execute(q).first()
    return dict(row._mapping) if row else None


def add_rejects(engine: sa.Engine, run_id: str, rejects: Iterable[dict[str, Any]]) -> int:
    """Store rows a connector could not read or cast (they join the run's quarantine)."""
    rows = [{"run_id": run_id, **r} for r in rejects]
    if rows:
        with engine.begin() as conn:
            conn.execute(tables.run_rejects.insert(), rows)
    return len(rows)


def rejects_of(engine: sa.Engine, run_id: str) -> list[dict[str, Any]]:
    """The connector rejects of a run."""
    t = tables.run_rejects
    with engine.connect() as conn:
        return [
            dict(r._mapping) for r in conn.execute(sa.select(t).where(t.c.run_id == run_id).order_by(t.c.id))
        ]


def get_watermark(engine: sa.Engine, dataset_code: str) -> Any:
    """The stored incremental watermark (JSON value), None before the first successful run."""
    with engine.connect() as conn:
        return conn.execute(
            sa.select(tables.watermarks.c.value).where(tables.watermarks.c.dataset_code == dataset_code)
        ).scalar()


def set_watermark(conn: sa.Connection, dataset_code: str, value: Any, run_id: str) -> None:
    """Store the watermark (inside the caller's transaction)."""
    t = tables.watermarks
    conn.execute(t.delete().where(t.c.dataset_code == dataset_code))
    conn.execute(
        t.insert().values(dataset_code=dataset_code, value=value, run_id=run_id, updated_at=utc_now())
    )


def ledger(engine: sa.Engine, dataset_code: str) -> dict[str, str]:
    """Files already taken for a dataset: name -> sha256."""
    t = tables.file_ledger
    with engine.connect() as conn:
        return {
            r.file_name: r.checksum
            for r in conn.execute(sa.select(t).where(t.c.dataset_code == dataset_code))
        }


def record_files(
    conn: sa.Connection, dataset_code: str, files: Iterable[dict[str, Any]], run_id: str
) -> None:
    """Add taken files to the ledger (inside the caller's transaction)."""
    t = tables.file_ledger
    now = utc_now()
    for f in files:
        conn.execute(t.delete().where(t.c.dataset_code == dataset_code, t.c.file_name == f["name"]))
        conn.execute(
            t.insert().values(
                dataset_code=dataset_code,
                file_name=f["name"],
                checksum=f["checksum"],
                rows=f["rows"],
                run_id=run_id,
                taken_at=now,
            )
        )


def reset_dataset_state(conn: sa.Connection, dataset_code: str) -> None:
    """Forget the watermark and file ledger (a full resync takes everything again)."""
    conn.execute(tables.watermarks.delete().where(tables.watermarks.c.dataset_code == dataset_code))
    conn.execute(tables.file_ledger.delete().where(tables.file_ledger.c.dataset_code == dataset_code))


def as_json_value(value: Any) -> Any:
    """Watermark values as JSON: datetimes/dates in ISO form, decimals as strings."""
    if isinstance(value, dt.datetime | dt.date):
        return {"type": type(value).__name__, "value": value.isoformat()}
    if isinstance(value, int | float | str) or value is None:
        return value
    return str(value)


def from_json_value(value: Any) -> Any:
    """Inverse of as_json_value."""
    if isinstance(value, dict) and value.get("type") == "datetime":
        return dt.datetime.fromisoformat(value["value"])
    if isinstance(value, dict) and value.get("type") == "date":
        return dt.date.fromisoformat(value["value"])
    return value
