"""A delivery killed (``SIGKILL``, in a process of its own) before and after the target's commit,
then retried, into the machine's real PostgreSQL and MariaDB: the target stays exact, every change
lands once, and the audit log's rows of delivered attempts add up to exactly the rows delivered."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from catalog.directory.grades import DEFAULT_POLICY
from catalog.sharing import subscriptions
from tests.catalog.sharing.sharing_hub import CODE, SharingHub, build
from tests.catalog.sharing.test_subscriptions import _changes, _deliver, _expected, _mirror, _target

pytestmark = pytest.mark.services


def _audited(hub: SharingHub, sub_id: int) -> list[tuple[int, str, int]]:
    """(rows, fields, attempt) of the audit log's allowed deliveries of a subscription."""
    import json

    from catalog.db import tables

    a = tables.audit
    q = sa.select(a.c.row_count, a.c.fields, a.c.query).where(
        a.c.action == "subscription.deliver", a.c.path == f"/subscriptions/{sub_id}", a.c.decision == "allow"
    )
    with hub.engine.connect() as conn:
        return [(int(r[0]), ",".join(r[1] or []), int(json.loads(r[2])["attempt"])) for r in conn.execute(q)]


def _cli_deliver(hub: SharingHub, sub_id: int, url: str, tmp: Path, fault: str | None = None) -> Any:
    """``sharehub subscriptions deliver`` in a process of its own, killed (SIGKILL) at ``fault``."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("SHAREHUB_")}
    env |= {
        "SHAREHUB_VAR_DIR": str(hub.settings.var_dir),
        "SHAREHUB_CONNECTIONS__SHR_SRC": f"sqlite:///{hub.source}",
        "SHAREHUB_CONNECTIONS__TJJ_DB": url,
    }
    if fault:
        env["SHAREHUB_FAULT"] = f"{fault}:kill"
    argv = [sys.executable, "-m", "sharehub.cli", "subscriptions", "deliver", str(sub_id)]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_a_delivery_killed_mid_way_and_retried_leaves_the_target_exact(
    tmp_path: Path, request: pytest.FixtureRequest, kind: str
) -> None:
    import signal

    url = _target(request, kind)
    hub = build(tmp_path)
    hub.sync()
    hub.grant("统计分析", ["pid", "name", "amount"])
    app_id = hub.apps["统计分析"][0]
    kw: dict[str, Any] = {"target_ref": "tjj_db", "by": "t", "policy": DEFAULT_POLICY}
    subs = [
        subscriptions.subscribe(hub.engine, app_id, CODE, target_table=table, mode=mode, **kw)
        for mode, table in (("mirror", "people_mirror"), ("append", "people_changes"))
    ]
    for sub in subs:
        assert _deliver(hub, sub, url, tmp_path)["status"] == "success"
    assert _mirror(url) == _expected(hub)

    version = 1
    for point in ("deliver.before_target_commit", "deliver.after_target_commit"):
        hub.change(range(version, version + 5), at=dt.datetime(2026, 11, 2, 9, version), version=version)
        hub.add(range(100 + version, 102 + version), at=dt.datetime(2026, 11, 2, 9, version))
        hub.sync()
        for sub in subs:
            killed = _cli_deliver(hub, sub.id, url, tmp_path, fault=point)
            assert killed.returncode == -signal.SIGKILL, (point, killed.stdout, killed.stderr)
            assert subscriptions.history(hub.engine, sub.id)[0]["status"] == "running"  # it never finished
        if point == "deliver.before_target_commit":
            assert _mirror(url) != _expected(hub)  # rolled back: still the old state
        for sub in subs:
            _deliver(hub, sub, url, tmp_path)  # the retry (in this process: only the kill needs another)
            statuses = [h["status"] for h in subscriptions.history(hub.engine, sub.id)[:2]]
            after = point.endswith("after_target_commit")
            assert statuses == (["current", "recovered"] if after else ["success", "interrupted"])
        assert _mirror(url) == _expected(hub)
        version += 5
    # every delivery audited before its target commits: the delivered rows (50, then 5 + 2 twice)
    # exactly once, plus the 7 of the attempt killed before its commit, which its status explains
    for sub in subs:
        audited = _audited(hub, sub.id)
        status = {h["id"]: h["status"] for h in subscriptions.history(hub.engine, sub.id)}
        delivered = [r for r, _f, attempt in audited if status[attempt] in ("success", "recovered")]
        assert sum(delivered) == 50 + 2 * 7
        assert [r for r, _f, attempt in audited if status[attempt] == "interrupted"] == [7]
        assert {f for _r, f, _a in audited} == {f"{CODE}.pid,{CODE}.name:masked,{CODE}.amount"}
    # the append table holds every change exactly once: 50 + 2×2 inserts, 2×5 updates (two rows each)
    changes = _changes(url)
    assert len([c for c in changes if c[2] == "insert"]) == 54
    assert len([c for c in changes if c[2] == "update_preimage"]) == 10
    assert len([c for c in changes if c[2] == "update_postimage"]) == 10
