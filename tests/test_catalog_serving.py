"""Serving store, certificates and the read API on an embedded hub DB (no lake needed)."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from catalog import certificates, serving, store
from catalog.masking import mask
from catalog.model import DirectoryFile
from tests.api_hub import LICENCE_CERT_TYPE, LICENCE_DATASET, SCJ_DEPARTMENT, USCC, licences

DIRECTORY = {
    "department": SCJ_DEPARTMENT,
    "datasets": [
        LICENCE_DATASET,
        {
            "code": "SECRET",
            "name": "不予共享数据",
            "share": {"type": "none", "legal_basis": "《某条例》第十条"},
            "primary_key": ["k"],
            "fields": [{"name": "k", "label": "键"}],
            "source": {"kind": "sql", "connection": "x", "table": "t"},
        },
    ],
    "certificate_types": [LICENCE_CERT_TYPE],
}


@pytest.fixture
def hub(tmp_path: Path) -> sa.Engine:
    engine = store.engine_for(f"sqlite:///{tmp_path / 'hub.db'}")
    store.publish(engine, DirectoryFile.model_validate(DIRECTORY), source_file="scj.yaml")
    return engine


def test_masking_rules() -> None:
    assert mask("citizen_id", "11010519491231002X") == "1***************2X"
    assert mask("mobile", "13812345678") == "138****5678"
    assert mask("name", "欧阳娜娜") == "欧***"
    assert mask("address", "浙江省杭州市西湖区文三路100号3幢") == "浙江省杭州市西湖区文********"
    assert mask("name", None) is None


def test_serving_replace_upsert_and_lookups(hub: sa.Engine) -> None:
    spec = store.get_dataset(hub, "SCJ-LIC").spec
    # publishing the directory made the table, empty: lookups answer nothing until the first sync
    assert serving.ensure_serving_table(hub, spec) is False and serving.is_empty(hub, spec)
    assert serving.lookup_key(hub, spec, {"uscc": USCC[0]}) is None
    serving.refresh(
        hub, spec, licences(["甲公司", "乙公司", "丙公司"], ["存续"] * 3), run_id="r1", replace=True
    )
    assert serving.count(hub, spec) == 3
    serving.refresh(hub, spec, licences(["甲公司（新）"], ["吊销"]), run_id="r2", replace=False)
    assert serving.count(hub, spec) == 3
    row = serving.lookup_key(hub, spec, {"uscc": USCC[0]})
    assert (
        row is not None and row["ent_name"] == "甲公司（新）" and row["capital"] == decimal.Decimal("100.00")
    )
    assert serving.lookup_key(hub, spec, {"uscc": "nope"}) is None
    assert [r["uscc"] for r in serving.lookup_subject(hub, spec, USCC[1])] == [USCC[1]]
    indexes = {
        tuple(ix["column_names"]) for ix in sa.inspect(hub).get_indexes(serving.serving_table_name("SCJ-LIC"))
    }
    pk = sa.inspect(hub).get_pk_constraint(serving.serving_table_name("SCJ-LIC"))
    assert pk["constrained_columns"] == ["uscc"] or ("uscc",) in indexes


def test_certificate_identifiers_and_status(hub: sa.Engine) -> None:
    ds = store.get_dataset(hub, "SCJ-LIC")
    code = "11100000000013127D001"
    today = dt.date(2026, 11, 22)
    res = certificates.issue(
        hub,
        ds.spec,
        ds.department,
        code,
        licences(["甲", "乙", "丙"], ["存续", "存续", "注销"]),
        run_id="r1",
        today=today,
    )
    assert res.issued == 3
    certs = {c["number"]: c for c in certificates.certificates_of(hub, USCC[0])}
    c0 = certs[USCC[0]]
    assert c0["identifier"].startswith(f"1.2.156.3005.2.{code}.11330100002482345X.00000001.1.")
    assert certificates.identifier_is_well_formed(c0["identifier"])
    assert not certificates.identifier_is_well_formed(
        c0["identifier"][:-1] + ("0" if c0["identifier"][-1] != "0" else "1")
    )
    statuses = {c["number"]: c["status"] for c in (certificates.certificates_of(hub, u)[0] for u in USCC)}
    assert statuses == {USCC[0]: "valid", USCC[1]: "expired", USCC[2]: "revoked"}
    # a face change gives a new version of the same serial; a status change keeps the identifier
    res = certificates.issue(
        hub,
        ds.spec,
        ds.department,
        code,
        licences(["甲（更名）", "乙", "丙"], ["存续", "存续", "注销"]),
        run_id="r2",
        today=today,
    )
    assert (res.issued, res.reissued, res.unchanged) == (0, 1, 2)
    (c0b,) = certificates.certificates_of(hub, USCC[0])
    assert c0b["serial"] == c0["serial"] and c0b["version"] == 2
    assert c0b["identifier"].split(".")[-2] == "2"
    res = certificates.issue(
        hub, ds.spec, ds.department, code, licences(["甲（更名）"], ["吊销"]), run_id="r3", today=today
    )
    assert res.status_changed == 1
    assert certificates.certificates_of(hub, USCC[0])[0]["status"] == "revoked"


def test_mod37_36_known_value() -> None:
    # ISO/IEC 7064 MOD 37,36 over "A12425GABC1234002" gives "M" (worked example in the standard family)
    assert certificates.mod37_36_check("A12425GABC1234002") == "M"
