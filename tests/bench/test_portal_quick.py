"""B8 keeps working: ``benchmarks/portal_pages.run(quick=True)`` end to end on the local PostgreSQL.

A small hub (200 datasets, 20,000 audit records with a valid chain), the real server under
uvicorn, signed-in sessions through the sign-in form, about 2 s per scenario. Only correctness is
asserted (every page answered 200, every figure is there); timings are for ``make bench``.
"""

from __future__ import annotations

import pytest

from tests.paths import REPO


@pytest.mark.services
def test_quick_portal_benchmark(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks import portal_pages

    res = portal_pages.run(quick=True, clients=4)
    assert res["failures"] == [], res["failures"]
    for name in ("ping", "search", "facets", "audit_dept", "audit_all"):
        fig = res["results"][name]
        assert fig["requests"] > 0 and fig["errors"] == 0 and set(fig["statuses"]) == {"200"}, (name, fig)
        assert 0 < fig["p50_ms"] <= fig["p95_ms"] <= fig["p99_ms"], (name, fig)
    assert res["sizes"]["datasets"] == portal_pages.QUICK["datasets"]
