"""Errors raised by the lake."""

from __future__ import annotations


class LakeError(Exception):
    """A lake operation failed; the message says why in plain words (bad credentials, missing
    bucket, unknown table, schema conflict...)."""
