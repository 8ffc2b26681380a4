"""B10 keeps working: ``benchmarks/bulk_sharing.run(quick=True)`` — 20,000 granted rows read with
the official Delta Sharing client through the hub under uvicorn, and directly. Timings are printed
by ``make bench``, never asserted."""

from __future__ import annotations

import pytest

from tests.catalog.sharing import client_venv
from tests.paths import REPO


@pytest.mark.slow
def test_quick_bulk_sharing_benchmark(monkeypatch: pytest.MonkeyPatch) -> None:
    reason = client_venv.ensure()
    if reason:
        pytest.skip(reason)
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks import bulk_sharing

    res = bulk_sharing.run(quick=True, rounds=1)
    assert res["failures"] == [], res["failures"]
    assert res["rows"] == bulk_sharing.QUICK["rows"]
    assert res["sharing_s"] > 0 and res["direct_s"] > 0 and res["first_s"] > 0
