"""The directory and dataset pages: what the public and staff see, search, facets, versions."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from catalog import publishing
from catalog.directory.model import DirectoryFile
from tests.catalog.api_hub import SCJ

NOT_OPEN = ("营业执照信息", "SCJ-LIC", "RSJ-PEN")


def _count(html: str) -> str:
    m = re.search(r'id="result-count">([^<]*)<', html)
    assert m
    return m.group(1)


def test_the_public_sees_open_data_only_anywhere_in_the_page(portal_hub) -> None:
    client = TestClient(portal_hub.client.app)
    for url in ("/portal/", "/portal/?q=企业", "/portal/?sort=use", "/portal/?share_type=conditional"):
        html = client.get(url).text
        for secret in NOT_OPEN:
            assert secret not in html, (url, secret)
    assert "企业年报公示信息" in client.get("/portal/").text
    # a closed dataset's page answers as if it did not exist
    closed = client.get("/portal/datasets/SCJ-LIC")
    missing = client.get("/portal/datasets/NOPE-1")
    assert closed.status_code == missing.status_code == 404
    assert "营业执照" not in closed.text


def test_staff_see_the_whole_directory_with_facets(portal_hub, as_staff) -> None:
    client = as_staff("zgj_pub")
    html = client.get("/portal/").text
    assert "营业执照信息" in html and "企业年报公示信息" in html
    total = int(re.sub(r"\D", "", _count(html)))
    narrowed = client.get("/portal/?share_type=conditional").text
    assert int(re.sub(r"\D", "", _count(narrowed))) < total
    assert "企业年报公示信息" not in narrowed.split('class="results"')[1]
    # the department facet names the department, not its code
    assert "市场监督管理局" in html


def test_search_matches_field_labels_and_all_terms(portal_hub, as_staff) -> None:
    client = as_staff("zgj_pub")
    by_label = client.get("/portal/?q=法定代表人").text  # a field label of SCJ-LIC only
    assert "营业执照信息" in by_label and "企业年报公示信息" not in by_label.split('class="results"')[1]
    none = client.get("/portal/?q=法定代表人+年报").text
    assert "没有符合条件的数据资源" in none


def test_htmx_gets_only_the_results(portal_hub) -> None:
    r = TestClient(portal_hub.client.app).get("/portal/?q=企业", headers={"HX-Request": "true"})
    assert "<html" not in r.text and 'id="result-count"' in r.text


def test_dataset_page_fields_masking_versions_and_diff(portal_hub, as_staff) -> None:
    doc = {**SCJ, "datasets": [dict(d) for d in SCJ["datasets"]]}
    doc["datasets"][0] = {**doc["datasets"][0], "summary": "新的摘要"}
    publishing.publish(portal_hub.engine, DirectoryFile.model_validate(doc), source_file="scj-v2.yaml")
    client = as_staff("scj_pub")
    html = client.get("/portal/datasets/SCJ-LIC").text
    assert "法定代表人" in html and "name" in html  # a sensitive field and its masking rule
    assert "v2" in html and "scj-v2.yaml" in html
    diff = client.get("/portal/datasets/SCJ-LIC?from=1&to=2").text
    assert "新的摘要" in diff.split('id="version-diff"')[1]


def test_open_dataset_sample_rows_leave_out_sensitive_fields(portal_hub) -> None:
    html = TestClient(portal_hub.client.app).get("/portal/datasets/SCJ-OPEN").text
    assert "甲公司" in html
    assert "13812345678" not in html and "contact_mobile</th>" not in html
    assert "/api/v1/datasets/SCJ-OPEN/download?format=parquet" in html


def test_open_data_downloads_as_parquet_without_the_sensitive_field(portal_hub) -> None:
    import io

    import pyarrow.parquet as pq

    r = TestClient(portal_hub.client.app).get("/api/v1/datasets/SCJ-OPEN/download?format=parquet")
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(r.content))
    assert table.column_names == ["uscc", "ent_name"]
    assert table.num_rows == 3 and b"13812345678" not in r.content


def test_use_counts_single_dataset_calls_and_sorts_by_them(portal_hub, as_staff) -> None:
    for _ in range(2):
        assert TestClient(portal_hub.client.app).get("/api/v1/datasets/SCJ-OPEN/download").status_code == 200
    html = as_staff("zgj_pub").get("/portal/?sort=use").text
    results = html.split('class="results"')[1]
    assert results.index("企业年报公示信息") < results.index("营业执照信息")  # the used one first
    assert "调用 2 次" in results
