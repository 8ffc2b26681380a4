"""B5/B6 keep working: ``benchmarks/access_api.run(quick=True)`` end to end on the local PostgreSQL.

A tiny hub, the real server under uvicorn, the load from a separate process, about 2 s per
scenario. Only correctness is asserted (no errors, every audited response has its audit record,
the chain verifies, every figure is there); timings are printed by ``make bench``, never asserted.
"""

from __future__ import annotations

import pytest

from tests.paths import REPO


@pytest.mark.services
def test_quick_access_benchmark(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # pg_url only makes sure the local PostgreSQL is there: run() makes its own database
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks import access_api

    res = access_api.run(quick=True, clients=8)
    assert res["failures"] == [], res["failures"]
    for name in ("bare", "records", "verify"):
        fig = res[name]
        assert fig["requests"] > 0 and fig["errors"] == 0, (name, fig)
        assert fig["req_per_s"] > 0 and 0 < fig["p50_ms"] <= fig["p99_ms"], (name, fig)
    assert res["records"]["ratio_to_bare"] > 0 and res["verify"]["ratio_to_bare"] > 0
    a = res["audit"]
    assert a["match"] and a["verify_ok"] and a["new_rows"] == a["audited_responses"] > 0
    assert res["anomalies"]["found"] == 0 and res["anomalies"]["audit_rows"] >= a["new_rows"]
    s = res["settings"]
    assert s["quick"] is True and s["hub_db"] == "postgresql" and s["seconds_per_scenario"] == 2.0
    assert s["uvicorn_workers"] == access_api.WORKERS and s["serving_rows"] == access_api.QUICK["rows"]
    assert res["server"]["exit_code"] in access_api.CLEAN_EXIT
