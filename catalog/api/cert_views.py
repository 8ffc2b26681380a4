"""What an app sees of a certificate: the face shaped by its grant on the certificate's dataset.

A certificate is visible to an app that holds an active grant on the dataset its type is
issued from. Face fields the grant does not cover are dropped and masked ones are masked, as
for records. Only a complete view (nothing dropped or masked) carries the signed document,
because a signature over a changed face would not verify.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from catalog import access, applications, certificates, schema, signing, store
from catalog.api.context import Hub, limit
from catalog.certificates import OID_PREFIX, jsonable
from catalog.errors import ApiError
from catalog.masking import mask
from catalog.model import ShareType, SubjectKind

_PREFIX_PARTS = len(OID_PREFIX.split("."))


@dataclass(frozen=True)
class TypeAccess:
    type_code: str
    dataset: store.PublishedDataset
    decision: access.Decision
    grant: applications.Grant


def type_of(identifier: str) -> str | None:
    """The certificate type code inside a GB/T 36904 identifier (None when malformed)."""
    parts = identifier.split(".")
    if not identifier.startswith(OID_PREFIX + ".") or len(parts) != _PREFIX_PARTS + 5:
        return None
    return parts[_PREFIX_PARTS]


def type_access(hub: Hub, principal: access.Principal) -> dict[str, TypeAccess]:
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
            sa.select(schema.certificate_types.c.code, schema.certificate_types.c.dataset_code)
        ).all()
    out: dict[str, TypeAccess] = {}
    for code, dataset_code in types:
        grant = grants.get(dataset_code)
        if grant is None:
            continue
        try:
            d = hub.dataset(dataset_code)
        except ApiError:
            continue
        if d.spec.share.type is ShareType.NONE:
            continue
        decision = access.grant_decision(d.spec, grant.fields, grant.clear_fields, grant_id=grant.id)
        out[code] = TypeAccess(code, d, decision, grant)
    return out


def view(row: dict[str, Any], ta: TypeAccess) -> dict[str, Any]:
    """The certificate as this app may see it."""
    spec = ta.dataset.spec
    decision = ta.decision
    shown = set(decision.fields)
    face_in = row.get("face") or {}
    face = {k: mask(decision.masked.get(k), v) for k, v in face_in.items() if k in shown}
    complete = all(k in shown and k not in decision.masked for k in face_in)
    holder_id = str(row["holder_id"])
    subject_field = spec.subject.field if spec.subject else None
    if row.get("holder_kind") == SubjectKind.PERSON.value and (
        subject_field not in shown or subject_field in decision.masked
    ):
        holder_id = mask("citizen_id", holder_id)
        complete = False
    holder_name = str(row["holder_name"])
    name_field = spec.certificate.holder_name if spec.certificate else None
    if name_field and (name_field not in shown or name_field in decision.masked):
        holder_name = mask(decision.masked.get(name_field) or "name", holder_name)
        complete = False
    out = {
        k: jsonable(row.get(k))
        for k in (
            "identifier",
            "type_code",
            "type_name",
            "holder_kind",
            "number",
            "issuer_code",
            "issuer_name",
            "valid_from",
            "valid_until",
            "status",
            "version",
            "issued_at",
            "updated_at",
        )
    }
    out.update(holder_id=holder_id, holder_name=holder_name, face=face, complete=complete)
    out["signed"] = (
        signing.signed_certificate(row, row["signature"], row["signing_kid"])
        if complete and row.get("signature")
        else None
    )
    return out


def visible_certificates(
    hub: Hub, principal: access.Principal, subject_id: str, type_code: str | None = None
) -> list[dict[str, Any]]:
    """A holder's certificates of the types the app may see (rate limit counted per grant)."""
    types = type_access(hub, principal)
    if type_code is not None:
        types = {k: v for k, v in types.items() if k == type_code}
    out: list[dict[str, Any]] = []
    for ta in types.values():
        access.check_purpose(principal, ta.dataset.spec)
        limit(hub, f"grant:{ta.grant.id}", ta.grant.rate_limit)
        out += [view(c, ta) for c in certificates.certificates_of(hub.engine, subject_id, ta.type_code)]
    return out
