"""Serving store, certificates and the read API on an embedded hub DB (no lake needed)."""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

from catalog import publishing
from catalog.certificates import issuing
from catalog.db.engine import engine_for
from catalog.directory import store
from catalog.directory.model import DirectoryFile
from catalog.masking import mask
from catalog.serving import tables as serving
from tests.catalog.api_hub import LICENCE_CERT_TYPE, LICENCE_DATASET, SCJ_DEPARTMENT, USCC, licences

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
    engine = engine_for(f"sqlite:///{tmp_path / 'hub.db'}")
    publishing.publish(engine, DirectoryFile.model_validate(DIRECTORY), source_file="scj.yaml")
    return engine


def test_masking_rules() -> None:
    assert mask("citizen_id", "11010519491231002X") == "1***************2X"
    assert mask("mobile", "13812345678") == "138****5678"
    assert mask("name", "欧阳娜娜") == "欧***"
    # down to the district or street office; road, number and building are hidden
    assert mask("address", "浙江省杭州市西湖区文三路100号3幢") == "浙江省杭州市西湖区****"
    assert mask("address", "上城区清波街道河坊街39号") == "上城区清波街道****"
    assert mask("address", "文三路100号3幢") == "****"
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
    res = issuing.issue(
        hub,
        ds.spec,
        ds.department,
        code,
        licences(["甲", "乙", "丙"], ["存续", "存续", "注销"]),
        run_id="r1",
        today=today,
    )
    assert res.issued == 3
    certs = {c["number"]: c for c in issuing.certificates_of(hub, USCC[0])}
    c0 = certs[USCC[0]]
    # <prefix>.<type>.<issuer>.<random 16-digit serial>.<version>.<check>
    assert re.fullmatch(
        rf"1\.2\.156\.3005\.2\.{code}\.11330100002482345X\.\d{{16}}\.1\.[0-9A-Z]", c0["identifier"]
    )
    assert len({c["serial"] for u in USCC for c in issuing.certificates_of(hub, u)}) == 3
    assert issuing.identifier_is_well_formed(c0["identifier"])
    assert not issuing.identifier_is_well_formed(
        c0["identifier"][:-1] + ("0" if c0["identifier"][-1] != "0" else "1")
    )
    statuses = {c["number"]: c["status"] for c in (issuing.certificates_of(hub, u)[0] for u in USCC)}
    assert statuses == {USCC[0]: "valid", USCC[1]: "expired", USCC[2]: "revoked"}
    # a face change gives a new version of the same serial; a status change keeps the identifier
    res = issuing.issue(
        hub,
        ds.spec,
        ds.department,
        code,
        licences(["甲（更名）", "乙", "丙"], ["存续", "存续", "注销"]),
        run_id="r2",
        today=today,
    )
    assert (res.issued, res.reissued, res.unchanged) == (0, 1, 2)
    (c0b,) = issuing.certificates_of(hub, USCC[0])
    assert c0b["serial"] == c0["serial"] and c0b["version"] == 2
    assert c0b["identifier"].split(".")[-2] == "2"
    res = issuing.issue(
        hub, ds.spec, ds.department, code, licences(["甲（更名）"], ["吊销"]), run_id="r3", today=today
    )
    assert res.status_changed == 1
    assert issuing.certificates_of(hub, USCC[0])[0]["status"] == "revoked"


def test_mod37_36_known_value() -> None:
    # ISO/IEC 7064 MOD 37,36 over "A12425GABC1234002" gives "M" (worked example in the standard family)
    assert issuing.mod37_36_check("A12425GABC1234002") == "M"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def any_hub(request: pytest.FixtureRequest, tmp_path: Path) -> sa.Engine:
    url = (
        f"sqlite:///{tmp_path / 'hub.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("hub_pg_url")
    )
    engine = engine_for(url)
    publishing.publish(engine, DirectoryFile.model_validate(DIRECTORY), source_file="scj.yaml")
    return engine


def _awkward(names: list[str]) -> pa.Table:
    table = licences(names, ["存续"] * len(names))
    return table.set_column(
        table.schema.get_field_index("legal_rep"),
        "legal_rep",
        pa.array(["", None, '引"号,\n换行'][: len(names)], pa.string()),
    )


def test_refresh_keeps_values_exactly_on_each_database(any_hub: sa.Engine) -> None:
    """Empty strings, nulls, quotes, commas and newlines survive the bulk path (COPY on PostgreSQL)."""
    spec = store.get_dataset(any_hub, "SCJ-LIC").spec
    written = serving.refresh(any_hub, spec, _awkward(["甲", "乙", "丙"]), run_id="r1", replace=True)
    assert written == 3 and serving.count(any_hub, spec) == 3
    rows = {u: serving.lookup_key(any_hub, spec, {"uscc": u}) for u in USCC}
    assert [rows[u]["legal_rep"] for u in USCC] == ["", None, '引"号,\n换行']  # type: ignore[index]
    assert rows[USCC[0]]["capital"] == decimal.Decimal("100.00")  # type: ignore[index]
    assert rows[USCC[0]]["est_date"] == dt.date(2020, 1, 1) and rows[USCC[0]]["valid_until"] is None  # type: ignore[index]
    # an incremental refresh upserts: one changed row, nothing else touched
    serving.refresh(any_hub, spec, licences(["甲（新）"], ["吊销"]), run_id="r2", replace=False)
    assert serving.count(any_hub, spec) == 3
    assert serving.lookup_key(any_hub, spec, {"uscc": USCC[0]})["ent_name"] == "甲（新）"  # type: ignore[index]
    assert serving.lookup_key(any_hub, spec, {"uscc": USCC[1]})["ent_name"] == "乙"  # type: ignore[index]
    # a replace swaps the whole table: keys, subject index and primary key are back under their names
    serving.refresh(any_hub, spec, licences(["甲"], ["存续"]), run_id="r3", replace=True)
    assert serving.count(any_hub, spec) == 1
    name = serving.serving_table_name("SCJ-LIC")
    insp = sa.inspect(any_hub)
    assert insp.get_pk_constraint(name)["constrained_columns"] == ["uscc"]
    assert not insp.has_table(f"{name}__load")


def test_failed_refresh_leaves_the_served_rows(any_hub: sa.Engine) -> None:
    spec = store.get_dataset(any_hub, "SCJ-LIC").spec
    serving.refresh(any_hub, spec, licences(["甲", "乙"], ["存续"] * 2), run_id="r1", replace=True)

    def broken() -> Iterator[pa.RecordBatch]:
        yield from licences(["丙"], ["存续"]).to_batches()
        raise RuntimeError("lake read failed half-way")

    for replace in (True, False):
        with pytest.raises(RuntimeError, match="half-way"):
            serving.refresh(any_hub, spec, broken(), run_id="r2", replace=replace)
        assert serving.count(any_hub, spec) == 2
        assert serving.lookup_key(any_hub, spec, {"uscc": USCC[0]})["ent_name"] == "甲"  # type: ignore[index]


def test_before_commit_failure_leaves_the_served_rows(any_hub: sa.Engine) -> None:
    """The pipeline holds the serving commit until the lake committed; a refusal there changes nothing."""
    spec = store.get_dataset(any_hub, "SCJ-LIC").spec
    serving.refresh(any_hub, spec, licences(["甲", "乙"], ["存续"] * 2), run_id="r1", replace=True)

    def lake_failed() -> None:
        raise RuntimeError("the curated write failed")

    for replace in (True, False):
        with pytest.raises(RuntimeError, match="curated write failed"):
            serving.refresh(
                any_hub,
                spec,
                licences(["丙"], ["吊销"]),
                run_id="r2",
                replace=replace,
                before_commit=lake_failed,
            )
        assert serving.count(any_hub, spec) == 2
        assert serving.lookup_key(any_hub, spec, {"uscc": USCC[0]})["ent_name"] == "甲"  # type: ignore[index]
