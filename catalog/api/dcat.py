"""The public data directory as DCAT-AP 3.0 (RDF built with rdflib), for CKAN's ckanext-dcat
harvester and other catalogues (``GET /api/v1/catalog.ttl`` and ``/api/v1/catalog.jsonld``).

It describes **only what the directory already shows the public without signing in**: the
datasets that are open data (开放) and shared (not ``none``), as the portal's public pages and
the anonymous ``GET /api/v1/datasets`` list them, with their dataset-level metadata (code,
name, summary, department name, category, update cycle, grade, share and open conditions, the
time of the last publication). Nothing about fields, apps, grants, connections, schedules or
rows is ever written, and neither is a department's contact line (no public page shows it).
See docs/interop.md § DCAT-AP.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from rdflib import RDF, RDFS, XSD, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF

from catalog.db import tables
from catalog.directory import store
from catalog.directory.grades import GradePolicy
from catalog.directory.model import Grade, ShareType

EU = "http://publications.europa.eu/resource/authority/"
FREQUENCY = Namespace(EU + "frequency/")
ACCESS_RIGHT = Namespace(EU + "access-right/")
FILE_TYPE = Namespace(EU + "file-type/")
LANGUAGE = Namespace(EU + "language/")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
IANA = Namespace("https://www.iana.org/assignments/media-types/")
DELTA_SHARING_PROTOCOL = URIRef("https://github.com/delta-io/delta-sharing/blob/main/PROTOCOL.md")

#: 更新周期 -> the EU frequency vocabulary
FREQUENCIES = {
    "realtime": FREQUENCY.UPDATE_CONT,
    "hourly": FREQUENCY.HOURLY,
    "daily": FREQUENCY.DAILY,
    "weekly": FREQUENCY.WEEKLY,
    "monthly": FREQUENCY.MONTHLY,
    "quarterly": FREQUENCY.QUARTERLY,
    "yearly": FREQUENCY.ANNUAL,
}

ZH = "zh"

DEFAULT_TITLE = "政务数据共享交换平台 数据目录"
DEFAULT_DESCRIPTION = "本平台公开发布的开放数据目录：各部门的信息资源、更新周期、共享属性与调用方式。"
DEFAULT_PUBLISHER = "政务数据共享交换平台"


@dataclass(frozen=True)
class CatalogInfo:
    """What the settings say about the catalogue itself."""

    base_url: str
    title: str = DEFAULT_TITLE
    description: str = DEFAULT_DESCRIPTION
    publisher: str = DEFAULT_PUBLISHER
    license: str | None = None
    #: the base URL is the request's own (no setting): the IRIs depend on its Host header
    from_request: bool = False

    @classmethod
    def of(cls, settings: Any, request_base: str) -> CatalogInfo:
        """From the hub's settings (``dcat_*``); the base URL falls back to ``portal_public_url``
        and then to the request's own address (set one for stable IRIs)."""
        configured = getattr(settings, "dcat_base_url", None) or getattr(settings, "portal_public_url", None)
        base = configured or request_base
        return cls(
            base_url=str(base).rstrip("/"),
            from_request=not configured,
            title=getattr(settings, "dcat_title", None) or DEFAULT_TITLE,
            description=getattr(settings, "dcat_description", None) or DEFAULT_DESCRIPTION,
            publisher=getattr(settings, "dcat_publisher", None) or DEFAULT_PUBLISHER,
            license=getattr(settings, "dcat_license", None) or None,
        )


def is_public(d: store.PublishedDataset) -> bool:
    """Whether the public sees this dataset without signing in: open data that is shared (the
    portal's rule, ``catalog.portal.pages.dataset.visible_dataset``, which is also stricter than
    the anonymous directory list)."""
    return d.spec.open.open and d.spec.share.type is not ShareType.NONE


def access_right(d: store.PublishedDataset) -> URIRef:
    """dct:accessRights from the grade (核心 NON_PUBLIC, 重要 RESTRICTED) and the share type
    (有条件共享 RESTRICTED); general unconditional data PUBLIC."""
    if d.spec.grade is Grade.CORE:
        return ACCESS_RIGHT.NON_PUBLIC
    if d.spec.grade is Grade.IMPORTANT or d.spec.share.type is ShareType.CONDITIONAL:
        return ACCESS_RIGHT.RESTRICTED
    return ACCESS_RIGHT.PUBLIC


@dataclass(frozen=True)
class Export:
    """The catalogue graph and what the cache headers need."""

    graph: Graph
    modified: dt.datetime | None
    datasets: int


def _times(engine: sa.Engine) -> tuple[dict[str, dt.datetime], dict[str, dt.datetime]]:
    """Per dataset: when its first version was published, and when a sync run last published it."""
    v, r = tables.dataset_versions, tables.sync_runs
    with engine.connect() as conn:
        first = {
            row.code: _utc(row.at)
            for row in conn.execute(
                sa.select(v.c.code, sa.func.min(v.c.published_at).label("at")).group_by(v.c.code)
            )
        }
        last = {
            row.dataset_code: _utc(row.at)
            for row in conn.execute(
                sa.select(r.c.dataset_code, sa.func.max(r.c.finished_at).label("at"))
                .where(r.c.status == "success", r.c.finished_at.is_not(None))
                .group_by(r.c.dataset_code)
            )
        }
    return first, last


def _utc(t: dt.datetime) -> dt.datetime:
    t = t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).replace(microsecond=0)


def _when(t: dt.datetime) -> Literal:
    return Literal(t.isoformat().replace("+00:00", "Z"), datatype=XSD.dateTime)


def build(engine: sa.Engine, info: CatalogInfo, policy: GradePolicy) -> Export:
    """The DCAT-AP 3 graph of the public directory."""
    g = Graph()
    for prefix, ns in (
        ("dcat", DCAT),
        ("dct", DCTERMS),
        ("foaf", FOAF),
        ("vcard", VCARD),
        ("frequency", FREQUENCY),
        ("access-right", ACCESS_RIGHT),
        ("file-type", FILE_TYPE),
        ("language", LANGUAGE),
    ):
        g.bind(prefix, ns)
    base = info.base_url
    ids = Namespace(base + "/id/")
    catalog = ids.catalog
    service = ids["service/access-api"]
    hub_agent = ids["agent/hub"]
    zh = LANGUAGE.ZHO
    licence = URIRef(info.license) if info.license else None

    g.add((catalog, RDF.type, DCAT.Catalog))
    g.add((catalog, DCTERMS.title, Literal(info.title, lang=ZH)))
    g.add((catalog, DCTERMS.description, Literal(info.description, lang=ZH)))
    g.add((catalog, DCTERMS.publisher, hub_agent))
    g.add((catalog, DCTERMS.language, zh))
    g.add((zh, RDF.type, DCTERMS.LinguisticSystem))
    homepage = URIRef(base + "/portal/")
    g.add((catalog, FOAF.homepage, homepage))
    g.add((homepage, RDF.type, FOAF.Document))
    g.add((catalog, DCAT.service, service))
    if licence is not None:
        g.add((catalog, DCTERMS.license, licence))
        g.add((licence, RDF.type, DCTERMS.LicenseDocument))
    g.add((hub_agent, RDF.type, FOAF.Agent))
    g.add((hub_agent, FOAF.name, Literal(info.publisher, lang=ZH)))

    g.add((service, RDF.type, DCAT.DataService))
    g.add((service, DCTERMS.title, Literal("数据共享接口（访问 API）", lang=ZH)))
    g.add(
        (
            service,
            DCTERMS.description,
            Literal("应用以 OAuth2 客户端凭证获取令牌后按授权调用；开放数据可免登录下载。", lang=ZH),
        )
    )
    endpoint, openapi = URIRef(base + "/api/v1"), URIRef(base + "/openapi.json")
    g.add((service, DCAT.endpointURL, endpoint))
    g.add((service, DCAT.endpointDescription, openapi))
    g.add((endpoint, RDF.type, RDFS.Resource))
    g.add((openapi, RDF.type, RDFS.Resource))
    g.add((service, DCTERMS.publisher, hub_agent))
    if licence is not None:
        g.add((service, DCTERMS.license, licence))

    first, last = _times(engine)
    published = [d for d in store.list_datasets(engine) if is_public(d)]
    issued_all: list[dt.datetime] = []
    modified_all: list[dt.datetime] = []
    departments: set[str] = set()
    for d in published:
        s = d.spec
        code = quote(s.code, safe="")
        ds = ids[f"dataset/{code}"]
        g.add((catalog, DCAT.dataset, ds))
        g.add((service, DCAT.servesDataset, ds))
        g.add((ds, RDF.type, DCAT.Dataset))
        g.add((ds, DCTERMS.identifier, Literal(s.code)))
        g.add((ds, DCTERMS.title, Literal(s.name, lang=ZH)))
        g.add((ds, DCTERMS.description, Literal(s.summary or s.name, lang=ZH)))
        g.add((ds, DCTERMS.language, zh))
        dept = ids[f"department/{quote(d.department.code, safe='')}"]
        g.add((ds, DCTERMS.publisher, dept))
        if d.department.code not in departments:
            departments.add(d.department.code)
            g.add((dept, RDF.type, FOAF.Agent))
            g.add((dept, FOAF.name, Literal(d.department.name, lang=ZH)))
        for word in [w.strip() for w in s.category.split("/") if w.strip()]:
            g.add((ds, DCAT.keyword, Literal(word, lang=ZH)))
        freq = FREQUENCIES[s.update_cycle]
        g.add((ds, DCTERMS.accrualPeriodicity, freq))
        g.add((freq, RDF.type, DCTERMS.Frequency))
        right = access_right(d)
        g.add((ds, DCTERMS.accessRights, right))
        g.add((right, RDF.type, DCTERMS.RightsStatement))
        landing = URIRef(f"{base}/portal/datasets/{code}")
        g.add((ds, DCAT.landingPage, landing))
        g.add((landing, RDF.type, FOAF.Document))
        contact = URIRef(f"{ds}/contact")
        g.add((ds, DCAT.contactPoint, contact))
        g.add((contact, RDF.type, VCARD.Organization))
        g.add((contact, RDF.type, VCARD.Kind))
        g.add((contact, VCARD.fn, Literal(d.department.name, lang=ZH)))
        g.add((contact, VCARD.hasURL, landing))
        issued = first.get(s.code)
        if issued is not None:
            g.add((ds, DCTERMS.issued, _when(issued)))
            issued_all.append(issued)
        modified = last.get(s.code) or _utc(d.published_at)
        modified = max(modified, _utc(d.published_at))
        g.add((ds, DCTERMS.modified, _when(modified)))
        modified_all.append(modified)
        _distributions(g, ds, code, d, base, service, licence, policy)

    if issued_all:
        g.add((catalog, DCTERMS.issued, _when(min(issued_all))))
    catalog_modified = max(modified_all) if modified_all else None
    if catalog_modified is not None:
        g.add((catalog, DCTERMS.modified, _when(catalog_modified)))
    return Export(graph=g, modified=catalog_modified, datasets=len(published))


def _distributions(
    g: Graph,
    ds: URIRef,
    code: str,
    d: store.PublishedDataset,
    base: str,
    service: URIRef,
    licence: URIRef | None,
    policy: GradePolicy,
) -> None:
    """The ways to get the dataset: the access API (always), the open-data downloads and Delta
    Sharing (when the grade policy allows bulk access; Delta Sharing also needs a file share mode)."""
    s = d.spec

    def dist(
        name: str, title: str, access: str, file_type: str, media: str, download: bool = False
    ) -> URIRef:
        node = URIRef(f"{ds}/distribution/{name}")
        g.add((ds, DCAT.distribution, node))
        g.add((node, RDF.type, DCAT.Distribution))
        g.add((node, DCTERMS.title, Literal(title, lang=ZH)))
        url = URIRef(access)
        g.add((node, DCAT.accessURL, url))
        g.add((url, RDF.type, RDFS.Resource))
        if download:
            g.add((node, DCAT.downloadURL, url))
        fmt = FILE_TYPE[file_type]
        g.add((node, DCTERMS.format, fmt))
        g.add((fmt, RDF.type, DCTERMS.MediaTypeOrExtent))
        mt = IANA[media]
        g.add((node, DCAT.mediaType, mt))
        g.add((mt, RDF.type, DCTERMS.MediaType))
        if licence is not None:
            g.add((node, DCTERMS.license, licence))
        return node

    api = dist(
        "api", "共享接口（按授权调用）", f"{base}/api/v1/datasets/{code}/records", "JSON", "application/json"
    )
    g.add((api, DCAT.accessService, service))
    if not policy[s.grade].bulk_allowed:
        return
    dl = f"{base}/api/v1/datasets/{code}/download?format="
    dist("csv", "开放数据下载（CSV）", dl + "csv", "CSV", "text/csv", download=True)
    dist(
        "parquet",
        "开放数据下载（Parquet）",
        dl + "parquet",
        "PARQUET",
        "application/vnd.apache.parquet",
        download=True,
    )
    if s.share.mode in ("file", "both"):
        delta = dist(
            "delta-sharing",
            "批量共享（Delta Sharing，按授权）",
            f"{base}/api/v1/delta-sharing",
            "PARQUET",
            "application/vnd.apache.parquet",
        )
        g.add((delta, DCTERMS.conformsTo, DELTA_SHARING_PROTOCOL))
        g.add((DELTA_SHARING_PROTOCOL, RDF.type, DCTERMS.Standard))


def serialise(graph: Graph, kind: str) -> bytes:
    """The graph as Turtle (``ttl``) or JSON-LD (``jsonld``), UTF-8."""
    if kind == "ttl":
        return graph.serialize(format="turtle", encoding="utf-8")
    context = {
        "dcat": str(DCAT),
        "dct": str(DCTERMS),
        "foaf": str(FOAF),
        "vcard": str(VCARD),
        "rdfs": str(RDFS),
        "xsd": str(XSD),
    }
    return graph.serialize(format="json-ld", encoding="utf-8", context=context, auto_compact=True)
