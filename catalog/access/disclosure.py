"""The one disclosure projection: (record, grant) -> the granted fields, clear or masked, nothing else.

Every value derived from a dataset that leaves the hub is produced here: records, the subject
view, certificate lists and views, the signed document and the QR payload of a copy, open-data
downloads. A route never copies a record value into a response any other way, and the audit
record's "fields returned" is what :class:`Released` collected while the projection ran, so it
says exactly what left.

* A :class:`Projection` is what one party may see of one dataset: the fields (in the
  directory's order) and which of them are masked, with which rule. It is made from a grant
  (:func:`for_grant`) or, for open data, from the directory alone (:func:`for_public`).
* :meth:`Projection.record` shapes a record: fields outside the projection are dropped,
  masked fields are masked by their field's rule (:mod:`catalog.masking`).
* :meth:`Projection.certificate` shapes a certificate. Its attributes come from dataset fields
  and follow those fields: ``number`` from the mapping's number field, ``holder_id`` from the
  subject field, ``holder_name``, ``valid_from`` and ``valid_until`` from theirs — dropped
  (``null``) when the field is not granted, masked by the field's own rule when it is granted
  masked. ``status`` (valid / revoked / expired) is derived from the status and validity
  fields, so it is given only when all of them are granted in clear. Face entries are fields.
  Issuer, type, identifier, version and the issue time are directory and hub facts, not
  record values (the time of the last update is not given: it would move with changes of
  withheld fields). A view is ``complete`` — and carries the signed document — only when
  every signed attribute, every face entry and the status are released in clear.

Audit names: ``<dataset>.<field>`` for a value released in clear, ``<dataset>.<field>:masked``
for a masked one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from catalog import masking
from catalog.directory.model import DatasetSpec, Sensitivity
from catalog.masking import mask
from catalog.values import json_value

#: certificate members that are directory or hub facts, released with any view of the type
CERTIFICATE_FACTS = (
    "identifier",
    "type_code",
    "type_name",
    "holder_kind",
    "issuer_code",
    "issuer_name",
    "version",
    "issued_at",
)
#: signed certificate attributes that come from a record field (see :func:`attribute_sources`)
CERTIFICATE_ATTRIBUTES = ("number", "holder_id", "holder_name", "valid_from", "valid_until")


class Released:
    """The audit names of what one response released, in the order first released."""

    __slots__ = ("_names",)

    def __init__(self) -> None:
        self._names: dict[str, None] = {}

    def add(self, name: str) -> None:
        self._names[name] = None

    def names(self) -> list[str]:
        return list(self._names)

    def __bool__(self) -> bool:
        return bool(self._names)


def attribute_sources(spec: DatasetSpec) -> dict[str, str | None]:
    """Certificate attribute -> the dataset field it is taken from (None: not mapped, always null)."""
    m = spec.certificate
    if m is None or spec.subject is None:
        raise ValueError(f"dataset {spec.code} issues no certificates")
    return {
        "number": m.number,
        "holder_id": spec.subject.field,
        "holder_name": m.holder_name,
        "valid_from": m.valid_from,
        "valid_until": m.valid_until,
    }


def status_sources(spec: DatasetSpec) -> list[str]:
    """The fields a certificate's status is derived from."""
    m = spec.certificate
    assert m is not None
    return [f for f in (m.status, m.valid_until) if f is not None]


@dataclass(frozen=True)
class Projection:
    """What one party may see of one dataset: which fields, which of them masked and how."""

    spec: DatasetSpec
    fields: tuple[str, ...]
    masked: Mapping[str, str] = field(default_factory=dict)  # field -> mask rule
    grant_id: int | None = None
    rate_limit: int | None = None

    @property
    def code(self) -> str:
        return self.spec.code

    def audit_name(self, name: str) -> str:
        """How the audit names field ``name`` when this projection releases it."""
        return f"{self.spec.code}.{name}:masked" if name in self.masked else f"{self.spec.code}.{name}"

    def audit_names(self) -> list[str]:
        """The audit names of every field the projection shows (what a whole-table file or
        delivery releases), in order."""
        released = Released()
        for name in self.fields:
            released.add(self.audit_name(name))
        return released.names()

    def value(self, name: str, raw: Any) -> Any:
        """One granted field's value as it may leave (JSON-ready, masked when the grant says so).

        A masked value that is not text (a number, a flag) leaves as ``****``: a mask keeps part
        of a text, and nothing of anything else."""
        value = json_value(raw)
        rule = self.masked.get(name)
        if rule is None or value is None:
            return value
        return mask(rule, value) if isinstance(value, str) else mask("full", "*")

    def record(self, row: Mapping[Any, Any], released: Released | None = None) -> dict[str, Any]:
        """The record as this party may see it: granted fields only, masked ones masked."""
        out = {name: self.value(name, row.get(name)) for name in self.fields}
        if released is not None:
            for name in self.fields:
                released.add(self.audit_name(name))
        return out

    def certificate(self, row: Mapping[Any, Any], released: Released | None = None) -> dict[str, Any]:
        """A certificate as this party may see it (see the module docstring); ``complete`` and
        ``signed`` say whether the signed document could be handed out."""
        from catalog.certificates.signing import signed_certificate

        shown = set(self.fields)
        out: dict[str, Any] = {k: json_value(row.get(k)) for k in CERTIFICATE_FACTS}
        complete = True
        used: list[str] = []
        for attr, source in attribute_sources(self.spec).items():
            if source is None:
                out[attr] = None  # not mapped: the certificate has no such attribute
                continue
            if source not in shown:
                out[attr] = None
                complete = False
                continue
            out[attr] = self.value(source, row.get(attr))
            complete = complete and source not in self.masked
            used.append(source)
        derived_from = status_sources(self.spec)
        if all(f in shown and f not in self.masked for f in derived_from):
            out["status"] = row.get("status")
            used += derived_from
        else:
            out["status"] = None
            complete = False  # a copy (or its refusal) would tell the status
        face_in: Mapping[str, Any] = row.get("face") or {}
        face = {}
        for name, raw in face_in.items():
            if name in shown:
                face[name] = self.value(name, raw)
                used.append(name)
            if name not in shown or name in self.masked:
                complete = False
        out["face"] = face
        out["complete"] = complete
        out["signed"] = (
            signed_certificate(row, row["signature"], row["signing_kid"])
            if complete and row.get("signature") and row.get("signing_kid")
            else None
        )
        if released is not None:
            for name in (f.name for f in self.spec.fields):
                if name in used:
                    released.add(self.audit_name(name))
        return out


def for_grant(
    spec: DatasetSpec,
    fields: list[str],
    clear_fields: list[str],
    *,
    grant_id: int | None = None,
    rate_limit: int | None = None,
) -> Projection:
    """The projection a grant gives: granted fields in the directory's order, sensitive ones
    masked by their rule (``full`` when the field has none) unless granted in clear."""
    granted = set(fields)
    clear = set(clear_fields)
    names = tuple(f.name for f in spec.fields if f.name in granted)
    masked = {
        f.name: (f.mask if f.mask is not None else masking.FULL)
        for f in spec.fields
        if f.name in granted and f.sensitivity is Sensitivity.SENSITIVE and f.name not in clear
    }
    return Projection(spec=spec, fields=names, masked=masked, grant_id=grant_id, rate_limit=rate_limit)


def for_public(spec: DatasetSpec) -> Projection:
    """What the public sees of open data: every field that is not sensitive, in clear."""
    return Projection(
        spec=spec, fields=tuple(f.name for f in spec.fields if f.sensitivity is not Sensitivity.SENSITIVE)
    )
