"""Opaque, tamper-proof pagination cursors.

A cursor holds the primary key of the last record of a page, and the key may hold fields the
app was not granted (an app granted only ``court`` must not learn ``case_no``). So a cursor is
sealed: the key as JSON, encrypted and authenticated with AES-256-GCM under the hub's cursor
key, with the call's context (app, dataset, subject) as associated data. An app cannot read
it, change it, or use it in another app's call, on another dataset or another subject: any of
these answers 400 ``bad_cursor``, the same as garbage.

The cursor key is 32 random bytes in ``<keys_dir>/cursor.key`` (mode 0600), made on first
use; every API replica must see the same file (the keys folder is already shared, see
docs/deploy.md). Replacing the file invalidates the cursors handed out, nothing else.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE = "cursor.key"
_NONCE = 12


class BadCursor(ValueError):
    """The cursor was not sealed by this hub for this context."""


def load_or_create_key(keys_dir: Path) -> bytes:
    """The hub's cursor key, created (0600, atomically) when the keys folder has none."""
    path = Path(keys_dir) / KEY_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        Path(keys_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
        fresh = secrets.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            data = path.read_bytes()
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(fresh)
                fh.flush()
                os.fsync(fh.fileno())
            data = fresh
    if len(data) != 32:
        raise ValueError(f"{path} must hold 32 bytes (it holds {len(data)}); delete it to make a new one")
    return data


def _context(parts: tuple[str, ...]) -> bytes:
    return json.dumps(list(parts), ensure_ascii=False, separators=(",", ":")).encode()


class CursorSealer:
    """Seals and opens cursors with one key."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, values: list[Any], *context: str) -> str:
        """An opaque cursor for ``values`` (JSON-able; dates become ISO text) in ``context``."""
        nonce = secrets.token_bytes(_NONCE)
        plain = json.dumps(values, default=str, ensure_ascii=False, separators=(",", ":")).encode()
        sealed = self._aead.encrypt(nonce, plain, _context(context))
        return base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")

    def open(self, cursor: str, *context: str) -> list[Any]:
        """The values sealed in ``cursor`` for ``context``; :class:`BadCursor` otherwise."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise BadCursor("not base64url") from None
        if len(raw) <= _NONCE + 16:
            raise BadCursor("too short")
        try:
            plain = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], _context(context))
        except InvalidTag:
            raise BadCursor("not sealed by this hub for this call") from None
        values = json.loads(plain)
        if not isinstance(values, list):
            raise BadCursor("not a key")
        return values
