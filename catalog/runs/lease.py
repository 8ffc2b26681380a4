"""One run of a dataset at a time, and runs that died are found: a per-dataset lock with a lease.

A sync run's steps (extract+land, validate, publish) run in different processes — Airflow
tasks, possibly on different workers — or one after the other in ``sharehub sync``. Each step
takes the dataset's lock (``hub_dataset_locks``) for its run:

* **While a step works** its process renews the lease every ``lease_s / 4`` (a heartbeat
  thread). A process that is killed, or loses the hub DB, stops renewing; ``lease_s`` later the
  lock is stale.
* **Between steps** the lock stays with the run for ``gap_s`` (the next step has that long to
  start), and after a failed step for ``retry_s`` (an Airflow retry resumes the run).
* **A second run** of the dataset is refused while the lock is live, with a message naming the
  run that holds it (:class:`DatasetBusy`); a stale lock is taken over.

:func:`reap` finds the runs that died: a run whose lock went stale, or a run that is not finished
but does not hold its dataset's lock, is marked ``failed`` with the reason (``abandoned …``).
``sharehub runs`` and every step call it, so a killed run is reported, never left ``running``.

Fencing: a step checks :func:`holds` inside the transaction that commits its result, so a
process that lost its lock (stalled past its lease while another run took over) cannot commit.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from catalog.clock import utc_now
from catalog.db import tables

#: run statuses that are not final: such a run is expected to hold its dataset's lock
UNFINISHED = ("running", "landed", "validated")
_L = tables.dataset_locks
_R = tables.sync_runs


class DatasetBusy(RuntimeError):
    """Another run of the dataset holds the lock (retrying later may succeed)."""


@dataclass(frozen=True)
class Lock:
    """Who holds a dataset's lock and until when."""

    dataset_code: str
    run_id: str
    step: str
    holder: str
    active: bool  # a step is working (heartbeat), else the run waits between steps
    acquired_at: dt.datetime
    lease_until: dt.datetime

    def describe(self) -> str:
        what = f"in {self.step}" if self.active else f"after {self.step}, waiting for its next step"
        return (
            f"run {self.run_id} ({what}, on {self.holder}, since {self.acquired_at:%Y-%m-%d %H:%M:%S}Z, "
            f"lease until {self.lease_until:%H:%M:%S}Z)"
        )


def holder_name() -> str:
    """This process: host and pid (shown when a run is refused or reaped)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _lock_of(row: Any) -> Lock:
    return Lock(
        dataset_code=row.dataset_code,
        run_id=row.run_id,
        step=row.step,
        holder=row.holder,
        active=bool(row.active),
        acquired_at=_aware(row.acquired_at),
        lease_until=_aware(row.lease_until),
    )


def _locked_row(conn: sa.Connection, code: str) -> Any:
    """The dataset's lock row, locked for this transaction (SQLite: the write lock is taken first)."""
    if conn.dialect.name == "sqlite":  # no row locks: take the database's write lock up front
        conn.execute(_L.update().where(_L.c.dataset_code == code).values(step=_L.c.step))
    return conn.execute(sa.select(_L).where(_L.c.dataset_code == code).with_for_update()).first()


def current(engine: sa.Engine, code: str) -> Lock | None:
    """The dataset's lock, live or stale, or None."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(_L).where(_L.c.dataset_code == code)).first()
    return _lock_of(row) if row is not None else None


def acquire(
    engine: sa.Engine,
    code: str,
    run_id: str,
    step: str,
    *,
    lease_s: float,
    now: dt.datetime | None = None,
) -> None:
    """Take (or keep) the dataset's lock for ``run_id`` while ``step`` works.

    Raises :class:`DatasetBusy` when another run holds a live lock. A stale lock of another
    run is taken over (that run is reaped first, so its record says why it stopped)."""
    at = now or utc_now()
    reap(engine, code, now=at)
    try:
        _take(engine, code, run_id, step, lease_s=lease_s, at=at)
    except sa.exc.IntegrityError:
        # Two runs found no lock row and both inserted it: the loser looks again, and now sees
        # the winner's live lock (DatasetBusy) like any later caller.
        _take(engine, code, run_id, step, lease_s=lease_s, at=at)


def _take(engine: sa.Engine, code: str, run_id: str, step: str, *, lease_s: float, at: dt.datetime) -> None:
    with engine.begin() as conn:
        row = _locked_row(conn, code)
        live = row is not None and _aware(row.lease_until) > at
        if live and row.run_id != run_id:
            lock = _lock_of(row)
            hint = "" if lock.active else f" (or give it up: sharehub cancel-run {lock.run_id} --reason …)"
            raise DatasetBusy(f"{code} is being synced by {lock.describe()}; try again when it ends{hint}")
        if live and row.active and row.holder != holder_name():
            # the same run's step still working elsewhere (a retry that overtook a stalled try)
            raise DatasetBusy(f"{code}: a step of {_lock_of(row).describe()} is still working")
        values = {
            "run_id": run_id,
            "step": step,
            "holder": holder_name(),
            "active": True,
            "acquired_at": at,
            "lease_until": at + dt.timedelta(seconds=lease_s),
        }
        if row is None:
            conn.execute(_L.insert().values(dataset_code=code, **values))
        else:
            conn.execute(_L.update().where(_L.c.dataset_code == code).values(**values))


def renew(engine: sa.Engine, code: str, run_id: str, *, lease_s: float) -> bool:
    """Move the lease on (the heartbeat); False when the lock is no longer this run's."""
    at = utc_now()
    with engine.begin() as conn:
        done = conn.execute(
            _L.update()
            .where(_L.c.dataset_code == code, _L.c.run_id == run_id)
            .values(lease_until=at + dt.timedelta(seconds=lease_s))
        )
    return bool(done.rowcount)


def hand_over(engine: sa.Engine, code: str, run_id: str, *, hold_s: float) -> None:
    """The step ended: keep the lock for the run's next step (or its retry) for ``hold_s``."""
    at = utc_now()
    with engine.begin() as conn:
        conn.execute(
            _L.update()
            .where(_L.c.dataset_code == code, _L.c.run_id == run_id)
            .values(active=False, lease_until=at + dt.timedelta(seconds=hold_s))
        )


def release(conn: sa.Connection, code: str, run_id: str) -> None:
    """Give the lock up (inside the caller's transaction; only if it is still this run's)."""
    conn.execute(_L.delete().where(_L.c.dataset_code == code, _L.c.run_id == run_id))


def holds(conn: sa.Connection, code: str, run_id: str) -> bool:
    """Whether ``run_id`` holds the dataset's lock (the fence checked where a step commits)."""
    row = _locked_row(conn, code)
    return row is not None and row.run_id == run_id


def reap(engine: sa.Engine, code: str | None = None, *, now: dt.datetime | None = None) -> list[str]:
    """Mark the runs that died as failed, with the reason; the run ids reaped.

    * a stale lock (lease passed): its run, if unfinished, was abandoned — killed or cut off in
      a step (``active``), or never continued after one; the lock is removed;
    * an unfinished run that does not hold its dataset's lock (it was taken over, or the run
      predates the lock) was abandoned too.
    """
    at = now or utc_now()
    reaped: list[str] = []
    with engine.begin() as conn:
        locks = sa.select(_L).where(_L.c.lease_until < at)
        if code is not None:
            locks = locks.where(_L.c.dataset_code == code)
        for row in conn.execute(locks).all():
            lock = _lock_of(row)
            if lock.active:
                why = (
                    f"abandoned in {lock.step}: no heartbeat from {lock.holder} since about "
                    f"{lock.lease_until:%Y-%m-%d %H:%M:%S}Z (the process was killed or lost the hub DB)"
                )
            else:
                why = (
                    f"abandoned after {lock.step}: its next step did not start by "
                    f"{lock.lease_until:%Y-%m-%d %H:%M:%S}Z"
                )
            reaped += _fail(conn, [lock.run_id], why, at)
            conn.execute(
                _L.delete().where(_L.c.dataset_code == lock.dataset_code, _L.c.run_id == lock.run_id)
            )
        orphans = (
            sa.select(_R.c.run_id, _R.c.dataset_code, _R.c.stage)
            .select_from(_R.outerjoin(_L, _L.c.dataset_code == _R.c.dataset_code))
            .where(_R.c.status.in_(UNFINISHED))
            .where(sa.or_(_L.c.run_id.is_(None), _L.c.run_id != _R.c.run_id))
        )
        if code is not None:
            orphans = orphans.where(_R.c.dataset_code == code)
        for run_id, _dataset, stage in conn.execute(orphans).all():
            reaped += _fail(
                conn, [run_id], f"abandoned in {stage}: the run no longer holds its dataset's lock", at
            )
    return reaped


def _fail(conn: sa.Connection, run_ids: list[str], why: str, at: dt.datetime) -> list[str]:
    done = []
    for run_id in run_ids:
        res = conn.execute(
            _R.update()
            .where(_R.c.run_id == run_id, _R.c.status.in_(UNFINISHED))
            .values(status="failed", finished_at=at, error=why)
        )
        if res.rowcount:
            done.append(run_id)
    return done


class Heartbeat:
    """Renews a step's lease from a thread until stopped; :attr:`lost` once it could not."""

    def __init__(self, engine: sa.Engine, code: str, run_id: str, *, lease_s: float) -> None:
        self._engine = engine
        self._code = code
        self._run_id = run_id
        self._lease_s = lease_s
        self._stop = threading.Event()
        self.lost = False
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"lease-{code}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self._lease_s)

    def _run(self) -> None:
        interval = max(self._lease_s / 4, 0.05)
        while not self._stop.wait(interval):
            try:
                if not renew(self._engine, self._code, self._run_id, lease_s=self._lease_s):
                    self.lost, self.error = True, "the dataset's lock was taken over by another run"
                    return
            except Exception as exc:  # a DB hiccup: try again; the lease covers a few misses
                self.error = f"{type(exc).__name__}: {exc}"
