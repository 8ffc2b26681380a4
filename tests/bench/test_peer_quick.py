"""B12 keeps working: ``benchmarks/run.py --quick --only peer`` (sharehub, dlt x 4, the raw read).

Only correctness is asserted (every configuration read every row, the JSON written); timings are
printed by ``make bench``, never asserted.
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
def test_quick_bench_peer(pg_url: str, tmp_path: Path) -> None:
    pytest.importorskip("dlt")
    out = tmp_path / "latest.json"
    env = dict(os.environ, SHAREHUB_BENCH_DB_PREFIX=f"t_bench_{uuid.uuid4().hex[:8]}")
    proc = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick", "--only", "peer", "--drop", "--out", str(out)],
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
    assert [row["id"] for row in result["table"]] == ["B12"] * 5
    for row in result["table"]:
        assert row["sharehub"] is not None and row["baseline"] is not None and row["passed"] is None, row
    peer = result["raw"]["peer"]
    assert peer["sharehub"]["rows_read"] == peer["limit"]["rows"] == 10_000
    assert [(r["backend"], r["table_format"], r["rows"]) for r in peer["dlt"]] == [
        ("connectorx", "parquet", 10_000),
        ("connectorx", "iceberg", 10_000),
        ("pyarrow", "parquet", 10_000),
        ("pyarrow", "iceberg", 10_000),
    ]
