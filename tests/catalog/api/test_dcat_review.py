"""Review of the DCAT-AP export (issue 16): what a shared cache may keep of an answer whose IRIs
were built from the request's Host header, and escaping of department-supplied text."""

from __future__ import annotations

from pathlib import Path

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS

from catalog import publishing
from catalog.directory.model import DirectoryFile
from tests.catalog.api_hub import build_hub


def test_iris_from_the_host_header_are_not_shared_between_hosts_by_a_cache(tmp_path: Path) -> None:
    h = build_hub(tmp_path)  # neither dcat_base_url nor portal_public_url
    r = h.client.get("/api/v1/catalog.ttl", headers={"Host": "evil.example"})
    assert r.status_code == 200
    assert "http://evil.example/id/catalog" in r.text  # the fallback the docs describe
    vary = {v.strip().lower() for v in r.headers.get("vary", "").split(",")}
    assert "host" in vary and "x-forwarded-proto" in vary, r.headers
    not_modified = h.client.get(
        "/api/v1/catalog.ttl", headers={"Host": "evil.example", "If-None-Match": r.headers["etag"]}
    )
    assert not_modified.status_code == 304 and "host" in not_modified.headers.get("vary", "").lower()


HOSTILE = {
    "department": {"code": "ZZJ", "name": '测试局"> <http://x/y> .'},
    "datasets": [
        {
            "code": "ZZJ-A.b_1",
            "name": 'x""" ; a <http://evil/> . """\n@prefix e: <http://evil/> .\\',
            "summary": '"}], "@context": {"@vocab": "http://evil/"}, "x": [{"',
            "category": "a/<b>/\u202e\u0000c",
            "share": {"type": "unconditional"},
            "open": {"open": True},
            "primary_key": ["k"],
            "fields": [{"name": "k", "label": "k"}],
            "source": {"kind": "sql", "connection": "c", "table": "t"},
        }
    ],
}


def test_department_text_round_trips_through_both_serialisations(tmp_path: Path) -> None:
    h = build_hub(tmp_path, dcat_base_url="https://hub.example.gov.cn")
    publishing.publish(h.engine, DirectoryFile.model_validate(HOSTILE), source_file="zzj.yaml")
    ds = URIRef("https://hub.example.gov.cn/id/dataset/ZZJ-A.b_1")
    spec = HOSTILE["datasets"][0]  # type: ignore[index]
    for path, fmt in (("/api/v1/catalog.ttl", "turtle"), ("/api/v1/catalog.jsonld", "json-ld")):
        g = Graph().parse(data=h.client.get(path).text, format=fmt)
        assert g.value(ds, DCTERMS.title) == Literal(spec["name"], lang="zh")
        assert g.value(ds, DCTERMS.description) == Literal(spec["summary"], lang="zh")
        iris = {str(term) for t in g for term in t if isinstance(term, URIRef)}
        assert not [i for i in iris if "evil" in i or "x/y" in i]
