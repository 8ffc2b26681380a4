"""The hub's Ed25519 signing keys: one set for access tokens, one for certificates.

The public half of every key, with its purpose and status, is in ``hub_signing_keys`` and is
published as a JWKS, so anyone can check a token or a certificate offline. The private half
lives only in ``<keys_dir>/<kid>.pem`` (PKCS#8 PEM, unencrypted, mode 0600, folder 0700) and is
never written to the database or to a log. In production every API replica and the sync
workers must see the same ``keys_dir`` (a mounted secret).

``rotate`` makes a new active key and retires the older ones of that purpose: retired keys
sign nothing new but stay published, so everything signed earlier still verifies. For token
keys "earlier" is bounded: a token lives at most ``token_ttl_seconds``, so a retired token key
stops verifying tokens once that long (plus clock leeway) has passed since its retirement
(``catalog.auth.tokens``) — a leaked old key cannot mint tokens forever.

``withdraw`` is for a key that leaked (密钥撤销): from ``withdrawn_since`` on (the earliest
moment the key may have been in other hands) nothing it signed is trusted on its signature
alone. A withdrawn token key verifies no token at all; for certificate keys the verifier
(``catalog.certificates.verify``) trusts a signature by it only where the hub's own records show
the hub made that signature before ``withdrawn_since``. Withdrawing an active key makes a new
active key of its purpose at once. The key stays published (status ``withdrawn``, with
``withdrawn_since``) so that relying parties learn of the withdrawal from the JWKS.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from catalog.clock import as_utc as _aware
from catalog.clock import iso_utc
from catalog.db import tables

PURPOSES = ("token", "certificate")

_KID_PREFIX = {"token": "tok", "certificate": "cert"}

# Loaded private keys, per process: the API signs often and PEM parsing is not free.
# Keyed by the PEM file's absolute path; a kid is never reused, so an entry never goes stale.
_PRIVATE_CACHE: dict[Path, Ed25519PrivateKey] = {}
_CACHE_LOCK = threading.Lock()


#: how long a process trusts what it read about a key's retirement (another process may rotate)
METADATA_TTL_S = 30.0


class KeyStoreError(Exception):
    """The key store cannot give a usable key (a missing or mismatched private key file)."""


@dataclass(frozen=True)
class KeyState:
    """What a relying party needs to know about a published key now."""

    kid: str
    status: str  # active|retired|withdrawn
    retired_at: dt.datetime | None
    withdrawn_since: dt.datetime | None

    def to_json(self) -> dict[str, Any]:
        """kid, status and (for a withdrawn key) withdrawn_since, as the API shows them."""
        out: dict[str, Any] = {"kid": self.kid, "status": self.status}
        if self.withdrawn_since is not None:
            out["withdrawn_since"] = iso_utc(self.withdrawn_since, "seconds")
        return out


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of :func:`b64url`; raises ``ValueError`` on anything that is not base64url."""
    if not isinstance(text, str) or any(c not in _B64URL for c in text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class SigningKey:
    """An active key with its private half, ready to sign."""

    kid: str
    purpose: str
    private_key: Ed25519PrivateKey = field(repr=False)
    public_key: Ed25519PublicKey = field(repr=False)

    def sign(self, data: bytes) -> bytes:
        """Ed25519 signature (64 bytes) over ``data``."""
        return self.private_key.sign(data)


def _check_purpose(purpose: str) -> None:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown key purpose {purpose!r}; one of {', '.join(PURPOSES)}")


class KeyStore:
    """The hub's signing keys: public halves in the hub DB, private halves in ``keys_dir``."""

    def __init__(self, engine: sa.Engine, keys_dir: Path) -> None:
        self.engine = engine
        self.keys_dir = Path(keys_dir).resolve()
        # kid -> (purpose, public key): both never change for a kid, so caching is safe
        self._public: dict[str, tuple[str, Ed25519PublicKey]] = {}
        # kid -> (monotonic time read, state): retirement and withdrawal do change, so re-read them
        # now and then
        self._states: dict[str, tuple[float, KeyState | None]] = {}

    def __repr__(self) -> str:
        return f"KeyStore({self.engine.url!r}, {str(self.keys_dir)!r})"

    # ---- signing keys -----------------------------------------------------------------
    def active(self, purpose: str) -> SigningKey:
        """The newest active key of ``purpose``; makes the first one when there is none."""
        _check_purpose(purpose)
        row = self._newest_active(purpose)
        if row is None:
            now = dt.datetime.now(dt.UTC)
            self._create(purpose, now, retire_others=False)
            # Re-read rather than use our own key: processes making the first key at once all
            # insert (kids differ, so nothing fails), then keep the newest and retire the rest.
            # Each racer retires after its own insert, so the last one sees every insert and
            # one active key remains; what a retired racer key signed meanwhile still verifies.
            row = self._newest_active(purpose)
            assert row is not None
            t = tables.signing_keys
            with self.engine.begin() as conn:
                conn.execute(
                    t.update()
                    .where(t.c.purpose == purpose, t.c.status == "active")
                    # strictly older in the order of _newest_active: never a key we did not see
                    .where(
                        sa.or_(
                            t.c.created_at < row.created_at,
                            sa.and_(t.c.created_at == row.created_at, t.c.kid < row.kid),
                        )
                    )
                    .values(status="retired", retired_at=now)
                )
        return self._load(row.kid, row.purpose, row.public_key)

    def rotate(self, purpose: str, *, now: dt.datetime | None = None) -> SigningKey:
        """Make a new active key of ``purpose``; the older ones become retired (still published)."""
        _check_purpose(purpose)
        kid = self._create(purpose, now or dt.datetime.now(dt.UTC), retire_others=True)
        row = self._row(kid)
        assert row is not None
        return self._load(row.kid, row.purpose, row.public_key)

    # ---- public keys ------------------------------------------------------------------
    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        """The public key of ``kid`` (active or retired), None when the hub never published it."""
        found = self._published(kid)
        return found[1] if found else None

    def purpose_of(self, kid: str) -> str | None:
        """``token`` or ``certificate`` for a published kid, None when unknown."""
        found = self._published(kid)
        return found[0] if found else None

    def state(self, kid: str) -> KeyState | None:
        """The key's status, retirement and withdrawal (None when unknown); at most
        METADATA_TTL_S old."""
        now = time.monotonic()
        hit = self._states.get(kid)
        if hit is not None and now - hit[0] < METADATA_TTL_S:
            return hit[1]
        row = self._row(kid) if isinstance(kid, str) and kid else None
        found = (
            KeyState(kid, row.status, _aware(row.retired_at), _aware(row.withdrawn_since))
            if row is not None
            else None
        )
        self._states[kid] = (now, found)
        return found

    def retired_at(self, kid: str) -> dt.datetime | None:
        """When ``kid`` was retired (None while active or unknown); at most METADATA_TTL_S old."""
        found = self.state(kid)
        return found.retired_at if found is not None else None

    def withdrawn_since(self, kid: str) -> dt.datetime | None:
        """From when nothing ``kid`` signed is trusted on its signature alone (None: not
        withdrawn, or unknown); at most METADATA_TTL_S old."""
        found = self.state(kid)
        return found.withdrawn_since if found is not None and found.status == "withdrawn" else None

    def forget_cached_metadata(self) -> None:
        """Re-read key retirements and withdrawals on next use (what the periodic refresh does anyway)."""
        self._states.clear()

    def withdraw(
        self,
        kid: str,
        *,
        since: dt.datetime,
        reason: str,
        by: str,
        now: dt.datetime | None = None,
    ) -> dict[str, Any]:
        """Withdraw a leaked key: what it signed from ``since`` on is no longer trusted.

        Refused (``ValueError`` saying why) for an unknown kid, an empty reason, or a ``since``
        in the future. A ``since`` before the key was made means everything it ever signed. A
        key already withdrawn may be withdrawn again only with an earlier ``since`` (the leak
        turned out older); the reasons are kept together. Withdrawing the active key of a
        purpose makes a new active key at once. Returns the key's new state and, when one was
        made, the new kid (``new_active_kid``).
        """
        at = _aware(now) or dt.datetime.now(dt.UTC)
        since = _aware(since)
        assert since is not None
        reason = reason.strip()
        if not reason:
            raise ValueError("a withdrawal needs a reason (--reason)")
        if since > at:
            when = iso_utc(since, "seconds")
            raise ValueError(
                f"--since {when} is in the future; give the earliest time the key may have leaked"
            )
        t = tables.signing_keys
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(t).where(t.c.kid == kid)).first()
            if row is None:
                raise ValueError(f"no signing key {kid!r} (see `sharehub keys list`)")
            values: dict[str, Any] = {
                "status": "withdrawn",
                "withdrawn_since": since,
                "withdrawn_at": at,
                "withdrawn_by": by,
                "withdrawn_reason": reason,
            }
            if row.status == "withdrawn":
                earlier = _aware(row.withdrawn_since)
                if earlier is not None and since >= earlier:
                    when = iso_utc(earlier, "seconds")
                    raise ValueError(
                        f"{kid} is already withdrawn since {when}; "
                        "a new withdrawal may only move that earlier"
                    )
                values["withdrawn_reason"] = f"{row.withdrawn_reason}; {reason}"
                values["withdrawn_at"] = _aware(row.withdrawn_at)
            if row.retired_at is None:
                values["retired_at"] = at
            conn.execute(t.update().where(t.c.kid == kid).values(**values))
            was_active = row.status == "active"
        self._states.pop(kid, None)
        new_kid = None
        if was_active:
            new_kid = self._create(row.purpose, at, retire_others=False)
        state = self.state(kid)
        assert state is not None
        return {"kid": kid, "purpose": row.purpose, **state.to_json(), "new_active_kid": new_kid}

    def jwks(self) -> dict[str, Any]:
        """Every published key of both purposes as a JWK Set (RFC 8037 OKP keys).

        Besides the standard members each key carries ``purpose`` (token|certificate) and
        ``status`` (active|retired|withdrawn); a verifier must accept only keys of the right
        purpose. A withdrawn key also carries ``withdrawn_since``: an offline verifier must not
        accept, on the signature alone, anything it signed — ask the hub's verify endpoint,
        which knows what the hub itself signed before that time.
        """
        keys = []
        for k in self.list_keys():
            jwk = {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": k["public_key"],
                "kid": k["kid"],
                "use": "sig",
                "alg": "EdDSA",
                "purpose": k["purpose"],
                "status": k["status"],
            }
            if k["status"] == "withdrawn" and k["withdrawn_since"] is not None:
                jwk["withdrawn_since"] = iso_utc(k["withdrawn_since"], "seconds")
            keys.append(jwk)
        return {"keys": keys}

    def list_keys(self) -> list[dict[str, Any]]:
        """All keys, by purpose then age: kid, purpose, status, public_key, times, private file present."""
        t = tables.signing_keys
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t).order_by(t.c.purpose, t.c.created_at, t.c.kid)).all()
        return [
            {
                "kid": r.kid,
                "purpose": r.purpose,
                "status": r.status,
                "public_key": r.public_key,
                "created_at": _aware(r.created_at),
                "retired_at": _aware(r.retired_at),
                "withdrawn_since": _aware(r.withdrawn_since),
                "withdrawn_at": _aware(r.withdrawn_at),
                "withdrawn_by": r.withdrawn_by,
                "withdrawn_reason": r.withdrawn_reason,
                "private_key_file": self._pem_path(r.kid).is_file(),
            }
            for r in rows
        ]

    # ---- internals --------------------------------------------------------------------
    def _pem_path(self, kid: str) -> Path:
        return self.keys_dir / f"{kid}.pem"

    def _row(self, kid: str) -> sa.Row[Any] | None:
        t = tables.signing_keys
        with self.engine.connect() as conn:
            return conn.execute(sa.select(t).where(t.c.kid == kid)).first()

    def _newest_active(self, purpose: str) -> sa.Row[Any] | None:
        t = tables.signing_keys
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(t)
                .where(t.c.purpose == purpose, t.c.status == "active")
                .order_by(t.c.created_at.desc(), t.c.kid.desc())
                .limit(1)
            ).first()

    def _published(self, kid: str) -> tuple[str, Ed25519PublicKey] | None:
        if not isinstance(kid, str) or not kid:
            return None
        cached = self._public.get(kid)
        if cached is not None:
            return cached
        row = self._row(kid)
        if row is None:
            return None  # not cached: the key may be created later by another process
        found = (row.purpose, Ed25519PublicKey.from_public_bytes(b64url_decode(row.public_key)))
        self._public[kid] = found
        return found

    def _load(self, kid: str, purpose: str, public_b64: str) -> SigningKey:
        path = self._pem_path(kid)
        with _CACHE_LOCK:
            private = _PRIVATE_CACHE.get(path)
        if private is None:
            try:
                pem = path.read_bytes()
            except FileNotFoundError:
                raise KeyStoreError(
                    f"the private key of active {purpose} key {kid} is missing: {path} does not exist. "
                    f"Point SHAREHUB_KEYS_DIR at the folder that holds it, or run `sharehub keys rotate` "
                    f"for the {purpose} key to make a new one"
                ) from None
            loaded = serialization.load_pem_private_key(pem, password=None)
            if not isinstance(loaded, Ed25519PrivateKey):
                raise KeyStoreError(f"{path} does not hold an Ed25519 private key")
            private = loaded
            with _CACHE_LOCK:
                _PRIVATE_CACHE[path] = private
        public = private.public_key()
        if b64url(raw_public_key(public)) != public_b64:
            raise KeyStoreError(
                f"{path} does not match the public key published for {kid}; "
                f"run `sharehub keys rotate` for the {purpose} key to make a new one"
            )
        return SigningKey(kid=kid, purpose=purpose, private_key=private, public_key=public)

    def _write_pem(self, kid: str, private: Ed25519PrivateKey) -> Path:
        self.keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.keys_dir, 0o700)  # mkdir's mode is filtered by the umask
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path = self._pem_path(kid)
        tmp = path.with_name(f".{kid}.{secrets.token_hex(4)}.tmp")
        # created 0600 from the start, never readable by others even for a moment
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path

    def _create(self, purpose: str, now: dt.datetime, *, retire_others: bool) -> str:
        t = tables.signing_keys
        for _attempt in range(5):
            kid = f"{_KID_PREFIX[purpose]}-{now:%Y%m%d}-{secrets.token_hex(3)}"
            if self._pem_path(kid).exists():
                continue
            private = Ed25519PrivateKey.generate()
            path = self._write_pem(kid, private)
            try:
                with self.engine.begin() as conn:
                    if retire_others:
                        conn.execute(
                            t.update()
                            .where(t.c.purpose == purpose, t.c.status == "active")
                            .values(status="retired", retired_at=now)
                        )
                    conn.execute(
                        t.insert().values(
                            kid=kid,
                            purpose=purpose,
                            public_key=b64url(raw_public_key(private.public_key())),
                            status="active",
                            created_at=now,
                            retired_at=None,
                        )
                    )
            except sa.exc.IntegrityError:
                path.unlink(missing_ok=True)  # the kid was taken in another keys folder: try another
                continue
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            with _CACHE_LOCK:
                _PRIVATE_CACHE[path] = private
            return kid
        raise KeyStoreError(f"could not find a free kid for a new {purpose} key")
