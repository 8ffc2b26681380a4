"""A small published hub for access-API tests: four datasets, one certificate type, apps and staff.

Serving tables are filled directly (no lake needed); certificates are issued and signed with
the hub's real key store. Everything is real: SQLite hub DB, Ed25519 keys, argon2 hashes.
"""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from fastapi.testclient import TestClient

from catalog import publishing
from catalog.access import app_registry as apps
from catalog.access import staff
from catalog.auth.keys import KeyStore
from catalog.certificates import issuing
from catalog.db.engine import engine_for
from catalog.directory import store
from catalog.directory.model import DirectoryFile
from catalog.serving import tables as serving

CERT_TYPE = "11100000000013127D001"
USCC = ["91330100MA27XL0B5H", "91330106MA2CFP8M0B", "91330108MA2H2Y4X1U"]
CITIZENS = ["11010519491231002X", "330106198001010014", "330106199002020022"]
PASSWORD = "correct horse battery"

SCJ_DEPARTMENT = {"code": "SCJ", "name": "市场监督管理局", "credit_code": "11330100002482345X"}
#: the business-licence dataset every catalog test publishes (a certificate dataset)
LICENCE_DATASET = {
    "code": "SCJ-LIC",
    "name": "营业执照信息",
    "share": {"type": "conditional", "condition": "办理企业登记相关业务"},
    "primary_key": ["uscc"],
    "subject": {"field": "uscc", "kind": "enterprise"},
    "fields": [
        {"name": "uscc", "label": "统一社会信用代码"},
        {"name": "ent_name", "label": "企业名称"},
        {"name": "legal_rep", "label": "法定代表人", "sensitivity": "sensitive", "mask": "name"},
        {"name": "capital", "label": "注册资本", "type": "decimal(18,2)"},
        {"name": "est_date", "label": "成立日期", "type": "date"},
        {"name": "valid_until", "label": "营业期限至", "type": "date"},
        {"name": "status", "label": "登记状态"},
    ],
    "source": {"kind": "sql", "connection": "x", "table": "t"},
    "certificate": {
        "type_code": CERT_TYPE,
        "number": "uscc",
        "holder_name": "ent_name",
        "valid_from": "est_date",
        "valid_until": "valid_until",
        "status": "status",
        "revoked_values": ["吊销", "注销"],
        "face": ["uscc", "ent_name", "legal_rep", "capital", "est_date"],
    },
}
LICENCE_CERT_TYPE = {"code": CERT_TYPE, "name": "营业执照", "holder_kind": "enterprise", "dataset": "SCJ-LIC"}

SCJ = {
    "department": SCJ_DEPARTMENT,
    "datasets": [
        LICENCE_DATASET,
        {
            "code": "SCJ-OPEN",
            "name": "企业年报公示信息",
            "share": {"type": "unconditional"},
            "open": {"open": True, "condition": "依法公示"},
            "primary_key": ["uscc"],
            "subject": {"field": "uscc", "kind": "enterprise"},
            "fields": [
                {"name": "uscc", "label": "统一社会信用代码"},
                {"name": "ent_name", "label": "企业名称"},
                {"name": "contact_mobile", "label": "联系电话", "sensitivity": "sensitive", "mask": "mobile"},
            ],
            "source": {"kind": "sql", "connection": "x", "table": "t"},
        },
        {
            "code": "SCJ-SECRET",
            "name": "不予共享数据",
            "share": {"type": "none", "legal_basis": "《某条例》第十条"},
            "primary_key": ["k"],
            "fields": [{"name": "k", "label": "键"}],
            "source": {"kind": "sql", "connection": "x", "table": "t"},
        },
    ],
    "certificate_types": [LICENCE_CERT_TYPE],
}
RSJ = {
    "department": {"code": "RSJ", "name": "人力资源和社会保障局"},
    "datasets": [
        {
            "code": "RSJ-PEN",
            "name": "社保参保信息",
            "share": {"type": "unconditional"},
            "primary_key": ["person_id", "month"],
            "subject": {"field": "person_id", "kind": "person"},
            "fields": [
                {
                    "name": "person_id",
                    "label": "公民身份号码",
                    "sensitivity": "sensitive",
                    "mask": "citizen_id",
                },
                {"name": "name", "label": "姓名", "sensitivity": "sensitive", "mask": "name"},
                {"name": "month", "label": "缴费年月"},
                {"name": "amount", "label": "缴费金额", "type": "integer"},
            ],
            "source": {"kind": "sql", "connection": "x", "table": "t"},
        }
    ],
}
STAFF: dict[str, tuple[str | None, list[str]]] = {
    "scj_approver": ("SCJ", ["approver"]),
    "scj_auditor": ("SCJ", ["auditor"]),
    "rsj_approver": ("RSJ", ["approver"]),
    "rsj_auditor": ("RSJ", ["auditor"]),
    "hub_admin": (None, ["admin"]),
}
BDC = {"department": {"code": "ZGJ", "name": "自然资源和规划局"}}


def licences(
    names: list[str], statuses: list[str], valid_until: list[dt.date | None] | None = None
) -> pa.Table:
    """Rows of the licence dataset for the first ``len(names)`` of :data:`USCC`."""
    n = len(names)
    return pa.table(
        {
            "uscc": USCC[:n],
            "ent_name": names,
            "legal_rep": ["张三丰", "李四", "王五"][:n],
            "capital": pa.array([decimal.Decimal("100.00")] * n, pa.decimal128(18, 2)),
            "est_date": [dt.date(2020, 1, 1)] * n,
            "valid_until": valid_until if valid_until is not None else [None, dt.date(2021, 1, 1), None][:n],
            "status": statuses,
        }
    )


@dataclass
class ApiHub:
    """A running in-process API with its parties."""

    client: TestClient
    engine: sa.Engine
    keys: KeyStore
    settings: Any
    apps: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (client_id, secret)
    tokens: dict[str, str] = field(default_factory=dict)

    def app_token(self, name: str) -> str:
        if name not in self.tokens:
            cid, secret = self.apps[name]
            r = self.client.post(
                "/api/v1/token",
                data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
            )
            assert r.status_code == 200, r.text
            self.tokens[name] = r.json()["access_token"]
        return self.tokens[name]

    def staff_token(self, username: str) -> str:
        """A token for one of the STAFF accounts (created on first use: argon2 is slow on purpose)."""
        if username in self.tokens:
            return self.tokens[username]
        if staff.get_staff(self.engine, username) is None:
            dept, roles = STAFF[username]
            staff.create_staff(self.engine, username, dept, roles, PASSWORD)
        r = self.client.post(
            "/api/v1/token", data={"grant_type": "password", "username": username, "password": PASSWORD}
        )
        assert r.status_code == 200, r.text
        self.tokens[username] = str(r.json()["access_token"])
        return self.tokens[username]

    def as_app(self, name: str, *, purpose: bool = True) -> dict[str, str]:
        h = {"Authorization": f"Bearer {self.app_token(name)}"}
        if purpose:
            h |= {"X-End-User-Id": "officer-007", "X-Case-Number": "QYKB-2026-000123"}
        return h

    def as_staff(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.staff_token(username)}"}

    def last_audit(self) -> dict[str, Any]:
        from catalog.db import tables

        with self.engine.connect() as conn:
            row = conn.execute(sa.select(tables.audit).order_by(tables.audit.c.seq.desc()).limit(1)).one()
        return dict(row._mapping)

    def audit_count(self) -> int:
        from catalog.db import tables

        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(tables.audit)).scalar_one())


def build_hub(tmp_path: Path, *, portal: bool = False, **overrides: Any) -> ApiHub:
    """The sample hub; ``portal=True`` serves the portal on the same app (as ``sharehub serve`` does)."""
    from catalog.api import create_app as create_api_app
    from catalog.portal.app import create_app as create_portal_app
    from sharehub.settings import Settings

    create_app = create_portal_app if portal else create_api_app

    settings = Settings(var_dir=tmp_path / "var", **overrides)
    engine = engine_for(settings.hub_db_url)
    for name, doc in (("scj.yaml", SCJ), ("rsj.yaml", RSJ), ("zgj.yaml", BDC)):
        publishing.publish(engine, DirectoryFile.model_validate(doc), source_file=name)
    lic = store.get_dataset(engine, "SCJ-LIC")
    serving.ensure_serving_table(engine, lic.spec)
    serving.refresh(
        engine,
        lic.spec,
        licences(["甲公司", "乙公司", "丙公司"], ["存续", "存续", "吊销"]),
        run_id="r1",
        replace=True,
    )
    keys = KeyStore(engine, settings.signing_keys_dir)
    issuing.issue(
        engine,
        lic.spec,
        lic.department,
        CERT_TYPE,
        licences(["甲公司", "乙公司", "丙公司"], ["存续", "存续", "吊销"]),
        run_id="r1",
        signer=keys.active("certificate"),
    )
    opn = store.get_dataset(engine, "SCJ-OPEN").spec
    serving.ensure_serving_table(engine, opn)
    serving.refresh(
        engine,
        opn,
        pa.table(
            {"uscc": USCC, "ent_name": ["甲公司", "乙公司", "丙公司"], "contact_mobile": ["13812345678"] * 3}
        ),
        run_id="r1",
        replace=True,
    )
    pen = store.get_dataset(engine, "RSJ-PEN").spec
    serving.ensure_serving_table(engine, pen)
    serving.refresh(
        engine,
        pen,
        pa.table(
            {
                "person_id": [CITIZENS[0], CITIZENS[0], CITIZENS[1]],
                "name": ["张三", "张三", "李四"],
                "month": ["2026-09", "2026-10", "2026-10"],
                "amount": [1200, 1200, 900],
            }
        ),
        run_id="r1",
        replace=True,
    )
    hub = ApiHub(client=TestClient(create_app(settings)), engine=engine, keys=keys, settings=settings)
    for name, dept in (("企业开办", "SCJ"), ("不动产登记", "ZGJ")):
        app, secret = apps.register_app(engine, name, dept)
        hub.apps[name] = (app.app_id, secret)
    return hub


# ---- a person certificate dataset (ID cards), for the disclosure tests ------------------------

ID_CARD_TYPE = "11100000MB0143028Y001"
GAJ = {
    "department": {"code": "GAJ", "name": "公安局", "credit_code": "1133010000248212X6"},
    "datasets": [
        {
            "code": "GAJ-ID",
            "name": "户籍人口信息",
            "share": {"type": "conditional", "condition": "依法核验自然人身份"},
            "primary_key": ["id_no"],
            "subject": {"field": "id_no", "kind": "person"},
            "fields": [
                {"name": "id_no", "label": "公民身份号码", "sensitivity": "sensitive", "mask": "citizen_id"},
                {"name": "name", "label": "姓名", "sensitivity": "sensitive", "mask": "name"},
                {"name": "gender", "label": "性别"},
                {"name": "address", "label": "户籍地址", "sensitivity": "sensitive", "mask": "address"},
                {"name": "authority", "label": "签发机关"},
                {"name": "id_valid_from", "label": "有效期起始日期", "type": "date"},
                {"name": "id_valid_until", "label": "有效期截止日期", "type": "date"},
            ],
            "source": {"kind": "sql", "connection": "x", "table": "t"},
            "certificate": {
                "type_code": ID_CARD_TYPE,
                "number": "id_no",
                "holder_name": "name",
                "valid_from": "id_valid_from",
                "valid_until": "id_valid_until",
                "face": [
                    "name",
                    "gender",
                    "address",
                    "id_no",
                    "authority",
                    "id_valid_from",
                    "id_valid_until",
                ],
            },
        }
    ],
    "certificate_types": [
        {"code": ID_CARD_TYPE, "name": "居民身份证", "holder_kind": "person", "dataset": "GAJ-ID"}
    ],
}


def residents() -> pa.Table:
    """Three residents whose every value is distinctive (a leak test can search for each)."""
    return pa.table(
        {
            "id_no": CITIZENS,
            "name": ["欧阳靖宇", "司马青岚", "诸葛明哲"],
            "gender": ["男", "女", "男"],
            "address": [
                "浙江省杭州市西湖区文三路一百零八号七幢",
                "浙江省杭州市上城区清波街道河坊街三十九号",
                "杭州市拱墅区湖墅南路两百二十二号",
            ],
            "authority": ["杭州市公安局西湖分局", "杭州市公安局上城分局", "杭州市公安局拱墅分局"],
            "id_valid_from": [dt.date(2011, 3, 17), dt.date(2013, 5, 29), dt.date(2017, 8, 11)],
            "id_valid_until": [dt.date(2031, 3, 17), dt.date(2033, 5, 29), None],
        }
    )


def publish_id_cards(hub: ApiHub) -> None:
    """Publish the police's ID-card dataset, fill its serving table and issue signed ID cards."""
    publishing.publish(hub.engine, DirectoryFile.model_validate(GAJ), source_file="gaj.yaml")
    d = store.get_dataset(hub.engine, "GAJ-ID")
    serving.ensure_serving_table(hub.engine, d.spec)
    serving.refresh(hub.engine, d.spec, residents(), run_id="r1", replace=True)
    issuing.issue(
        hub.engine,
        d.spec,
        d.department,
        ID_CARD_TYPE,
        residents(),
        run_id="r1",
        signer=hub.keys.active("certificate"),
    )
    STAFF.setdefault("gaj_approver", ("GAJ", ["approver"]))
    STAFF.setdefault("gaj_auditor", ("GAJ", ["auditor"]))
