"""The disclosure property: whatever an app is granted, nothing else leaves the hub.

Hypothesis draws grants — a dataset, which of its fields, which sensitive ones in clear — and
for each one a fresh app holding exactly that grant calls every response shape the API has
for data: records by key and by subject (following every cursor), the subject view, the
certificate list and view, a certified copy and its QR payload when the grant allows one,
verification of what it was handed, a refused filter, an empty lookup, and (anonymously) the
open-data download. Every response is serialised whole — body, headers, cursors and QR claims
decoded — and searched:

* no value of a field the grant does not cover appears, as a value or inside a longer text;
* no clear form of a field granted masked appears;
* the audit record of each call lists exactly what the projection released, as this test
  computes it from the grant (not from the hub's code).

The values searched for come from the records and certificates of the subject, with the
subject's own identifier excepted where the app sent it (it knows what it asked).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.access import app_registry, applications, staff
from catalog.certificates import issuing
from catalog.db import tables
from catalog.directory import store
from catalog.directory.model import DatasetSpec, Sensitivity
from catalog.serving import tables as serving
from tests.catalog.api_hub import CITIZENS, USCC, ApiHub, build_hub, publish_id_cards

APPLY = {"purpose": "属性测试", "legal_basis": "测试依据"}
#: dataset -> the subject whose data the calls ask for
SUBJECTS = {"GAJ-ID": CITIZENS[0], "SCJ-LIC": USCC[0], "RSJ-PEN": CITIZENS[0], "SCJ-OPEN": USCC[0]}
PURPOSE = {"X-End-User-Id": "officer-4711", "X-Case-Number": "PROP-2026-000001"}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> ApiHub:
    h = build_hub(
        tmp_path_factory.mktemp("prop"),
        default_rate_limit=1_000_000,
        public_verify_rate_limit=1_000_000,
        open_download_rate_limit=1_000_000,
    )
    publish_id_cards(h)
    return h


@pytest.fixture(scope="module")
def approver(hub: ApiHub) -> staff.StaffUser:
    return staff.create_staff(hub.engine, "prop_admin", None, ["admin"], "property-admin-password")


@st.composite
def grants(draw: st.DrawFn) -> tuple[str, list[str], list[str]]:
    code = draw(st.sampled_from(sorted(SUBJECTS)))
    spec = _SPECS[code]
    names = [f.name for f in spec.fields]
    sensitive = [f.name for f in spec.fields if f.sensitivity is Sensitivity.SENSITIVE]
    if draw(st.integers(0, 4)) == 0:  # now and then everything in clear: copies and signed views
        return code, names, sensitive
    fields = draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
    clear = draw(st.lists(st.sampled_from([n for n in sensitive if n in fields] or [""]), unique=True))
    return code, fields, [c for c in clear if c]


_SPECS: dict[str, DatasetSpec] = {}


def _leaves(doc: Any) -> list[Any]:
    if isinstance(doc, dict):
        return [x for k, v in doc.items() for x in (_leaves(k) + _leaves(v))]
    if isinstance(doc, list):
        return [x for v in doc for x in _leaves(v)]
    return [doc]


def _decoded(body: Any) -> list[Any]:
    """Leaves of a body, plus those of any cursor and QR payload in it, decoded."""
    out = _leaves(body)
    for leaf in list(out):
        if not isinstance(leaf, str):
            continue
        if leaf.startswith("SH1."):
            claims = leaf.split(".")[1]
            out += _leaves(json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4))))
    return out


def _text(v: Any) -> str:
    return v.isoformat() if hasattr(v, "isoformat") else str(v)


class Exposure:
    """What a caller's responses must not hold, and a check over one response."""

    def __init__(self, forbidden: dict[str, set[str]]) -> None:
        self.forbidden = forbidden  # field -> values that must not appear

    def check(self, r: Any, *, echoed: set[str]) -> None:
        try:
            body = r.json()
        except ValueError:
            body = r.text
        leaves = [*_decoded(body), *r.headers.values()]
        strings = [x for x in leaves if isinstance(x, str) and x not in echoed]
        scalars = {_text(x) for x in leaves if x is not None and not isinstance(x, bool)} - echoed
        for field, values in self.forbidden.items():
            for v in values:
                assert v not in scalars, (str(r.request.url), field, v)
                if len(v) >= 4:
                    hits = [s for s in strings if v in s]
                    assert not hits, (str(r.request.url), field, v, hits[:2])


def _forbidden(hub: ApiHub, spec: DatasetSpec, subject: str, fields: list[str], clear: list[str]) -> Exposure:
    """Every value of the subject's records and certificates in this dataset that the grant
    does not release in clear (ungranted fields, and masked ones in their clear form)."""
    rows = serving.lookup_subject(hub.engine, spec, subject, limit=1000)
    masked = {f.name for f in spec.fields if f.sensitivity is Sensitivity.SENSITIVE} - set(clear)
    hidden = {f.name for f in spec.fields if f.name not in fields or f.name in masked}
    out: dict[str, set[str]] = {}
    for row in rows:
        for name in hidden:
            v = row.get(name)
            if v is not None and len(_text(v)) >= 2:
                out.setdefault(name, set()).add(_text(v))
    # values released by another, granted field are not secrets (e.g. the subject field and a key)
    released = {_text(row.get(n)) for row in rows for n in fields if n not in masked}
    return Exposure({k: v - released for k, v in out.items()})


def _audit_fields(hub: ApiHub) -> set[str]:
    with hub.engine.connect() as conn:
        row = conn.execute(sa.select(tables.audit).order_by(tables.audit.c.seq.desc()).limit(1)).one()
    return set(row.fields or [])


def _name(spec: DatasetSpec, field: str, masked: set[str]) -> str:
    return f"{spec.code}.{field}:masked" if field in masked else f"{spec.code}.{field}"


def _certificate_release(spec: DatasetSpec, fields: list[str], masked: set[str]) -> set[str]:
    """What a certificate view of this grant releases, from the mapping alone."""
    m = spec.certificate
    assert m is not None and spec.subject is not None
    granted = set(fields)
    face = set(m.face or [f.name for f in spec.fields])
    sources = {m.number, spec.subject.field, m.holder_name, m.valid_from, m.valid_until} - {None}
    out = {f for f in (face | sources) if f in granted}
    status_from = {f for f in (m.status, m.valid_until) if f is not None}
    if status_from <= granted and not (status_from & masked):
        out |= status_from
    return {_name(spec, f, masked) for f in out if f is not None}


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(grant=grants())
def test_nothing_leaves_but_what_the_grant_releases(
    hub: ApiHub, approver: staff.StaffUser, grant: tuple[str, list[str], list[str]]
) -> None:
    code, fields, clear = grant
    d = store.get_dataset(hub.engine, code)
    spec = d.spec
    _SPECS.setdefault(code, spec)
    app, secret = app_registry.register_app(hub.engine, f"prop-{len(hub.apps)}-{code}", "ZGJ")
    hub.apps[app.name] = (app.app_id, secret)
    a = applications.submit(
        hub.engine, app.app_id, code, fields=fields, clear_fields=clear, **APPLY,
        calendar=hub.client.app.state.hub.calendar, deadline_days=10, default_rate_limit=1_000_000,
    )  # fmt: skip
    if a.status == "pending":
        applications.decide(hub.engine, a.id, approver, approve=True, default_rate_limit=1_000_000)
    h = {**hub.as_app(app.name, purpose=False), **PURPOSE}
    subject = SUBJECTS[code]
    masked = {f.name for f in spec.fields if f.sensitivity is Sensitivity.SENSITIVE} - set(clear)
    expose = _forbidden(hub, spec, subject, fields, clear)
    echoed = {subject}  # the app sent the subject; an echo of it tells the app nothing new
    granted_names = {_name(spec, f, masked) for f in fields}
    get = hub.client.get

    # records by subject, every page
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"subject": subject, "limit": 1}
        if cursor:
            params["cursor"] = cursor
        r = get(f"/api/v1/datasets/{code}/records", params=params, headers=h)
        assert r.status_code == 200, r.text
        expose.check(r, echoed=echoed)
        page = r.json()
        released = _audit_fields(hub)
        assert released == (granted_names if page["items"] else set())
        assert all(set(item) == set(fields) for item in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    # records by key (the key values are what the app asked with)
    row = serving.lookup_subject(hub.engine, spec, subject, limit=1)[0]
    key = {k: _text(row[k]) for k in spec.primary_key}
    r = get(f"/api/v1/datasets/{code}/records", params=key, headers=h)
    expose.check(r, echoed=echoed | set(key.values()))
    subject_field = spec.subject.field if spec.subject else None
    if all(k == subject_field or (k in fields and k not in masked) for k in spec.primary_key):
        assert r.status_code == 200
        assert _audit_fields(hub) == granted_names
    else:  # a withheld or masked key field cannot be probed by key lookups
        assert r.status_code == 400 and r.json()["error"]["code"] == "filter_not_granted"
    # an empty lookup and a refused filter release nothing
    r = get(f"/api/v1/datasets/{code}/records", params={"subject": "000000000000000000"}, headers=h)
    assert r.json()["items"] == [] and _audit_fields(hub) == set()
    r = get(f"/api/v1/datasets/{code}/records", params={"subject": subject, "nope": "1"}, headers=h)
    assert r.status_code == 400
    expose.check(r, echoed=echoed)
    # the subject view
    r = get(f"/api/v1/subjects/{subject}", headers=h)
    assert r.status_code == 200
    expose.check(r, echoed=echoed)
    view_release = _audit_fields(hub)
    cert_names: set[str] = set()
    if spec.certificate is not None:
        cert_names = _certificate_release(spec, fields, masked)
    assert view_release == granted_names | cert_names
    if spec.certificate is None:
        return
    # certificates: the list, one view, a copy when the grant shows it whole, verification
    r = get(f"/api/v1/subjects/{subject}/certificates", headers=h)
    assert r.status_code == 200
    expose.check(r, echoed=echoed)
    assert _audit_fields(hub) == cert_names
    ident = issuing.certificates_of(hub.engine, subject, spec.certificate.type_code)[0]["identifier"]
    r = get(f"/api/v1/certificates/{ident}", headers=h)
    assert r.status_code == 200
    expose.check(r, echoed=echoed)
    assert _audit_fields(hub) == cert_names
    view = r.json()
    r = hub.client.post(f"/api/v1/certificates/{ident}/copies", json={"reason": "属性测试"}, headers=h)
    if not view["complete"]:
        assert r.status_code == 403 and view["signed"] is None
        expose.check(r, echoed=echoed)
        return
    assert r.status_code == 201, r.text
    expose.check(r, echoed=echoed)
    copy = r.json()
    for body in ({"document": view["signed"]}, {"document": copy["document"]}, {"qr": copy["qr"]}):
        v = hub.client.post("/api/v1/verify", json=body)
        assert v.status_code == 200 and v.json()["checks"]["signature"] is True
        expose.check(v, echoed=echoed)


def test_open_download_releases_only_the_public_projection(hub: ApiHub) -> None:
    spec = store.get_dataset(hub.engine, "SCJ-OPEN").spec
    secret_values = {
        _text(r["contact_mobile"])
        for u in USCC
        for r in serving.lookup_subject(hub.engine, spec, u, limit=10)
    }
    for fmt in ("csv", "jsonl"):
        r = hub.client.get("/api/v1/datasets/SCJ-OPEN/download", params={"format": fmt})
        assert r.status_code == 200
        assert not any(v in r.text for v in secret_values)
        with hub.engine.connect() as conn:
            rec = conn.execute(sa.select(tables.audit).order_by(tables.audit.c.seq.desc()).limit(1)).one()
        assert rec.fields == ["SCJ-OPEN.uscc", "SCJ-OPEN.ent_name"]


def test_the_property_test_would_catch_a_leak(
    hub: ApiHub, approver: staff.StaffUser, monkeypatch: Any
) -> None:
    """Guard against a property that cannot fail: break the projection on purpose (release every
    field of a certificate's number in clear) and see the check fire."""
    from catalog.access import disclosure

    real = disclosure.Projection.certificate

    def leaky(self: disclosure.Projection, row: Any, released: Any = None) -> dict[str, Any]:
        out = real(self, row, released)
        out["number"] = row.get("number")
        return out

    monkeypatch.setattr(disclosure.Projection, "certificate", leaky)
    spec = store.get_dataset(hub.engine, "GAJ-ID").spec
    _SPECS.setdefault("GAJ-ID", spec)
    app, secret = app_registry.register_app(hub.engine, "prop-leak-check", "ZGJ")
    hub.apps[app.name] = (app.app_id, secret)
    a = applications.submit(
        hub.engine, app.app_id, "GAJ-ID", fields=["gender"], **APPLY,
        calendar=hub.client.app.state.hub.calendar, deadline_days=10, default_rate_limit=1_000_000,
    )  # fmt: skip
    applications.decide(hub.engine, a.id, approver, approve=True, default_rate_limit=1_000_000)
    expose = _forbidden(hub, spec, CITIZENS[2], ["gender"], [])
    ident = issuing.certificates_of(hub.engine, CITIZENS[2], "11100000MB0143028Y001")[0]["identifier"]
    r = hub.client.get(
        f"/api/v1/certificates/{ident}", headers={**hub.as_app(app.name, purpose=False), **PURPOSE}
    )
    with pytest.raises(AssertionError):
        expose.check(r, echoed=set())


@pytest.fixture(autouse=True, scope="module")
def _specs(hub: ApiHub) -> None:
    for code in SUBJECTS:
        _SPECS[code] = store.get_dataset(hub.engine, code).spec
