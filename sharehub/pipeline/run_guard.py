"""The protocol every pipeline step follows: lock, preconditions, heartbeat, outcome.

``with run_step(h, code, run_id, "validate") as step:`` …

1. **Lock.** The dataset's run lock is taken for the run (:mod:`catalog.runs.lease`); another
   live run of the dataset makes the step fail with :class:`DatasetBusy`, naming that run. Runs
   that died are reaped first, so their records say why.
2. **Preconditions.** Each step knows what must be done before it, from the run record:
   ``extract_land`` refuses a run that already published (re-running a finished run id would
   record it again over its published rows); ``validate`` needs the run's rows landed;
   ``publish`` needs them validated, and not blocked. A refusal is :class:`StepRefused` — not
   retryable: retrying cannot change it.
3. **Heartbeat.** While the body runs, the lock's lease is renewed; :meth:`Step.fence` raises
   :class:`Fenced` if the lock was lost, and the commit of publish checks the lock inside its
   own transaction.
4. **Outcome.** Success hands the lock to the run's next step (``run_step_gap_seconds``) or, for
   publish, releases it in the transaction that records the success. A failure marks the run
   ``failed`` in that step (``blocked`` for a quality block) with the error and releases the
   lock: the step's retry resumes the run when no other run has started meanwhile, and is
   fenced when one has published (a retried extract simply starts over from the new state).
   A process that is killed cannot release anything: its lease runs out and the run is reaped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from catalog.runs import lease
from catalog.runs import record as run_store
from catalog.runs.lease import DatasetBusy

if TYPE_CHECKING:
    from sharehub.hub import Hub

__all__ = ["DatasetBusy", "Fenced", "Step", "StepRefused", "run_step"]

STEPS = ("extract_land", "validate", "publish")


class StepRefused(RuntimeError):
    """The run is not in a state where this step can run (retrying will not change that)."""

    retryable = False


class Fenced(StepRefused):
    """The step's run is no longer the dataset's current run: committing would overwrite newer data."""


@dataclass
class Step:
    """What a step body gets: the run record as the step began, and the fence."""

    code: str
    run_id: str
    name: str
    run: dict[str, Any]
    heartbeat: lease.Heartbeat

    def fence(self) -> None:
        """Raise :class:`Fenced` when this run lost the dataset's lock (checked before commits)."""
        if self.heartbeat.lost:
            raise Fenced(
                f"{self.code}: run {self.run_id} lost the dataset's lock during {self.name} "
                f"({self.heartbeat.error}); nothing more is committed"
            )


def _extract_done(run: dict[str, Any]) -> bool:
    if run["status"] in ("landed", "validated", "blocked"):
        return True
    return bool(run["status"] == "failed" and run["stage"] in ("validate", "publish"))


def _validate_done(run: dict[str, Any]) -> bool:
    return bool(run["status"] == "validated" or (run["status"] == "failed" and run["stage"] == "publish"))


def _check(step: str, code: str, run_id: str, run: dict[str, Any] | None) -> None:
    """Raise :class:`StepRefused` when ``run`` cannot go into ``step``."""
    if run is not None and run["status"] == "success":
        raise StepRefused(
            f"{code}: run {run_id} already published snapshot {run['snapshot_id']}; "
            f"a finished run is not run again (start a new run)"
        )
    if step == "extract_land":
        return
    if run is None:
        raise StepRefused(f"{code}: no run {run_id}; a run starts with extract_land")
    if step == "validate" and not _extract_done(run):
        raise StepRefused(
            f"{code}: run {run_id} has not landed its rows (it is {run['status']} in {run['stage']}); "
            "retry extract_land first"
        )
    if step == "publish":
        if run["status"] == "blocked":
            raise StepRefused(f"{code}: run {run_id} was blocked by quality: {run['error']}")
        if not _validate_done(run):
            raise StepRefused(
                f"{code}: run {run_id} is not validated (it is {run['status']} in {run['stage']}); "
                "retry validate first"
            )


@contextlib.contextmanager
def run_step(h: Hub, code: str, run_id: str, step: str) -> Iterator[Step]:
    """Run one step of ``run_id`` under the protocol of this module (see its docstring)."""
    from sharehub.hub import QualityBlocked

    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}")
    s = h.settings
    lease.acquire(h.engine, code, run_id, step, lease_s=s.run_lease_seconds)
    try:
        try:
            run: dict[str, Any] | None = run_store.get_run(h.engine, run_id)
        except KeyError:
            run = None
        _check(step, code, run_id, run)
        if step != "extract_land":
            assert run is not None
            run_store.begin_step(h.engine, run_id, step, "landed" if step == "validate" else "validated")
            run = run_store.get_run(h.engine, run_id)
    except BaseException:
        with h.engine.begin() as conn:  # refused before starting: the lock goes back
            lease.release(conn, code, run_id)
        raise
    heartbeat = lease.Heartbeat(h.engine, code, run_id, lease_s=s.run_lease_seconds)
    with heartbeat:
        try:
            yield Step(code, run_id, step, run or {}, heartbeat)
        except StepRefused as exc:
            _safe(run_store.fail_run, h.engine, run_id, step, str(exc))
            _safe(_release, h, code, run_id)
            raise
        except QualityBlocked as exc:
            _safe(run_store.fail_run, h.engine, run_id, step, str(exc), status="blocked")
            _safe(_release, h, code, run_id)
            raise
        except BaseException as exc:
            _safe(run_store.fail_run, h.engine, run_id, step, f"{step}: {exc}")
            _safe(_release, h, code, run_id)
            raise
    if step != "publish":  # publish released the lock with its final record
        lease.hand_over(h.engine, code, run_id, hold_s=s.run_step_gap_seconds)


def _release(h: Hub, code: str, run_id: str) -> None:
    with h.engine.begin() as conn:
        lease.release(conn, code, run_id)


def _safe(fn: Any, *args: Any, **kwargs: Any) -> None:
    """Record an outcome without hiding the step's own error (the hub DB may be what failed)."""
    with contextlib.suppress(Exception):
        fn(*args, **kwargs)
