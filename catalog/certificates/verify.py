"""Verify a certificate: by identifier, as a signed document or copy (加注件), or from its QR code.

Every verification runs the same checks and reports each one, so a caller can show why a
certificate is not accepted:

* ``signature``: the hub's signature verifies with a published certificate key;
* ``matches_record``: what was handed in is what the hub holds now (for a stored record:
  the face still has the digest recorded at issue);
* ``status``: the hub's current status is ``valid`` (not revoked or expired);
* ``validity_period``: today lies within the validity dates;
* ``copy_not_expired``: for copies and QR codes, the copy's own expiry has not passed.

Problems are stable codes: ``bad_signature``, ``unknown_key``, ``not_a_certificate_key``,
``key_withdrawn``, ``unsigned``, ``unknown_certificate``, ``superseded`` (a newer version of the
certificate exists), ``record_changed``, ``revoked``, ``expired``, ``not_yet_valid``,
``copy_expired``.

**A withdrawn key** (``sharehub keys withdraw``) may be in other hands from its
``withdrawn_since`` on, and its holder can sign anything with any date written in it. So a
signature by it counts only where the hub's own records show the hub made that very signature
before ``withdrawn_since``: the stored certificate's ``signed_at`` (and, for a presented
document, the same signature value), or the stored copy (加注件) with that copy id — the same
signed document, issued before that time; a QR payload must name such a copy and claim no
later expiry than it has. Anything else fails with ``key_withdrawn``, answered like a bad
signature (the signature check alone). Every answer about a signature made with a known key
says the key's state (``key``: kid, status, withdrawn_since).
Dates are compared with the local calendar date, as certificates are issued.

**Not an oracle.** A document or QR payload whose signature does not verify is answered with
the signature check alone (``checks`` = ``{"signature": false}``, no status): nothing is
compared with the hub's records, so a caller cannot test guesses (a masked name, a changed
face) against them. Only a document the hub itself signed — which its holder already has in
full — is compared with the record, and only then is its current status told. Verification
by identifier tells the status of that identifier and never the identifier of a newer
version (``superseded`` only says there is one).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from catalog.auth.keys import KeyStore
from catalog.certificates.canonical import canonical_json
from catalog.certificates.issuing import OID_PREFIX, face_digest, identifier_is_well_formed
from catalog.certificates.signing import (
    ALGORITHM,
    canonical_face_sha256,
    certificate_document,
    mask_holder_name,
    parse_qr,
    verify_signature,
)
from catalog.clock import as_utc
from catalog.clock import utc_now as _utcnow
from catalog.db import tables
from catalog.errors import HubError

RECORD_CHECKS = ("signature", "matches_record", "status", "validity_period")
_SMALL_NUMBER = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of one verification."""

    valid: bool  # all checks passed
    identifier: str | None
    status: str | None  # current status in the hub: valid|revoked|expired, None if unknown
    checks: dict[str, bool]
    problems: list[str]
    superseded_by: str | None = None  # the current identifier when a newer version exists
    #: the dataset of the certificate the hub compared with (for the audit; not in the answer)
    dataset_code: str | None = None
    #: the signing key's state (kid, status, withdrawn_since) when the signature named a known key
    key: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict for the API: valid, identifier, status, checks, problems,
        superseded_by, key."""
        return {
            "valid": self.valid,
            "identifier": self.identifier,
            "status": self.status,
            "checks": dict(self.checks),
            "problems": list(self.problems),
            "superseded_by": self.superseded_by,
            "key": dict(self.key) if self.key is not None else None,
        }


@dataclass
class _Outcome:
    checks: dict[str, bool]
    problems: list[str] = field(default_factory=list)

    def fail(self, check: str, problem: str | None) -> None:
        self.checks[check] = False
        if problem and problem not in self.problems:
            self.problems.append(problem)

    def result(self, identifier: str | None, status: str | None, newer: str | None = None) -> VerifyResult:
        valid = not self.problems and all(self.checks.values())
        return VerifyResult(valid, identifier, status, dict(self.checks), list(self.problems), newer)


def _today(now: dt.datetime | None) -> dt.date:
    return dt.date.today() if now is None else now.astimezone().date()


#: the stored certificate with bind parameter ``identifier``
BY_IDENTIFIER = sa.select(tables.certificates).where(
    tables.certificates.c.identifier == sa.bindparam("identifier")
)

#: looks a certificate up: (the record, None) or (None, the identifier of a newer version or None)
Lookup = Callable[[Any], tuple[dict[str, Any] | None, str | None]]


def lookup(engine: sa.Engine, identifier: Any) -> tuple[dict[str, Any] | None, str | None]:
    """(the record, None) or (None, the identifier of a newer version when there is one)."""
    if not isinstance(identifier, str) or not identifier_is_well_formed(identifier):
        return None, None
    t = tables.certificates
    with engine.connect() as conn:
        row = conn.execute(BY_IDENTIFIER, {"identifier": identifier}).first()
        if row is not None:
            return dict(row._mapping), None
        # <prefix>.<type code>.<issuer>.<serial>.<version>.<check>: a face change gave the same
        # serial a higher version (and a new identifier), so the old identifier is gone
        parts = identifier[len(OID_PREFIX) + 1 :].split(".")
        # ASCII digits that fit a BIGINT (str.isdigit() takes ², and a 40-digit serial overflows)
        if len(parts) < 5 or not all(_SMALL_NUMBER.fullmatch(p) for p in parts[-3:-1]):
            return None, None
        current = conn.execute(
            sa.select(t.c.identifier, t.c.version).where(
                t.c.type_code == ".".join(parts[:-4]), t.c.serial == int(parts[-3])
            )
        ).first()
    if current is not None and current.version > int(parts[-2]):
        return None, current.identifier
    return None, None


def _unknown(out: _Outcome, identifier: str | None, newer: str | None) -> VerifyResult:
    for check in RECORD_CHECKS:
        if check != "signature":
            out.fail(check, None)
    out.fail("matches_record", "superseded" if newer else "unknown_certificate")
    return out.result(identifier, None, newer)


def _status_checks(out: _Outcome, row: Mapping[str, Any], today: dt.date) -> None:
    status = row["status"]
    if status != "valid":
        out.fail("status", status if status in ("revoked", "expired") else "revoked")
    valid_from, valid_until = row["valid_from"], row["valid_until"]
    if isinstance(valid_from, dt.date) and today < valid_from:
        out.fail("validity_period", "not_yet_valid")
    if isinstance(valid_until, dt.date) and today > valid_until:
        out.fail("validity_period", "expired")


def _new_outcome(*extra: str) -> _Outcome:
    return _Outcome({name: True for name in (*RECORD_CHECKS, *extra)})


def _signature_only(identifier: str | None, reason: str, key: dict[str, Any] | None = None) -> VerifyResult:
    """The whole answer for a document whose signature fails: that, and nothing about records."""
    return VerifyResult(False, identifier, None, {"signature": False}, [reason], key=key)


def _key_of(keys: KeyStore, kid: Any) -> dict[str, Any] | None:
    """The state of a certificate key the hub published, for the answer."""
    if not isinstance(kid, str) or keys.purpose_of(kid) != "certificate":
        return None
    state = keys.state(kid)
    return state.to_json() if state is not None else None


def _before(at: Any, since: dt.datetime) -> bool:
    moment = as_utc(at) if isinstance(at, dt.datetime) else None
    return moment is not None and moment < since


def _copy_row(engine: sa.Engine, copy_id: Any) -> dict[str, Any] | None:
    if not isinstance(copy_id, str) or not copy_id or len(copy_id) > 64:
        return None
    t = tables.certificate_copies
    with engine.connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.copy_id == copy_id)).first()
    return dict(row._mapping) if row is not None else None


def _hub_signed_before(
    engine: sa.Engine, since: dt.datetime, cert: Mapping[str, Any], annotation: Any, document: Any, value: Any
) -> bool:
    """Whether the hub's records show it made this signed document before ``since``."""
    if annotation is None:
        row, _newer = lookup(engine, cert.get("identifier"))
        return row is not None and row.get("signature") == value and _before(row.get("signed_at"), since)
    copy = _copy_row(engine, annotation.get("copy_id"))
    return copy is not None and _before(copy["issued_at"], since) and _same(copy["document"], document)


def verify_identifier(
    engine: sa.Engine,
    keys: KeyStore,
    identifier: str,
    *,
    today: dt.date | None = None,
    lookup_with: Lookup | None = None,
) -> VerifyResult:
    """Verify the hub's stored record: its signature over the stored content, status and dates.

    ``lookup_with`` replaces :func:`lookup` on ``engine`` (the API reads through psycopg).
    ``superseded_by`` is never filled in: an identifier alone proves nothing about its caller."""
    today = today or dt.date.today()
    out = _new_outcome()
    row, newer = lookup_with(identifier) if lookup_with is not None else lookup(engine, identifier)
    if row is None:
        out.fail("signature", None)
        unknown = _unknown(out, identifier, newer)
        return dataclasses.replace(unknown, superseded_by=None)
    key = None
    if not row["signature"] or not row["signing_kid"]:
        out.fail("signature", "unsigned")
    else:
        signature = {"alg": ALGORITHM, "kid": row["signing_kid"], "value": row["signature"]}
        reason = verify_signature(keys, certificate_document(row), signature)
        key = _key_of(keys, row["signing_kid"])
        since = keys.withdrawn_since(row["signing_kid"])
        if not reason and since is not None and not _before(row.get("signed_at"), since):
            reason = "key_withdrawn"  # signed when the key may have been in other hands: re-sign it
        if reason:
            out.fail("signature", reason)
    if face_digest(row["face"]) != row["face_sha256"]:
        out.fail("matches_record", "record_changed")
    _status_checks(out, row, today)
    return dataclasses.replace(
        out.result(identifier, row["status"]), dataset_code=row.get("dataset_code"), key=key
    )


def _bad(why: str) -> HubError:
    return HubError("bad_document", why=why)


def _same(a: Any, b: Any) -> bool:
    try:
        return canonical_json(a) == canonical_json(b)
    except (TypeError, ValueError):
        return False


def verify_document(
    engine: sa.Engine, keys: KeyStore, document: Any, *, now: dt.datetime | None = None
) -> VerifyResult:
    """Verify a signed certificate or a signed copy as the hub handed it out.

    Raises ``HubError("bad_document")`` when the document does not have the shape of either.
    """
    if not isinstance(document, Mapping):
        raise _bad("expected a JSON object")
    cert, signature, annotation = (document.get(k) for k in ("certificate", "signature", "annotation"))
    if not isinstance(cert, Mapping):
        raise _bad("certificate is missing")
    if not isinstance(signature, Mapping):
        raise _bad("signature is missing")
    if annotation is not None and not isinstance(annotation, Mapping):
        raise _bad("annotation must be an object")
    moment = _utcnow(now)
    identifier = cert.get("identifier")
    ident = identifier if isinstance(identifier, str) else None
    out = _new_outcome() if annotation is None else _new_outcome("copy_not_expired")
    signed = cert if annotation is None else {"certificate": cert, "annotation": annotation}
    expires = None
    if annotation is not None:  # the shape first: answering it needs nothing of the hub's
        try:
            expires = dt.datetime.fromisoformat(str(annotation.get("expires_at")))
        except ValueError:
            raise _bad("annotation.expires_at is not a date-time") from None
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=dt.UTC)
    reason = verify_signature(keys, signed, signature)
    key = _key_of(keys, signature.get("kid"))
    if reason:
        return _signature_only(ident, reason, key)
    since = keys.withdrawn_since(str(signature["kid"]))
    if since is not None and not _hub_signed_before(
        engine, since, cert, annotation, document, signature.get("value")
    ):
        return _signature_only(ident, "key_withdrawn", key)
    if expires is not None and moment >= expires:
        out.fail("copy_not_expired", "copy_expired")
    row, newer = lookup(engine, identifier)
    if row is None:
        return dataclasses.replace(_unknown(out, ident, newer), key=key)
    if not _same(certificate_document(row), cert):
        out.fail("matches_record", "record_changed")
    _status_checks(out, row, _today(moment))
    return dataclasses.replace(
        out.result(ident, row["status"]), dataset_code=row.get("dataset_code"), key=key
    )


def verify_qr(
    engine: sa.Engine, keys: KeyStore, payload: str, *, now: dt.datetime | None = None
) -> VerifyResult:
    """Verify a QR payload (``SH1....``): signature, the record it names, status and expiry.

    Raises ``HubError("bad_document")`` when the text is not a sharehub QR payload at all.
    """
    moment = _utcnow(now)
    out = _new_outcome("copy_not_expired")
    kid = payload.strip().split(".")[2] if isinstance(payload, str) and payload.count(".") == 3 else None
    key = _key_of(keys, kid)
    try:
        claims = parse_qr(keys, payload)
    except ValueError as exc:
        if str(exc) == "malformed":
            raise _bad("not a sharehub QR payload") from None
        return _signature_only(None, str(exc), key)
    try:
        expires = dt.datetime.fromisoformat(str(claims["exp"]))
    except ValueError:
        raise _bad("exp is not a date-time") from None
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=dt.UTC)
    since = keys.withdrawn_since(kid) if kid else None
    if since is not None:
        # only a copy the hub made before the withdrawal, claiming no more than it holds
        copy = _copy_row(engine, claims.get("c"))
        if (
            copy is None
            or not _before(copy["issued_at"], since)
            or copy["identifier"] != claims["id"]
            or expires > as_utc(copy["expires_at"])
        ):
            return _signature_only(None, "key_withdrawn", key)
    if moment >= expires:
        out.fail("copy_not_expired", "copy_expired")
    identifier = claims["id"] if isinstance(claims["id"], str) else None
    row, newer = lookup(engine, identifier)
    if row is None:
        return dataclasses.replace(_unknown(out, identifier, newer), key=key)
    matches = (
        claims["v"] == row["version"]
        and claims["n"] == row["number"]
        and claims["hn"] == mask_holder_name(row["holder_name"])
        and claims["fh"] == canonical_face_sha256(row["face"])
    )
    if not matches:
        out.fail("matches_record", "record_changed")
    _status_checks(out, row, _today(moment))
    return dataclasses.replace(
        out.result(identifier, row["status"]), dataset_code=row.get("dataset_code"), key=key
    )
