"""B9 keeps working: ``benchmarks/anomaly_scan.run(quick=True)`` on the local PostgreSQL — 50,000
audit records, the two planted anomalies found and nothing else. Timings are printed by
``make bench``, never asserted."""

from __future__ import annotations

import pytest

from tests.paths import REPO


@pytest.mark.services
def test_quick_anomaly_benchmark(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks import anomaly_scan

    res = anomaly_scan.run(quick=True)
    assert res["failures"] == [], res["failures"]
    assert res["records"] == anomaly_scan.QUICK["audit"]
    assert res["flags"] == [[1, "DS-001", "off_hours"], [4, "DS-004", "distinct_subjects"]]
    assert res["scan_ms"] > 0 and res["baseline_ms"] > 0
