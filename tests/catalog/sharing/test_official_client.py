"""The official ``delta-sharing`` Python client from PyPI, as a consumer runs it, against the hub
served by uvicorn: a recipient profile, list tables, ``load_as_pandas`` now and at version 0,
``load_table_changes_as_pandas``, only granted fields, masked values masked, a revoked grant
refused."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from catalog.access import applications
from catalog.masking import mask
from catalog.sharing import recipients
from tests.browser.conftest import free_port, serve
from tests.catalog.sharing import client_venv
from tests.catalog.sharing.sharing_hub import build

pytestmark = pytest.mark.slow

CLIENT = """
import json, sys
import delta_sharing

profile = sys.argv[1]
out = {}
client = delta_sharing.SharingClient(profile)
out["tables"] = sorted(f"{t.share}.{t.schema}.{t.name}" for t in client.list_all_tables())
url = profile + "#sharehub.shr.shr-people"
try:
    now = delta_sharing.load_as_pandas(url)
    out["columns"] = list(now.columns)
    out["rows"] = json.loads(now.to_json(orient="records"))
    old = delta_sharing.load_as_pandas(url, version=0)
    out["old_rows"] = json.loads(old.to_json(orient="records"))
    changes = delta_sharing.load_table_changes_as_pandas(url, starting_version=1)
    out["change_columns"] = list(changes.columns)
    out["changes"] = json.loads(changes.to_json(orient="records"))
except Exception as exc:
    out["load_error"] = f"{type(exc).__name__}: {exc}"[:500]
print(json.dumps(out, ensure_ascii=False))
"""


def test_the_official_client_reads_what_the_grant_allows(tmp_path: Path) -> None:
    reason = client_venv.ensure()
    if reason:
        pytest.skip(reason)
    hub = build(tmp_path)
    hub.sync()
    grant_id = hub.grant("统计分析", ["pid", "name", "city", "amount"])  # name masked, phone not granted
    hub.change(range(1, 6), at=dt.datetime(2026, 11, 2, 9, 0), version=1)
    hub.sync()
    token, rec = recipients.issue(hub.engine, hub.apps["统计分析"][0], days=7, label="分析", by="test")
    port = free_port()
    for base in serve(hub.client.app, port):
        profile = tmp_path / "profile.share"
        profile.write_text(
            json.dumps(recipients.profile(f"{base}/api/v1/delta-sharing", token, rec.expires_at)),
            encoding="utf-8",
        )
        got = client_venv.run(CLIENT, str(profile))
        assert "error" not in got and "load_error" not in got, got
        assert got["tables"] == ["sharehub.shr.shr-people"]
        assert got["columns"] == ["pid", "name", "city", "amount"]
        rows = {r["pid"]: r for r in got["rows"]}
        assert len(rows) == 50 and rows[3]["amount"] == 31 and rows[20]["amount"] == 200
        assert rows[7]["name"] == mask("name", "张7") and "phone" not in json.dumps(got)
        assert {r["pid"]: r["amount"] for r in got["old_rows"]}[3] == 30  # version 0: before the change
        # the change feed: version 1 updated pids 1-5, pre- and post-image, with commit columns
        assert got["change_columns"][:4] == ["pid", "name", "city", "amount"]
        assert {"_change_type", "_commit_version", "_commit_timestamp"} <= set(got["change_columns"])
        seen = sorted(
            (c["pid"], c["amount"], c["_change_type"], c["_commit_version"]) for c in got["changes"]
        )
        assert seen == sorted(
            [(p, p * 10, "update_preimage", 1) for p in range(1, 6)]
            + [(p, p * 10 + 1, "update_postimage", 1) for p in range(1, 6)]
        )

        applications.revoke(hub.engine, grant_id, by="shr_approver", reason="项目结束")
        after = client_venv.run(CLIENT, str(profile))
        assert after.get("tables") == [] or "error" in after, after
        assert "rows" not in after
