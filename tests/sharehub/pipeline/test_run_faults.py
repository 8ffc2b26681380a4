"""Runs and faults (docs/reliability.md): kill a run at every named point, retry it under the same id, and
check the source, curated and serving row by row — on the embedded SQLite hub and on PostgreSQL.

Each kill is real: the sync runs in a child process that ``SIGKILL``s itself at the fault
point (:mod:`sharehub.pipeline.faults`), so nothing after the point runs — no ``finally``, no error
handler. The test then does what time would: the killed process's lease runs out (the reaper is
asked about a moment one lease later, instead of sleeping), and the run is retried from the step
that died, as Airflow retries a task.
"""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest

from catalog.runs import lease
from catalog.runs import record as runs
from sharehub import pipeline
from sharehub.pipeline.run_guard import DatasetBusy, Fenced
from tests.sharehub.pipeline.fault_hub import (
    CODE,
    T0,
    FaultHub,
    check_published,
    quarantined_rows,
    raw_rows,
)


@pytest.mark.slow
def test_interrupted_full_resync_is_repaired_by_the_next_run(fhub: FaultHub) -> None:
    """Item 1: a full resync of a shrunken source dies after the curated commit; the next
    (incremental) run finds serving behind curated and reloads it: deleted records go."""
    fhub.execute("DELETE FROM people WHERE pid > 800")
    assert fhub.killed_sync("full-dies", "publish.after_curated_commit", full=True) == -9
    fhub.reap_after_lease()
    out = fhub.sync()  # a new, incremental run
    check_published(fhub, run_id=out["run_id"])


def test_late_retry_of_a_killed_publish_is_fenced(fhub: FaultHub) -> None:
    """Item 2: run A dies before publishing; run B publishes; A's late retry is refused and
    changes nothing (curated, serving, watermark, ledger stay B's)."""
    at = T0 + dt.timedelta(days=2)
    fhub.touch([1, 2, 3], at=at, version=7)
    assert fhub.killed_sync("run-a", "publish.before_curated_commit") == -9
    fhub.reap_after_lease()
    fhub.touch([4], at=at + dt.timedelta(hours=1), version=8)
    b = fhub.sync()
    watermark = runs.get_watermark(fhub.engine, CODE)
    with pytest.raises(Fenced, match=r"started from snapshot \d+, but the published state is now"):
        pipeline.publish(CODE, "run-a", settings=fhub.settings)
    check_published(fhub, run_id=b["run_id"])
    assert runs.get_watermark(fhub.engine, CODE) == watermark
    a = runs.get_run(fhub.engine, "run-a")
    assert a["status"] == "failed" and "overwrite newer data" in a["error"]


def test_retried_steps_replace_their_output(fhub: FaultHub) -> None:
    """Item 3: extract and validate retried after they finished do not double anything."""
    fhub.touch(range(1, 11), at=T0 + dt.timedelta(days=3))
    rid = "retried-steps"
    pipeline.extract_land(CODE, rid, trigger="cli", settings=fhub.settings)
    pipeline.extract_land(CODE, rid, trigger="cli", settings=fhub.settings)
    pipeline.validate(CODE, rid, settings=fhub.settings)
    pipeline.validate(CODE, rid, settings=fhub.settings)
    out = pipeline.publish(CODE, rid, settings=fhub.settings)
    run = runs.get_run(fhub.engine, rid)
    assert run["attempts"] == {"extract_land": 2, "validate": 2, "publish": 1}
    assert raw_rows(fhub, rid) == run["rows_read"] == out["published"] + run["rows_quarantined"]
    assert quarantined_rows(fhub, rid) == run["rows_quarantined"]
    check_published(fhub, run_id=rid)


def test_a_second_run_is_refused_naming_the_running_one(fhub: FaultHub) -> None:
    """Item 5: one run of a dataset at a time, CLI and Airflow alike."""
    pipeline.extract_land(CODE, "first", trigger="cli", settings=fhub.settings)
    with pytest.raises(DatasetBusy, match=r"being synced by run first \(after extract_land"):
        fhub.sync("second")
    assert runs.get_run(fhub.engine, "first")["status"] == "landed"
    pipeline.validate(CODE, "first", settings=fhub.settings)
    pipeline.publish(CODE, "first", settings=fhub.settings)
    check_published(fhub, run_id="first")


def test_two_syncs_at_once_one_runs_one_is_refused(fhub: FaultHub) -> None:
    """Item 5, really concurrent: two threads sync the dataset; one publishes, the other is
    refused with a message naming the first (not pyiceberg's ValidationException)."""
    fhub.touch(range(1, 301), at=T0 + dt.timedelta(days=4))
    outcomes: dict[str, object] = {}
    start = threading.Barrier(2)

    def go(rid: str) -> None:
        start.wait()
        try:
            outcomes[rid] = fhub.sync(rid)
        except Exception as exc:
            outcomes[rid] = exc

    threads = [threading.Thread(target=go, args=(rid,)) for rid in ("t1", "t2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    errors = [o for o in outcomes.values() if isinstance(o, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], DatasetBusy), outcomes
    assert "being synced by run t" in str(errors[0])
    won = next(rid for rid, o in outcomes.items() if not isinstance(o, Exception))
    check_published(fhub, run_id=won)


def test_killed_runs_show_as_failed_in_sharehub_runs(fhub: FaultHub, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 4: `sharehub runs` reports the dead run with its reason (it reaps first)."""
    from typer.testing import CliRunner

    from sharehub.cli.main import app
    from sharehub.settings import get_settings

    assert fhub.killed_sync("dies-in-validate", "validate.after_quarantine_commit", lease_s=0.5) == -9
    for k, v in fhub.env.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    import time

    time.sleep(0.6)  # the child's half-second lease runs out: a real wait for a real lease
    try:
        out = CliRunner().invoke(app, ["runs", "--json", "--dataset", CODE])
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 0, out.output
    (dead,) = [r for r in json.loads(out.output) if r["run_id"] == "dies-in-validate"]
    assert (dead["status"], dead["stage"]) == ("failed", "validate")
    assert dead["error"].startswith("abandoned in validate: no heartbeat from ")
    assert lease.current(fhub.engine, CODE) is None
