"""A hub with one dataset shared by file, synced from a SQLite source into a local warehouse
(real Iceberg snapshots), and an app of another department granted part of it."""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from catalog import publishing
from catalog.access import app_registry, applications, staff
from catalog.access.workdays import Calendar
from catalog.db.engine import engine_for
from catalog.directory.model import DirectoryFile
from sharehub import pipeline
from sharehub.settings import Settings

CODE = "SHR-PEOPLE"
T0 = dt.datetime(2026, 11, 1, 8, 0, 0)
DIRECTORY = {
    "department": {"code": "SHR", "name": "共享测试局"},
    "datasets": [
        {
            "code": CODE,
            "name": "人员共享测试",
            "summary": "按文件共享的测试数据",
            "share": {"type": "conditional", "condition": "统计分析", "mode": "file"},
            "primary_key": ["pid"],
            "fields": [
                {"name": "pid", "label": "编号", "type": "integer"},
                {"name": "name", "label": "姓名", "sensitivity": "sensitive", "mask": "name"},
                {"name": "phone", "label": "电话", "sensitivity": "sensitive", "mask": "mobile"},
                {"name": "city", "label": "城市"},
                {"name": "amount", "label": "金额", "type": "integer"},
                {"name": "updated_at", "label": "更新时间", "type": "timestamp"},
            ],
            "source": {"kind": "sql", "connection": "shr_src", "table": "people", "cursor": "updated_at"},
            "quality": {"policy": "quarantine", "max_bad_ratio": 0.5, "max_volume_change": None},
            "schedule": None,
        },
        {
            "code": "SHR-API-ONLY",
            "name": "仅接口共享",
            "share": {"type": "unconditional"},
            "primary_key": ["pid"],
            "fields": [{"name": "pid", "label": "编号", "type": "integer"}],
            "source": {"kind": "sql", "connection": "shr_src", "table": "people"},
            "schedule": None,
        },
    ],
}
APPROVER = staff.StaffUser("shr_approver", "SHR", frozenset({"approver"}), "active", 1)


def _row(pid: int, version: int = 0) -> tuple[Any, ...]:
    return (
        pid,
        f"张{pid}",
        f"1380000{pid:04d}",
        f"城市{pid % 5}",
        pid * 10 + version,
        (T0 + dt.timedelta(minutes=pid)).isoformat(" "),
    )


@dataclass
class SharingHub:
    settings: Settings
    source: Path
    engine: sa.Engine
    client: TestClient
    apps: dict[str, tuple[str, str]] = field(default_factory=dict)

    def sync(self) -> dict[str, Any]:
        return pipeline.sync(CODE, settings=self.settings)

    def change(self, pids: range, *, at: dt.datetime, version: int) -> None:
        with sqlite3.connect(self.source) as db:
            db.executemany(
                "UPDATE people SET amount = ?, updated_at = ? WHERE pid = ?",
                [(p * 10 + version, at.isoformat(" "), p) for p in pids],
            )

    def add(self, pids: range, *, at: dt.datetime) -> None:
        with sqlite3.connect(self.source) as db:
            db.executemany(
                "INSERT INTO people VALUES (?, ?, ?, ?, ?, ?)",
                [(*_row(p)[:5], at.isoformat(" ")) for p in pids],
            )

    def rephone(self, pids: range, *, at: dt.datetime) -> None:
        """Change only the phone numbers (a field the tests' grants leave out)."""
        with sqlite3.connect(self.source) as db:
            db.executemany(
                "UPDATE people SET phone = ?, updated_at = ? WHERE pid = ?",
                [(f"1390000{p:04d}", at.isoformat(" "), p) for p in pids],
            )

    def token(self, name: str) -> str:
        app_id, secret = self.apps[name]
        form = {"grant_type": "client_credentials", "client_id": app_id, "client_secret": secret}
        r = self.client.post("/api/v1/token", data=form)
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    def grant(self, name: str, fields: list[str], clear: list[str] = ()) -> int:  # type: ignore[assignment]
        app_id = self.apps[name][0]
        a = applications.submit(
            self.engine,
            app_id,
            CODE,
            fields=fields,
            clear_fields=list(clear),
            purpose="统计分析",
            legal_basis="测试",
            calendar=Calendar(),
            deadline_days=10,
            default_rate_limit=600,
        )
        decided = applications.decide(self.engine, a.id, APPROVER, approve=True, default_rate_limit=600)
        assert decided.status == "approved", decided
        (g,) = [g for g in applications.list_grants(self.engine, app_id=app_id, active_only=True)]
        return g.id


def build(tmp: Path, rows: int = 50, *, portal: bool = False, **overrides: Any) -> SharingHub:
    from catalog.api import create_app as api_app
    from catalog.portal.app import create_app as portal_app

    create_app = portal_app if portal else api_app

    source = tmp / "source.db"
    with sqlite3.connect(source) as db:
        db.execute(
            "CREATE TABLE people (pid INTEGER PRIMARY KEY, name TEXT, phone TEXT, city TEXT, amount INTEGER, "
            "updated_at TEXT)"
        )
        db.executemany("INSERT INTO people VALUES (?, ?, ?, ?, ?, ?)", [_row(i) for i in range(1, rows + 1)])
    settings = Settings(
        var_dir=tmp / "var",
        connections={"shr_src": f"sqlite:///{source}"},
        batch_size=100,
        **overrides,
    )
    engine = engine_for(settings.hub_db_url)
    publishing.publish(engine, DirectoryFile.model_validate(DIRECTORY), source_file="shr.yaml")
    staff.create_staff(engine, "shr_approver", "SHR", ["approver"], "correct horse battery staple 1")
    from catalog.db import tables

    with engine.begin() as conn:
        tjj = {"code": "TJJ", "name": "统计局", "credit_code": None, "contact": "", "updated_at": T0}
        conn.execute(tables.departments.insert().values(**tjj))
    hub = SharingHub(settings, source, engine, TestClient(create_app(settings)))
    for name in ("统计分析", "另一系统"):
        app, secret = app_registry.register_app(engine, name, "TJJ")
        hub.apps[name] = (app.app_id, secret)
    return hub
