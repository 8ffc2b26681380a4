"""Build valid and deliberately invalid citizen IDs and unified social credit codes."""

from __future__ import annotations

import datetime as dt
import random

from quality.checksums import (
    CITIZEN_ID_CHECK,
    CREDIT_CODE_ALPHABET,
    citizen_id_check_char,
    credit_code_check_char,
)

_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def citizen_id(area: str, birth: dt.date, seq: int) -> str:
    """An 18-digit ID: area code, birth date, 3-digit sequence (odd = male), check character."""
    body = f"{area}{birth:%Y%m%d}{seq:03d}"
    return body + citizen_id_check_char(body)


def wrong_check(value: str, alphabet: str, rng: random.Random) -> str:
    """``value`` with its last (check) character replaced by a different one from ``alphabet``."""
    return value[:-1] + rng.choice([c for c in alphabet if c != value[-1]])


def citizen_id_wrong_check(value: str, rng: random.Random) -> str:
    """A citizen ID whose check character is wrong."""
    return wrong_check(value, CITIZEN_ID_CHECK, rng)


def citizen_id_impossible_birth(area: str, year: int, rng: random.Random, seq: int) -> str:
    """A citizen ID with a correct check character around a birth date that does not exist."""
    month, day = rng.choice([(2, 30), (2, 31), (4, 31), (6, 31), (9, 31), (11, 31), (13, 1), (0, 12)])
    body = f"{area}{year:04d}{month:02d}{day:02d}{seq:03d}"
    return body + citizen_id_check_char(body)


def org_code(body8: str) -> str:
    """GB 11714 organisation code: 8 characters plus the MOD 11 check character."""
    total = sum(
        (int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body8, _ORG_WEIGHTS, strict=True)
    )
    check = 11 - total % 11
    return body8 + ("X" if check == 10 else "0" if check == 11 else str(check))


def credit_code(rng: random.Random, area: str, est: dt.date, *, authority: str = "9", kind: str = "1") -> str:
    """A valid 统一社会信用代码; enterprises founded since 2016 get the new ``MA`` organisation codes."""
    if est.year >= 2016:
        body8 = "MA" + rng.choice("23") + "".join(rng.choice(CREDIT_CODE_ALPHABET) for _ in range(5))
    else:
        body8 = str(rng.randint(1, 7)) + f"{rng.randrange(10**7):07d}"
    first17 = f"{authority}{kind}{area}{org_code(body8)}"
    return first17 + credit_code_check_char(first17)


def credit_code_wrong_check(value: str, rng: random.Random) -> str:
    """A credit code whose check character is wrong."""
    return wrong_check(value, CREDIT_CODE_ALPHABET, rng)


def credit_code_bad_letter(value: str) -> str:
    """A credit code with a letter the alphabet leaves out (0 typed as O, 1 as I)."""
    for i in range(8, 17):
        if value[i] == "0":
            return value[:i] + "O" + value[i + 1 :]
        if value[i] == "1":
            return value[:i] + "I" + value[i + 1 :]
    return value[:8] + "O" + value[9:]
