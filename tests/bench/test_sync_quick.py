"""The benchmarks keep working: ``benchmarks/run.py --quick`` end to end (small sizes, no targets).

Only correctness is asserted (every figure measured, the quarantine equal to the generator's
planted bad rows, the JSON written); timings are printed by ``make bench``, never asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.paths import REPO


@pytest.mark.services
@pytest.mark.slow
def test_quick_bench_sync_and_dag_figures(pg_url: str, tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    env = dict(os.environ, SHAREHUB_BENCH_DB_PREFIX=f"t_bench_{uuid.uuid4().hex[:8]}")
    proc = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick", "--only", "sync,dags", "--drop", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["quick"] is True and not result["failures"]
    ids = [row["id"] for row in result["table"]]
    assert ids == ["B1", "B1", "B1", "B1", "B2", "B4", "B3", "B3", "B7"]
    for row in result["table"]:
        assert row["sharehub"] is not None and row["baseline"] is not None, row
        assert row["passed"] is None  # a quick run checks no target
    sync = result["raw"]["sync"]
    assert sync["full"]["rows_read"] == 10_000 and sync["full"]["quarantined"] == 40
    assert sync["incremental"]["updated"] > 0  # ~1 % of the rows changed and were upserted
    assert sync["big"]["rows_read"] == 20_000
    assert "B1" in proc.stdout and "QUICK run" in proc.stdout
