"""Runs and faults (docs/reliability.md): the kill matrix. A sync is killed (``SIGKILL``) at each named
point, incremental and full, on the embedded SQLite hub and on PostgreSQL (32 cases); its retry
under the same run id must publish exactly the source's good rows.

The other fault tests are in ``tests/sharehub/pipeline/test_run_faults.py`` (one module per worker under
pytest-xdist's ``--dist loadfile``: the matrix alone is about as long as the rest).
"""

from __future__ import annotations

import datetime as dt

import pytest

from catalog.runs import record as runs
from sharehub import pipeline
from sharehub.pipeline.run_guard import StepRefused
from tests.sharehub.pipeline.fault_hub import (
    CODE,
    T0,
    FaultHub,
    check_published,
    quarantined_rows,
    raw_rows,
)

POINTS = [
    "extract.after_first_batch",
    "extract.after_raw_commit",
    "validate.after_quarantine_commit",
    "publish.before_curated_commit",
    "publish.after_curated_commit",
    "publish.during_serving_load",
    "publish.after_serving_commit",
    "publish.before_final_record",
]


@pytest.mark.slow
@pytest.mark.parametrize("full", [False, True], ids=["incremental", "full"])
@pytest.mark.parametrize("point", POINTS)
def test_killed_run_is_reaped_and_its_retry_publishes_exactly(fhub: FaultHub, point: str, full: bool) -> None:
    """Kill at ``point``, see the run reported dead with the reason, retry it under its id,
    and find exactly the source's good rows in curated and serving — never doubled raw or
    quarantine rows, never a half-published state served."""
    at = T0 + dt.timedelta(days=1)
    fhub.touch(range(1, 101), at=at)  # 100 changed rows
    fhub.execute("INSERT INTO people VALUES (5001, '新人', '城市1', 1, ?)", at.isoformat(" "))
    fhub.execute("INSERT INTO people VALUES (5002, NULL, '城市2', 2, ?)", at.isoformat(" "))  # a bad row
    if full:  # a full resync of a source that shrank by a fifth
        fhub.execute("DELETE FROM people WHERE pid BETWEEN 801 AND 1000")
    rid = f"kill__{point}__{'full' if full else 'incr'}"
    assert fhub.killed_sync(rid, point, full=full) == -9
    before = runs.get_run(fhub.engine, rid)
    assert before["status"] not in ("success", "failed")  # the dead process recorded nothing
    assert fhub.reap_after_lease() == [rid]
    dead = runs.get_run(fhub.engine, rid)
    assert dead["status"] == "failed" and dead["error"].startswith("abandoned in "), dead["error"]
    fhub.resume(rid)
    check_published(fhub, run_id=rid)
    run = runs.get_run(fhub.engine, rid)
    assert raw_rows(fhub, rid) == run["rows_read"]
    # every bad row read (the new one, and older ones inside the lookback) quarantined once
    assert quarantined_rows(fhub, rid) == run["rows_quarantined"] >= 1
    # a finished run is not run again under its id
    with pytest.raises(StepRefused, match="already published"):
        pipeline.extract_land(CODE, rid, trigger="cli", settings=fhub.settings)
    assert runs.get_run(fhub.engine, rid)["rows_read"] == run["rows_read"]
