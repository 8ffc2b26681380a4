"""Named fault points: where the fault-injection tests kill or break a run, without sleeps.

The pipeline calls :func:`point` at the moments that matter for what it publishes — after the
raw commit, before and after the curated commit, half-way through the serving load, before
the run's final record… A test chooses one:

* ``SHAREHUB_FAULT=<point>:kill`` — the process kills itself there (``SIGKILL``: no ``finally``,
  no ``atexit``, exactly what the OOM killer or a pulled plug does);
* ``SHAREHUB_FAULT=<point>:raise`` — :class:`InjectedFault` is raised there (an ordinary error);
* ``SHAREHUB_FAULT=<point>:hold=<path>`` — once the test *arms* the hold by creating the file
  ``<path>``, the first process to reach the point takes it (renames it to ``<path>.held``, writes
  its pid there) and waits there, lease heartbeat running, until it is killed or the test removes
  ``<path>.held``; every other process, and every process before the hold is armed, passes. This
  is how a test kills a worker *while* a task is at a chosen point (tests/deploy/test_celery_executor.py);
* in the same process, :func:`injected` runs a callable there (stop the S3 server, cut a
  database connection) for the duration of a ``with`` block.

Unset, a point costs one environment lookup. Points are listed in :data:`POINTS` so that a
misspelt point in a test fails instead of never firing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator

ENV = "SHAREHUB_FAULT"

POINTS = frozenset(
    {
        "extract.after_first_batch",  # the source is being read; nothing landed yet
        "extract.after_raw_commit",  # the raw rows are committed; the run record not yet updated
        "validate.after_quarantine_commit",  # quarantine rows committed; the run not yet validated
        "publish.before_curated_commit",  # curated not yet written
        "publish.after_curated_commit",  # curated committed; serving not yet refreshed
        "publish.during_serving_load",  # half-way through the serving load (before its commit)
        "publish.after_serving_commit",  # serving refreshed; certificates not yet issued
        "publish.before_final_record",  # everything published; watermark, ledger, run record not yet
        "deliver.before_target_commit",  # a delivery's rows written into the target, not committed
        "deliver.after_target_commit",  # the target committed; the hub has not recorded it
    }
)

_ACTIONS: dict[str, Callable[[], None]] = {}


class InjectedFault(RuntimeError):
    """The error a ``:raise`` fault point raises."""


def point(name: str) -> None:
    """A fault point: does nothing unless a test chose ``name``."""
    action = _ACTIONS.get(name)
    if action is not None:
        action()
    spec = os.environ.get(ENV)
    if not spec:
        return
    target, _, how = spec.partition(":")
    if target != name:
        return
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if how.startswith("hold="):
        _hold(name, how.removeprefix("hold="))
        return
    raise InjectedFault(f"fault injected at {name}")


#: A hold that nobody ends is given up after this long (the test has failed by then).
HOLD_LIMIT_S = 600.0


def _hold(name: str, armed: str) -> None:
    held = armed + ".held"
    try:
        os.rename(armed, held)  # atomic: one process takes an armed hold
    except FileNotFoundError:
        return  # not armed, or another process took it
    with open(held, "w", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()}\n")
    deadline = time.monotonic() + HOLD_LIMIT_S
    while os.path.exists(held):
        if time.monotonic() > deadline:
            raise InjectedFault(f"hold at {name} never ended")
        time.sleep(0.1)


@contextlib.contextmanager
def injected(name: str, action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` at point ``name`` (in this process) while the block runs."""
    if name not in POINTS:
        raise ValueError(f"unknown fault point {name!r}; known: {', '.join(sorted(POINTS))}")
    _ACTIONS[name] = action
    try:
        yield
    finally:
        _ACTIONS.pop(name, None)
