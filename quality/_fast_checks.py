"""Vectorised versions of :mod:`quality.checksums` for whole columns (used inside GX metrics).

The per-value functions in ``checksums`` are slow in Python at a million rows; these do the same
checks with a regex in Arrow and the weighted sums in numpy, so a million IDs take well
under a second. Tests check that both agree.
"""

from __future__ import annotations

from typing import Any

from quality.checksums import (
    CITIZEN_ID_CHECK,
    CITIZEN_ID_WEIGHTS,
    CREDIT_CODE_ALPHABET,
    CREDIT_CODE_WEIGHTS,
)

_CITIZEN_ID_PATTERN = r"^[1-9][0-9]{16}[0-9X]$"
_CREDIT_CODE_PATTERN = r"^[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{10}$"
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _candidates(values: Any, pattern: str) -> tuple[Any, Any, Any]:
    """(mask of values matching ``pattern``, their positions, their bytes as an (n, 18) uint8 matrix)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(values, type=pa.string(), from_pandas=True)
    ok = pc.fill_null(pc.match_substring_regex(arr, pattern), False).to_numpy(zero_copy_only=False)
    idx = np.flatnonzero(ok)
    strings = arr.filter(pa.array(ok)).to_pylist()
    raw = np.frombuffer("".join(strings).encode("ascii"), dtype=np.uint8).reshape(len(strings), 18)
    return ok, idx, raw


def citizen_id_mask(values: Any) -> Any:
    """Boolean numpy array: which ``values`` (a pandas Series / sequence of str) are valid citizen IDs."""
    import numpy as np

    ok, idx, raw = _candidates(values, _CITIZEN_ID_PATTERN)
    if len(idx):
        digits = raw[:, :17].astype(np.int64) - 48
        expected = np.frombuffer(CITIZEN_ID_CHECK.encode("ascii"), dtype=np.uint8)[
            (digits @ np.array(CITIZEN_ID_WEIGHTS, dtype=np.int64)) % 11
        ]
        year = digits[:, 6] * 1000 + digits[:, 7] * 100 + digits[:, 8] * 10 + digits[:, 9]
        month = digits[:, 10] * 10 + digits[:, 11]
        day = digits[:, 12] * 10 + digits[:, 13]
        leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
        days = np.array(_DAYS, dtype=np.int64)[np.clip(month, 1, 12) - 1] + ((month == 2) & leap)
        real_date = (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= days)
        ok[idx] = real_date & (raw[:, 17] == expected)
    return ok


def credit_code_mask(values: Any) -> Any:
    """Boolean numpy array: which ``values`` are valid unified social credit codes."""
    import numpy as np

    ok, idx, raw = _candidates(values, _CREDIT_CODE_PATTERN)
    if len(idx):
        lookup = np.zeros(256, dtype=np.int64)
        for i, c in enumerate(CREDIT_CODE_ALPHABET):
            lookup[ord(c)] = i
        total = lookup[raw[:, :17]] @ np.array(CREDIT_CODE_WEIGHTS, dtype=np.int64)
        alphabet = np.frombuffer(CREDIT_CODE_ALPHABET.encode("ascii"), dtype=np.uint8)
        ok[idx] = raw[:, 17] == alphabet[(31 - total % 31) % 31]
    return ok
