"""Which certificates an app may see, and through which projection.

A certificate is visible to an app that holds an active grant on the dataset its type is
issued from; what it sees of one is that grant's disclosure projection
(:meth:`catalog.access.disclosure.Projection.certificate`): attributes and face entries follow the
dataset fields they come from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from catalog.access import applications, disclosure, gate
from catalog.api.context import Hub, limit_grant
from catalog.certificates import issuing
from catalog.certificates.issuing import OID_PREFIX
from catalog.db import tables
from catalog.directory import store
from catalog.directory.model import ShareType
from catalog.errors import HubError

_PREFIX_PARTS = len(OID_PREFIX.split("."))


@dataclass(frozen=True)
class TypeAccess:
    type_code: str
    dataset: store.PublishedDataset
    projection: disclosure.Projection
    grant: applications.Grant


def type_of(identifier: str) -> str | None:
    """The certificate type code inside a GB/T 36904 identifier (None when malformed)."""
    parts = identifier.split(".")
    if not identifier.startswith(OID_PREFIX + ".") or len(parts) != _PREFIX_PARTS + 5:
        return None
    return parts[_PREFIX_PARTS]


def type_access(hub: Hub, principal: gate.Principal) -> dict[str, TypeAccess]:
    """Certificate types the app may see, with the grant that lets it."""
    assert principal.app_id is not None
    grants = {
        g.dataset_code: g
        for g in applications.list_grants(hub.engine, app_id=principal.app_id, active_only=True)
    }
    if not grants:
        return {}
    with hub.engine.connect() as conn:
        types = conn.execute(
            sa.select(tables.certificate_types.c.code, tables.certificate_types.c.dataset_code)
        ).all()
    out: dict[str, TypeAccess] = {}
    for code, dataset_code in types:
        grant = grants.get(dataset_code)
        if grant is None:
            continue
        try:
            d = hub.dataset(dataset_code)
        except HubError:
            continue
        if d.spec.share.type is ShareType.NONE or d.spec.certificate is None:
            continue
        projection = disclosure.for_grant(d.spec, grant.fields, grant.clear_fields, grant_id=grant.id)
        out[code] = TypeAccess(code, d, projection, grant)
    return out


def visible_certificates(
    hub: Hub,
    principal: gate.Principal,
    subject_id: str,
    type_code: str | None = None,
    *,
    released: disclosure.Released,
    consulted: dict[str, int],
) -> list[dict[str, Any]]:
    """A holder's certificates of the types the app may see, each through its grant's projection.

    Counts one call against the app's budget on each dataset consulted, and adds the number of
    certificates each dataset gave to ``consulted`` (for the audit record)."""
    assert principal.app_id is not None
    types = type_access(hub, principal)
    if type_code is not None:
        types = {k: v for k, v in types.items() if k == type_code}
    out: list[dict[str, Any]] = []
    for ta in types.values():
        gate.check_purpose(
            principal,
            ta.dataset.spec,
            hub.purpose,
            always=hub.grade_policy[ta.dataset.spec.grade].purpose_always,
        )
        limit_grant(hub, principal.app_id, ta.dataset.spec, ta.grant.rate_limit)
        rows = issuing.certificates_of(hub.engine, subject_id, ta.type_code)
        consulted[ta.dataset.spec.code] = consulted.get(ta.dataset.spec.code, 0) + len(rows)
        out += [ta.projection.certificate(c, released) for c in rows]
    return out
