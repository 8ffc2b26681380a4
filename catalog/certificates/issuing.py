"""Electronic certificates (电子证照) issued from certificate datasets.

Identifiers follow the GB/T 36904 pattern::

    1.2.156.3005.2.<type code>.<issuer code>.<serial>.<version>.<check>

* ``type code``: the certificate type's code in the directory (证照类型代码);
* ``issuer code``: the issuing department's unified social credit code (or its directory code);
* ``serial``: a random 16-digit number assigned at first issue and never reused within the
  type, so that identifiers cannot be guessed or walked (certificates issued before the
  hub's migration 0002 keep their sequential 8-digit serials, and so their identifiers);
* ``version``: starts at 1 and goes up whenever a face field of the certificate changes;
* ``check``: one character, ISO/IEC 7064 hybrid MOD 37,36 over the letters and digits of
  everything before it (upper-cased, dots left out), from the alphabet ``0-9A-Z``.

Status is derived from the source data at each sync: ``revoked`` when the status field holds
one of the mapping's revoked values, ``expired`` when the validity end is before today,
``valid`` otherwise.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlalchemy as sa

from catalog.db import tables
from catalog.directory.model import CertificateMapping, DatasetSpec, DepartmentSpec
from catalog.values import json_value

if TYPE_CHECKING:
    from catalog.auth.keys import SigningKey

OID_PREFIX = "1.2.156.3005.2"
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def mod37_36_check(text: str) -> str:
    """ISO/IEC 7064 hybrid MOD 37,36 check character over the alphanumerics of ``text``."""
    m = 36
    p = m
    for ch in text.upper():
        if ch not in _ALNUM:
            continue
        p = (p + _ALNUM.index(ch)) % m or m
        p = (2 * p) % (m + 1)
    return _ALNUM[(m + 1 - p) % m]


def certificate_identifier(type_code: str, issuer_code: str, serial: int, version: int) -> str:
    """Build a GB/T 36904-style identifier with its check character."""
    body = f"{OID_PREFIX}.{type_code}.{issuer_code}.{serial:08d}.{version}"
    return f"{body}.{mod37_36_check(body)}"


#: new serials are drawn uniformly from [SERIAL_MIN, SERIAL_MAX]: 16 digits, about 53 bits
SERIAL_MIN = 10**15
SERIAL_MAX = 10**16 - 1


def random_serial(taken: set[int]) -> int:
    """A serial not in ``taken`` (which it joins), drawn from a cryptographic random source."""
    while True:
        serial = SERIAL_MIN + secrets.randbelow(SERIAL_MAX - SERIAL_MIN + 1)
        if serial not in taken:
            taken.add(serial)
            return serial


def identifier_is_well_formed(identifier: str) -> bool:
    """True when the identifier has the pattern and its check character matches."""
    body, _, check = identifier.rpartition(".")
    return identifier.startswith(OID_PREFIX + ".") and len(check) == 1 and mod37_36_check(body) == check


# columns of the signed document (catalog.certificates.signing) that a status-only update also rewrites
_SIGNED_COLUMNS = ("number", "holder_id", "holder_name", "valid_from", "valid_until")


@dataclass(frozen=True)
class IssueResult:
    """Counts of one issuing pass."""

    issued: int = 0
    reissued: int = 0  # face changed: new version
    status_changed: int = 0
    unchanged: int = 0


def face_digest(face: dict[str, Any]) -> str:
    """The ``face_sha256`` recorded with a certificate: SHA-256 hex of its face as sorted JSON."""
    return hashlib.sha256(json.dumps(face, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _status(mapping: CertificateMapping, row: dict[str, Any], today: dt.date) -> str:
    if mapping.status and row.get(mapping.status) in mapping.revoked_values:
        return "revoked"
    until = row.get(mapping.valid_until) if mapping.valid_until else None
    if isinstance(until, dt.datetime):
        until = until.date()
    if isinstance(until, dt.date) and until < today:
        return "expired"
    return "valid"


def _as_date(v: Any) -> dt.date | None:
    if isinstance(v, dt.datetime):
        return v.date()
    return v if isinstance(v, dt.date) else None


def issue(
    engine: sa.Engine,
    spec: DatasetSpec,
    department: DepartmentSpec,
    type_code: str,
    rows: pa.Table,
    *,
    run_id: str,
    today: dt.date | None = None,
    signer: SigningKey | None = None,
) -> IssueResult:
    """Issue or update the certificates for the published rows of a certificate dataset.

    With a ``signer`` (the hub's active certificate key) every new or re-issued certificate
    is signed over its row as stored (``catalog.certificates.signing``). A pure status change keeps the
    signature, as the status is not signed; when other signed columns changed without a
    face change, the certificate is signed again (or its signature dropped without a signer)
    so that a stored signature always matches its row.
    """
    if signer is not None:
        from catalog.certificates.signing import sign_certificate
    mapping = spec.certificate
    if mapping is None:
        raise ValueError(f"dataset {spec.code} has no certificate mapping")
    if spec.subject is None:
        raise ValueError(f"certificate dataset {spec.code} needs a subject field (the holder)")
    today = today or dt.date.today()
    issuer_code = department.credit_code or department.code
    t = tables.certificates
    now = dt.datetime.now(dt.UTC)
    counts = {"issued": 0, "reissued": 0, "status_changed": 0, "unchanged": 0}
    with engine.begin() as conn:
        existing = {
            r.record_key: r
            for r in conn.execute(
                sa.select(
                    t.c.record_key,
                    t.c.identifier,
                    t.c.serial,
                    t.c.version,
                    t.c.face_sha256,
                    t.c.status,
                    *(t.c[name] for name in _SIGNED_COLUMNS),
                    t.c.issuer_code,
                    t.c.issuer_name,
                    t.c.signing_kid,
                ).where(t.c.type_code == type_code)
            )
        }
        taken = {int(r.serial) for r in existing.values()}
        inserts: list[dict[str, Any]] = []
        for row in rows.to_pylist():
            record_key = "|".join(str(row[k]) for k in spec.primary_key)
            face = {f: json_value(row.get(f)) for f in (mapping.face or [f.name for f in spec.fields])}
            face_sha = face_digest(face)
            status = _status(mapping, row, today)
            values = {
                "number": str(row[mapping.number]),
                "holder_id": str(row[spec.subject.field]),
                "holder_name": str(row[mapping.holder_name]),
                "valid_from": _as_date(row.get(mapping.valid_from)),
                "valid_until": _as_date(row.get(mapping.valid_until)) if mapping.valid_until else None,
                "status": status,
                "face": face,
                "face_sha256": face_sha,
                "updated_at": now,
                "run_id": run_id,
            }
            old = existing.get(record_key)
            if old is None:
                serial = random_serial(taken)
                ident = certificate_identifier(type_code, issuer_code, serial, 1)
                new = {
                    "identifier": ident,
                    "type_code": type_code,
                    "dataset_code": spec.code,
                    "record_key": record_key,
                    "issuer_code": issuer_code,
                    "issuer_name": department.name,
                    "serial": serial,
                    "version": 1,
                    "issued_at": now,
                    **values,
                }
                if signer is not None:
                    new["signature"], new["signing_kid"] = sign_certificate(signer, new)
                    new["signed_at"] = now
                inserts.append(new)
                counts["issued"] += 1
                continue
            if old.face_sha256 != face_sha:
                version = old.version + 1
                values["identifier"] = certificate_identifier(type_code, issuer_code, old.serial, version)
                values["version"] = version
                counts["reissued"] += 1
                resign = True
            elif old.status != status:
                counts["status_changed"] += 1
                resign = any(values[name] != old._mapping[name] for name in _SIGNED_COLUMNS) or (
                    signer is not None and old.signing_kid is None
                )
            else:
                counts["unchanged"] += 1
                continue
            if resign:
                stored = {
                    "type_code": type_code,
                    "issuer_code": old.issuer_code,
                    "issuer_name": old.issuer_name,
                    "identifier": old.identifier,
                    "version": old.version,
                    **values,
                }
                if signer is not None:
                    values["signature"], values["signing_kid"] = sign_certificate(signer, stored)
                    values["signed_at"] = now
                else:
                    values["signature"] = values["signing_kid"] = values["signed_at"] = None
            conn.execute(t.update().where(t.c.identifier == old.identifier).values(**values))
        for off in range(0, len(inserts), 2000):
            conn.execute(t.insert(), inserts[off : off + 2000])
    return IssueResult(**counts)


def sign_missing(
    engine: sa.Engine,
    signer: SigningKey,
    *,
    withdrawn: Mapping[str, dt.datetime] | None = None,
    all_by_withdrawn: bool = False,
    batch: int = 500,
    now: dt.datetime | None = None,
) -> int:
    """Sign, with ``signer`` (the active certificate key), every stored certificate that has no
    trusted signature; the count.

    That is every certificate with no signature (issued before signing existed) and, for each
    withdrawn key in ``withdrawn`` (kid -> withdrawn_since), every certificate it signed from
    that time on (or at an unknown time) — or, with ``all_by_withdrawn``, everything it ever
    signed, so that the leaked key's signatures stop mattering altogether. The stored row is
    the truth; only its signature changes. Copies already handed out are not re-signed (they
    expire within 90 days).
    """
    from catalog.certificates.signing import sign_certificate

    t = tables.certificates
    at = now or dt.datetime.now(dt.UTC)
    untrusted: list[sa.ColumnElement[bool]] = [t.c.signature.is_(None)]
    for kid, since in (withdrawn or {}).items():
        by_kid = t.c.signing_kid == kid
        if all_by_withdrawn:
            untrusted.append(by_kid)
        else:
            untrusted.append(sa.and_(by_kid, sa.or_(t.c.signed_at.is_(None), t.c.signed_at >= since)))
    done = 0
    last = ""
    while True:
        with engine.begin() as conn:
            rows = conn.execute(
                sa.select(t)
                .where(sa.or_(*untrusted), t.c.identifier > last)
                .order_by(t.c.identifier)
                .limit(batch)
            ).all()
            for row in rows:
                signature, kid = sign_certificate(signer, dict(row._mapping))
                # only the signature we looked at: a concurrent re-issue signs its own row
                same = t.c.signature.is_(None) if row.signature is None else t.c.signature == row.signature
                conn.execute(
                    t.update()
                    .where(t.c.identifier == row.identifier, same)
                    .values(signature=signature, signing_kid=kid, signed_at=at)
                )
        done += len(rows)
        if len(rows) < batch:
            return done
        last = rows[-1].identifier


def certificates_of(engine: sa.Engine, holder_id: str, type_code: str | None = None) -> list[dict[str, Any]]:
    """A holder's certificates, optionally of one type."""
    t = tables.certificates
    ct = tables.certificate_types
    q = (
        sa.select(t, ct.c.holder_kind, ct.c.name.label("type_name"))
        .join(ct, ct.c.code == t.c.type_code)
        .where(t.c.holder_id == holder_id)
    )
    if type_code:
        q = q.where(t.c.type_code == type_code)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q.order_by(t.c.type_code, t.c.identifier))]


def certificate(engine: sa.Engine, identifier: str) -> dict[str, Any] | None:
    """One certificate by identifier."""
    t = tables.certificates
    ct = tables.certificate_types
    q = (
        sa.select(t, ct.c.holder_kind, ct.c.name.label("type_name"))
        .join(ct, ct.c.code == t.c.type_code)
        .where(t.c.identifier == identifier)
    )
    with engine.connect() as conn:
        row = conn.execute(q).first()
    return dict(row._mapping) if row else None
