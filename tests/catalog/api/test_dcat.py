"""The DCAT-AP 3 export (``/api/v1/catalog.ttl`` and ``.jsonld``): both serialisations are the
same graph, it describes exactly the public directory, conforms to the official DCAT-AP 3.0.0
SHACL shapes, and nothing that only signed-in parties see leaks into it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyshacl
import pytest
import sqlalchemy as sa
from rdflib import RDF, Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import DCAT, DCTERMS, FOAF

from catalog import publishing
from catalog.access import applications
from catalog.db import tables
from catalog.directory import store
from catalog.directory.model import DirectoryFile
from tests.catalog.api_hub import SCJ, ApiHub, build_hub

SHAPES = Path(__file__).parents[2] / "data" / "dcat-ap"
BASE = "https://hub.example.gov.cn"
LICENCE = "http://publications.europa.eu/resource/authority/licence/CC_BY_4_0"
EU = "http://publications.europa.eu/resource/authority/"
ID = Namespace(BASE + "/id/")

#: an open, general dataset shared in bulk too, with things the public must never see
ZGJ = {
    "department": {"code": "ZGJ", "name": "自然资源和规划局", "contact": "数据资源处 0571-99990000"},
    "datasets": [
        {
            "code": "ZGJ-PARCEL",
            "name": "宗地公开信息",
            "summary": "本市已登记宗地的公开信息",
            "category": "自然资源/宗地",
            "update_cycle": "monthly",
            "share": {"type": "unconditional", "mode": "both"},
            "open": {"open": True},
            "primary_key": ["parcel_no"],
            "fields": [
                {"name": "parcel_no", "label": "宗地编号"},
                {"name": "owner_secret_col", "label": "权利人", "sensitivity": "sensitive", "mask": "name"},
            ],
            "source": {"kind": "sql", "connection": "zgj_hidden_conn", "table": "bdc_internal_table"},
            "schedule": "17 3 * * *",
            "tags": ["internal-tag-xyz"],
        },
        {
            "code": "ZGJ-CLOSED",
            "name": "不动产抵押明细",
            "summary": "内部",
            "share": {"type": "conditional", "condition": "仅限不动产登记业务"},
            "primary_key": ["mortgage_amount_col"],
            "fields": [{"name": "mortgage_amount_col", "label": "抵押金额"}],
            "source": {"kind": "sql", "connection": "zgj_hidden_conn", "table": "mortgage_internal"},
        },
    ],
}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> ApiHub:
    h = build_hub(tmp_path_factory.mktemp("dcat"), dcat_base_url=BASE + "/", dcat_license=LICENCE)
    publishing.publish(h.engine, DirectoryFile.model_validate(ZGJ), source_file="zgj.yaml")
    finished = dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.UTC)  # after the publication
    with h.engine.begin() as conn:
        conn.execute(
            tables.sync_runs.insert().values(
                run_id="cli__2026-11-03T02:00:00",
                dataset_code="SCJ-OPEN",
                dataset_version=1,
                status="success",
                stage="done",
                full=True,
                trigger="cli",
                started_at=finished - dt.timedelta(minutes=5),
                finished_at=finished,
                rows_published=3,
            )
        )
    # an app with a grant: neither it nor its grant may appear
    app_id = h.apps["企业开办"][0]
    applications.submit(
        h.engine,
        app_id,
        "SCJ-OPEN",
        fields=None,
        purpose="企业开办",
        legal_basis="test",
        calendar=h.client.app.state.hub.calendar,
        deadline_days=10,
        default_rate_limit=600,
    )
    return h


def _parse(hub: ApiHub) -> tuple[Graph, Graph, Any, Any]:
    ttl = hub.client.get("/api/v1/catalog.ttl")
    jsonld = hub.client.get("/api/v1/catalog.jsonld")
    assert ttl.status_code == 200, ttl.text
    assert jsonld.status_code == 200, jsonld.text
    return (
        Graph().parse(data=ttl.text, format="turtle"),
        Graph().parse(data=jsonld.text, format="json-ld"),
        ttl,
        jsonld,
    )


def test_both_serialisations_are_the_same_graph(hub: ApiHub) -> None:
    g_ttl, g_jsonld, ttl, jsonld = _parse(hub)
    assert ttl.headers["content-type"].startswith("text/turtle")
    assert jsonld.headers["content-type"].startswith("application/ld+json")
    assert len(g_ttl) > 30
    assert isomorphic(g_ttl, g_jsonld)


def test_it_describes_exactly_the_public_directory(hub: ApiHub) -> None:
    g, _, _, _ = _parse(hub)
    public = sorted(
        d.spec.code
        for d in store.list_datasets(hub.engine)
        if d.spec.open.open and d.spec.share.type.value != "none"
    )
    assert public == ["SCJ-OPEN", "ZGJ-PARCEL"]
    datasets = sorted(str(g.value(ds, DCTERMS.identifier)) for ds in g.subjects(RDF.type, DCAT.Dataset))
    assert datasets == public
    catalog = ID.catalog
    assert set(g.objects(catalog, DCAT.dataset)) == {ID["dataset/SCJ-OPEN"], ID["dataset/ZGJ-PARCEL"]}
    assert g.value(catalog, DCTERMS.language) == URIRef(EU + "language/ZHO")
    assert g.value(catalog, DCTERMS.modified) == Literal("2031-01-02T03:04:05+00:00", datatype=_dt())
    assert (catalog, DCTERMS.issued, None) in g

    parcel = ID["dataset/ZGJ-PARCEL"]
    assert g.value(parcel, DCTERMS.title) == Literal("宗地公开信息", lang="zh")
    assert g.value(parcel, DCTERMS.description) == Literal("本市已登记宗地的公开信息", lang="zh")
    assert set(g.objects(parcel, DCAT.keyword)) == {
        Literal("自然资源", lang="zh"),
        Literal("宗地", lang="zh"),
    }
    assert g.value(parcel, DCTERMS.accrualPeriodicity) == URIRef(EU + "frequency/MONTHLY")
    assert g.value(parcel, DCTERMS.accessRights) == URIRef(EU + "access-right/PUBLIC")
    publisher = g.value(parcel, DCTERMS.publisher)
    assert publisher == ID["department/ZGJ"]
    assert (publisher, RDF.type, FOAF.Agent) in g
    assert g.value(publisher, FOAF.name) == Literal("自然资源和规划局", lang="zh")
    contact = g.value(parcel, DCAT.contactPoint)
    assert contact is not None
    assert g.value(contact, URIRef("http://www.w3.org/2006/vcard/ns#fn")) == Literal(
        "自然资源和规划局", lang="zh"
    )

    # the access API, the two open downloads and Delta Sharing (mode both, general grade)
    dists = {str(d).rsplit("/", 1)[1]: d for d in g.objects(parcel, DCAT.distribution)}
    assert sorted(dists) == ["api", "csv", "delta-sharing", "parquet"]
    assert g.value(dists["api"], DCAT.accessURL) == URIRef(f"{BASE}/api/v1/datasets/ZGJ-PARCEL/records")
    assert g.value(dists["api"], DCAT.accessService) == ID["service/access-api"]
    assert g.value(dists["csv"], DCAT.downloadURL) == URIRef(
        f"{BASE}/api/v1/datasets/ZGJ-PARCEL/download?format=csv"
    )
    assert g.value(dists["delta-sharing"], DCAT.accessURL) == URIRef(f"{BASE}/api/v1/delta-sharing")
    for d in dists.values():
        assert g.value(d, DCTERMS.license) == URIRef(LICENCE)
        assert g.value(d, DCAT.mediaType) is not None
        assert g.value(d, DCTERMS.format) is not None

    # SCJ-OPEN: interface only, its last successful run gives dct:modified
    scj = ID["dataset/SCJ-OPEN"]
    assert sorted(str(d).rsplit("/", 1)[1] for d in g.objects(scj, DCAT.distribution)) == [
        "api",
        "csv",
        "parquet",
    ]
    assert g.value(scj, DCTERMS.modified) == Literal("2031-01-02T03:04:05+00:00", datatype=_dt())
    assert g.value(scj, DCTERMS.accrualPeriodicity) == URIRef(EU + "frequency/DAILY")

    service = ID["service/access-api"]
    assert (service, RDF.type, DCAT.DataService) in g
    assert g.value(service, DCAT.endpointURL) == URIRef(BASE + "/api/v1")
    assert g.value(service, DCAT.endpointDescription) == URIRef(BASE + "/openapi.json")
    assert set(g.objects(service, DCAT.servesDataset)) == {scj, parcel}


def _dt() -> URIRef:
    return URIRef("http://www.w3.org/2001/XMLSchema#dateTime")


def test_conforms_to_the_dcat_ap_3_shapes(hub: ApiHub) -> None:
    g, g_jsonld, _, _ = _parse(hub)
    shapes = Graph()
    shapes.parse(SHAPES / "dcat-ap-SHACL.ttl")
    shapes.parse(SHAPES / "range.ttl")
    for graph in (g, g_jsonld):
        conforms, _report, text = pyshacl.validate(graph, shacl_graph=shapes, advanced=True)
        assert conforms, text


def test_nothing_but_the_public_directory_leaks(hub: ApiHub) -> None:
    _, _, ttl, jsonld = _parse(hub)
    bodies = ttl.text + jsonld.text
    forbidden = [
        # datasets the public does not see (not open, or never shared)
        "SCJ-LIC",
        "SCJ-SECRET",
        "RSJ-PEN",
        "ZGJ-CLOSED",
        "不动产抵押明细",
        "营业执照信息",
        "社保参保信息",
        "《某条例》第十条",
        # fields (names and sensitive labels), of public datasets too
        "owner_secret_col",
        "mortgage_amount_col",
        "contact_mobile",
        "legal_rep",
        "person_id",
        # sources, schedules, tags, the department's contact line
        "zgj_hidden_conn",
        "bdc_internal_table",
        "mortgage_internal",
        "17 3 * * *",
        "internal-tag-xyz",
        "0571-99990000",
        # apps, their credentials and applications; row values
        "企业开办",
        "不动产登记",
        "91330100MA27XL0B5H",
        "甲公司",
        "13812345678",
    ]
    for cid, secret in hub.apps.values():
        forbidden += [cid, secret]
    leaked = [f for f in forbidden if f in bodies]
    assert leaked == []


def test_cache_headers_and_not_modified(hub: ApiHub) -> None:
    first = hub.client.get("/api/v1/catalog.ttl")
    etag = first.headers["etag"]
    assert etag.startswith('"') and len(etag) == 66
    assert first.headers["last-modified"] == "Thu, 02 Jan 2031 03:04:05 GMT"
    again = hub.client.get("/api/v1/catalog.ttl", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    other = hub.client.get("/api/v1/catalog.ttl", headers={"If-None-Match": '"stale"'})
    assert other.status_code == 200
    # the JSON-LD body has its own tag
    assert hub.client.get("/api/v1/catalog.jsonld").headers["etag"] != etag


def test_calls_are_audited_as_public_directory_reads(hub: ApiHub) -> None:
    r = hub.client.get("/api/v1/catalog.jsonld")
    assert r.status_code == 200
    rec = hub.last_audit()
    assert rec["path"] == "/api/v1/catalog.jsonld"
    assert rec["action"] == "directory.dcat"
    assert rec["actor_kind"] == "anonymous"
    assert rec["row_count"] == 2


def test_iris_are_stable_whatever_host_is_asked(hub: ApiHub) -> None:
    a = hub.client.get("/api/v1/catalog.ttl").text
    b = hub.client.get("/api/v1/catalog.ttl", headers={"Host": "elsewhere.example"}).text
    assert a == b
    assert "testserver" not in a and "elsewhere.example" not in a


def test_in_openapi(hub: ApiHub) -> None:
    paths = hub.client.get("/openapi.json").json()["paths"]
    for path, media in (
        ("/api/v1/catalog.ttl", "text/turtle"),
        ("/api/v1/catalog.jsonld", "application/ld+json"),
    ):
        op = paths[path]["get"]
        assert media in op["responses"]["200"]["content"]
        assert {"304", "400", "503"} <= set(op["responses"])


def test_unshown_when_nothing_is_open(tmp_path: Path) -> None:
    h = build_hub(tmp_path)
    datasets: list[dict[str, Any]] = list(SCJ["datasets"])  # type: ignore[arg-type]
    closed = [{**d, "open": {"open": False}} for d in datasets]
    publishing.publish(
        h.engine, DirectoryFile.model_validate({**SCJ, "datasets": closed}), source_file="scj.yaml"
    )
    with h.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.datasets)).scalar_one() == 4
    g = Graph().parse(data=h.client.get("/api/v1/catalog.ttl").text, format="turtle")
    assert list(g.subjects(RDF.type, DCAT.Dataset)) == []
    assert (None, RDF.type, DCAT.Catalog) in g
