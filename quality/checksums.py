"""Check digits of the Chinese identifiers that subjects are keyed on.

* 18-digit citizen ID number (公民身份号码), GB 11643-1999: ISO 7064 MOD 11-2.
* Unified social credit code (统一社会信用代码), GB 32100-2015: MOD 31 over a
  31-character alphabet that leaves out I, O, S, V and Z.

The functions are pure and cheap; ``quality`` uses them to validate rows and the
demo generator uses them to build valid (and deliberately invalid) identifiers.
"""

from __future__ import annotations

import datetime as _dt
import re
import unicodedata

CITIZEN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CITIZEN_ID_CHECK = "10X98765432"
# ASCII only: \d would also take full-width and other Unicode digits
_CITIZEN_ID_RE = re.compile(r"^[1-9][0-9]{16}[0-9X]$")

CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_CODE_VALUE = {c: i for i, c in enumerate(CREDIT_CODE_ALPHABET)}
_CREDIT_CODE_RE = re.compile(r"^[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{10}$")

_MOBILE_RE = re.compile(r"^1[3-9][0-9]{9}$")
_DECLARE = "declare normalize: [{}] on the field to accept it"


def _shape_problem(value: str) -> str | None:
    """A message for the usual non-standard shapes: full-width characters, spaces, lower case."""
    wide = [(i, c) for i, c in enumerate(value, start=1) if unicodedata.normalize("NFKC", c) != c]
    if wide and not wide[0][1].isspace():
        i, c = wide[0]
        return f"has the full-width character {c!r} at position {i} ({_DECLARE.format('nfkc')})"
    if any(c.isspace() for c in value):
        return f"has spaces inside ({_DECLARE.format('strip_spaces')})"
    if value != value.upper() and value.upper().isascii():
        if value[:-1] == value[:-1].upper():
            return f"ends in a lower-case {value[-1]} ({_DECLARE.format('upper')})"
        return f"has lower-case letters ({_DECLARE.format('upper')})"
    return None


def citizen_id_check_char(first17: str) -> str:
    """Return the GB 11643 check character for the first 17 digits."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError(f"citizen ID body must be 17 digits, got {first17!r}")
    total = sum(int(d) * w for d, w in zip(first17, CITIZEN_ID_WEIGHTS, strict=True))
    return CITIZEN_ID_CHECK[total % 11]


def citizen_id_problem(value: str) -> str | None:
    """Explain why ``value`` is not a valid 18-digit citizen ID, or return None if it is."""
    if not _CITIZEN_ID_RE.match(value):
        return _shape_problem(value) or "must be 17 digits followed by a digit or X"
    try:
        _dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return f"birth date {value[6:14]} is not a real date"
    expected = citizen_id_check_char(value[:17])
    if value[17] != expected:
        return f"check character is {value[17]}, expected {expected}"
    return None


def is_citizen_id(value: str) -> bool:
    """True when ``value`` is a well-formed citizen ID with a real birth date and check character."""
    return citizen_id_problem(value) is None


def credit_code_check_char(first17: str) -> str:
    """Return the GB 32100 check character for the first 17 characters."""
    if len(first17) != 17:
        raise ValueError(f"credit code body must be 17 characters, got {first17!r}")
    try:
        total = sum(_CREDIT_CODE_VALUE[c] * w for c, w in zip(first17, CREDIT_CODE_WEIGHTS, strict=True))
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} is not in the credit-code alphabet") from None
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def credit_code_problem(value: str) -> str | None:
    """Explain why ``value`` is not a valid unified social credit code, or return None if it is."""
    if not _CREDIT_CODE_RE.match(value):
        return _shape_problem(value) or "must be 18 characters of the GB 32100 alphabet (no I, O, S, V, Z)"
    expected = credit_code_check_char(value[:17])
    if value[17] != expected:
        return f"check character is {value[17]}, expected {expected}"
    return None


def is_credit_code(value: str) -> bool:
    """True when ``value`` is a well-formed unified social credit code with the right check character."""
    return credit_code_problem(value) is None


def is_mobile(value: str) -> bool:
    """True for an 11-digit mainland mobile number (1[3-9]xxxxxxxxx)."""
    return bool(_MOBILE_RE.match(value))
