"""Review of ``/metrics`` (issue 16): a hostile client's random methods and paths must not grow
the label sets, and no raw path or query reaches a label."""

from __future__ import annotations

import uuid
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.catalog.api_hub import build_hub


def _requests(text: str) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "sharehub_api_requests_total":
                key = (s.labels["route"], s.labels["method"])
                out[key] = out.get(key, 0.0) + s.value
    return out


def test_random_methods_and_paths_keep_labels_bounded(tmp_path: Path) -> None:
    hub = build_hub(tmp_path)
    # the counters are the process's: other tests in this worker count calls of their own
    before = _requests(hub.client.get("/metrics").text)
    noise = [uuid.uuid4().hex for _ in range(5)]
    for r in noise:
        hub.client.request("X" + r[:6].upper(), f"/api/v1/{r}")
        hub.client.request("PROPFIND", f"/api/v1/datasets/{r}")
        hub.client.get(f"/api/v1/datasets/{r}/")
        hub.client.get(f"/{r}?token={r}")
        hub.client.get(f"/api/v1/datasets/{r}/records")
    text = hub.client.get("/metrics").text
    for r in noise:
        assert r not in text and r[:6].upper() not in text
    after = _requests(text)
    labels = {key for key, n in after.items() if n > before.get(key, 0.0)}
    assert labels, "the noise was not counted at all"
    routes = {route for route, _ in labels}
    assert routes <= {"unmatched", "other", "/api/v1/datasets/{code}", "/api/v1/datasets/{code}/records"}
    assert {m for _, m in labels} <= {"GET", "other"}
