"""Signed certificate documents, signed copies (加注件) and the QR payload.

Everything is signed with Ed25519 over canonical JSON (``catalog.certificates.canonical``, RFC 8785), with
a ``certificate`` key of the hub; the signature names its key (``kid``) so a verifier finds the
public key in the hub's JWKS. Three shapes are handed out:

* a signed certificate: ``{"certificate": <document>, "signature": {...}}``, signature over
  ``canonical_json(document)``;
* a copy (加注件) for one use: ``{"certificate", "annotation", "signature"}``, signature over
  ``canonical_json({"certificate": ..., "annotation": ...})``;
* a QR payload ``SH1.<claims>.<kid>.<signature>`` (see :func:`qr_payload`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature

from catalog.auth.keys import KeyStore, SigningKey, b64url, b64url_decode
from catalog.certificates.canonical import canonical_json
from catalog.clock import iso_utc
from catalog.values import json_value

ALGORITHM = "EdDSA"
QR_PREFIX = "SH1"

#: the members of a certificate document, in the order a person reads them
DOCUMENT_FIELDS = (
    "identifier",
    "type_code",
    "number",
    "holder_id",
    "holder_name",
    "issuer_code",
    "issuer_name",
    "valid_from",
    "valid_until",
    "version",
    "face",
)
ANNOTATION_FIELDS = (
    "copy_id",
    "app_id",
    "app_name",
    "reason",
    "end_user",
    "case_number",
    "issued_at",
    "expires_at",
)


def certificate_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """The signed content of a certificate, from its ``hub_certificates`` row.

    Dates are ISO strings. The status (valid/revoked/expired) is deliberately not signed: it
    changes on revocation or expiry without the certificate changing, so a verifier checks it
    online against the hub (``catalog.certificates.verify``).
    """
    doc = {name: json_value(row[name]) for name in DOCUMENT_FIELDS}
    doc["version"] = int(row["version"])
    doc["face"] = {str(k): json_value(v) for k, v in dict(row["face"]).items()}
    return doc


def document_of(view: Mapping[str, Any]) -> dict[str, Any]:
    """The certificate document of a complete projected view (catalog.access.disclosure): the same
    members and values as :func:`certificate_document` of the row it was projected from."""
    if not view.get("complete"):
        raise ValueError("only a complete view is a certificate document")
    doc = {name: view[name] for name in DOCUMENT_FIELDS}
    doc["version"] = int(view["version"])
    doc["face"] = dict(view["face"])
    return doc


def canonical_face_sha256(face: Mapping[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of a certificate's face."""
    return hashlib.sha256(canonical_json({str(k): json_value(v) for k, v in face.items()})).hexdigest()


def _signature_block(kid: str, value: str) -> dict[str, str]:
    return {"alg": ALGORITHM, "kid": kid, "value": value}


def sign_certificate(key: SigningKey, row: Mapping[str, Any]) -> tuple[str, str]:
    """Sign a certificate row: (signature as base64url, kid)."""
    _require_certificate_key(key)
    return b64url(key.sign(canonical_json(certificate_document(row)))), key.kid


def signed_certificate(row: Mapping[str, Any], signature: str, kid: str) -> dict[str, Any]:
    """The signed certificate as handed out, from a row and its stored signature."""
    return {"certificate": certificate_document(row), "signature": _signature_block(kid, signature)}


def verify_signature(keys: KeyStore, document: Any, signature: Any) -> str | None:
    """None when ``signature`` is a good hub signature over ``document``, else a reason.

    Reasons: ``unknown_key`` (the hub never published the kid), ``not_a_certificate_key``
    (a token key), ``bad_signature`` (anything else: wrong bytes, wrong algorithm, bad shape).
    """
    if not isinstance(signature, Mapping) or signature.get("alg") != ALGORITHM:
        return "bad_signature"
    kid, value = signature.get("kid"), signature.get("value")
    if not isinstance(kid, str) or not isinstance(value, str):
        return "bad_signature"
    purpose = keys.purpose_of(kid)
    if purpose is None:
        return "unknown_key"
    if purpose != "certificate":
        return "not_a_certificate_key"
    public = keys.public_key(kid)
    assert public is not None
    try:
        public.verify(b64url_decode(value), canonical_json(document))
    except (InvalidSignature, ValueError, TypeError):
        return "bad_signature"
    return None


def make_copy(
    key: SigningKey,
    document: Mapping[str, Any],
    *,
    copy_id: str,
    app_id: str,
    app_name: str,
    reason: str,
    end_user: str | None,
    case_number: str | None,
    issued_at: dt.datetime,
    expires_at: dt.datetime,
) -> dict[str, Any]:
    """A signed copy (加注件) of a certificate ``document`` (:func:`document_of`), annotated
    with who may use it, why, and until when."""
    _require_certificate_key(key)
    body = {
        "certificate": dict(document),
        "annotation": {
            "copy_id": copy_id,
            "app_id": app_id,
            "app_name": app_name,
            "reason": reason,
            "end_user": end_user,
            "case_number": case_number,
            "issued_at": iso_utc(issued_at, what="copy times"),
            "expires_at": iso_utc(expires_at, what="copy times"),
        },
    }
    return {**body, "signature": _signature_block(key.kid, b64url(key.sign(canonical_json(body))))}


def mask_holder_name(name: str) -> str:
    """First character and one ``*``: enough to match a paper copy, not enough to identify."""
    return (name[:1] + "*") if name else ""


def qr_payload(
    key: SigningKey, row: Mapping[str, Any], *, copy_id: str | None, expires_at: dt.datetime
) -> str:
    """A compact string for a QR code, verifiable offline with the JWKS alone.

    ``row`` is the complete projected view of the certificate the copy is made of (the API
    passes what the disclosure projection released; a certificate row has the same members).

    Format ``SH1.<claims>.<kid>.<sig>``: ``claims`` is the base64url of the canonical JSON of
    ``{"id": identifier, "v": version, "n": number, "hn": masked holder name, "fh": SHA-256
    hex of the canonical face, "c": copy id, "exp": expiry ISO 8601 UTC to the second
    with ``Z``}`` (``c`` left out when
    there is no copy); ``sig`` is the base64url Ed25519 signature, by the certificate key
    ``kid``, over the ASCII text ``SH1.<claims>.<kid>`` (so a QR signature can never pass
    for a document signature, and the kid cannot be swapped).
    """
    _require_certificate_key(key)
    claims: dict[str, Any] = {
        "id": row["identifier"],
        "v": int(row["version"]),
        "n": str(row["number"]),
        "hn": mask_holder_name(str(row["holder_name"])),
        "fh": canonical_face_sha256(dict(row["face"])),
        "exp": iso_utc(expires_at, "seconds", what="copy times"),
    }
    if copy_id is not None:
        claims["c"] = copy_id
    signing_input = f"{QR_PREFIX}.{b64url(canonical_json(claims))}.{key.kid}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode('ascii')))}"


def parse_qr(keys: KeyStore, payload: str) -> dict[str, Any]:
    """The verified claims of a QR payload; ``ValueError(reason)`` when it does not verify.

    Reasons: ``malformed``, ``unknown_key``, ``not_a_certificate_key``, ``bad_signature``.
    Expiry (``exp``) is not checked here: the caller compares it with its own clock.
    """
    parts = payload.strip().split(".") if isinstance(payload, str) else []
    if len(parts) != 4 or parts[0] != QR_PREFIX or not all(parts):
        raise ValueError("malformed")
    _, claims_b64, kid, sig_b64 = parts
    purpose = keys.purpose_of(kid)
    if purpose is None:
        raise ValueError("unknown_key")
    if purpose != "certificate":
        raise ValueError("not_a_certificate_key")
    public = keys.public_key(kid)
    assert public is not None
    try:
        public.verify(b64url_decode(sig_b64), f"{QR_PREFIX}.{claims_b64}.{kid}".encode("ascii"))
    except (InvalidSignature, ValueError, UnicodeEncodeError):
        raise ValueError("bad_signature") from None
    try:
        claims = json.loads(b64url_decode(claims_b64))
    except ValueError:
        raise ValueError("malformed") from None
    if not isinstance(claims, dict) or not all(k in claims for k in ("id", "v", "n", "hn", "fh", "exp")):
        raise ValueError("malformed")
    return claims


def _require_certificate_key(key: SigningKey) -> None:
    if key.purpose != "certificate":
        raise ValueError(f"key {key.kid} is a {key.purpose} key; certificates need a certificate key")
