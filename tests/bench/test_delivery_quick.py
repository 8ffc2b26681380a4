"""B11 keeps working: ``benchmarks/subscription_delivery.run(quick=True)`` — 20,000 rows delivered
into a fresh database on the local PostgreSQL, then three rounds of 1 % changes, the mirror
checked against the lake after each. Timings are printed by ``make bench``, never asserted."""

from __future__ import annotations

import pytest

from tests.paths import REPO


@pytest.mark.services
@pytest.mark.slow
def test_quick_delivery_benchmark(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks import subscription_delivery

    res = subscription_delivery.run(quick=True, rounds=2)
    assert res["failures"] == [], res["failures"]
    assert res["rows"] == subscription_delivery.QUICK["rows"]
    assert res["changed_per_round"] == {"inserted": 20, "updated": 160, "deleted": 20}
    assert res["full_s"] > 0 and res["change_s"] > 0
