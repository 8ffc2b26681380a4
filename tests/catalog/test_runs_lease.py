"""The run lease under a real race: two runs taking a dataset's first lock at the same moment."""

from __future__ import annotations

import threading

import pytest

from catalog.db.engine import engine_for
from catalog.runs import lease
from catalog.runs.lease import DatasetBusy


@pytest.mark.services
def test_two_first_acquires_at_once_give_one_lock_and_one_dataset_busy(hub_pg_url: str) -> None:
    """Neither run finds a lock row, so both insert one: the loser must see the winner's lock
    (DatasetBusy), never the database's unique-key error."""
    engine = engine_for(hub_pg_url)
    for round_ in range(30):
        code = f"RACE-{round_:03d}"
        start = threading.Barrier(2)
        outcomes: dict[str, object] = {}

        def go(run_id: str, code: str = code, start: threading.Barrier = start) -> None:
            start.wait()
            try:
                lease.acquire(engine, code, run_id, "extract", lease_s=60)
                outcomes[run_id] = "held"
            except Exception as exc:  # the assertion names whatever came out
                outcomes[run_id] = exc

        threads = [threading.Thread(target=go, args=(rid,)) for rid in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        held = [rid for rid, o in outcomes.items() if o == "held"]
        busy = [o for o in outcomes.values() if isinstance(o, DatasetBusy)]
        assert len(held) == 1 and len(busy) == 1, (round_, outcomes)
        assert lease.current(engine, code).run_id == held[0]  # type: ignore[union-attr]
