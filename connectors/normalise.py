"""Declared normalisations of a field's text (the directory's ``normalize``), and the hints that
name them when a value fails without one.

Applied before casting, vectorised with pyarrow.compute, in the order of
:data:`NORMALISATIONS`:

* ``nfkc``: Unicode NFKC: full-width digits, letters and punctuation (``９１３３…``, ``（）``)
  become ASCII;
* ``strip_spaces``: every space inside the value removed (``1101 0519…``);
* ``upper``: upper case (a citizen ID's check character ``x``);
* ``thousands``: the digit-group commas of a number removed (``1,234.50``, ``-12,000``); only
  values shaped like a grouped number are touched.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

NORMALISATIONS = ("nfkc", "strip_spaces", "upper", "thousands")
_GROUPED = r"^[+-]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?$"
_GROUPED_RE = re.compile(_GROUPED)
_DECLARE = "declare normalize: [{}] on the field to accept {}"


def normalise(column: pa.Array, steps: Sequence[str]) -> pa.Array:
    """``column`` (text) with the declared ``steps`` applied; other types are returned as they are."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return column
    unknown = set(steps) - set(NORMALISATIONS)
    if unknown:
        raise ValueError(f"unknown normalisation(s): {', '.join(sorted(unknown))}")
    for step in NORMALISATIONS:
        if step not in steps:
            continue
        if step == "nfkc":
            column = pc.utf8_normalize(column, "NFKC")
        elif step == "strip_spaces":
            column = pc.replace_substring_regex(column, r"\s+", "")
        elif step == "upper":
            column = pc.utf8_upper(column)
        elif step == "thousands":
            grouped = pc.match_substring_regex(pc.utf8_trim_whitespace(column), _GROUPED)
            column = pc.if_else(grouped, pc.replace_substring(column, ",", ""), column)
    return column


def hint(text: str) -> str | None:
    """Which declared normalisation would have made ``text`` readable, as a message tail, or None."""
    value = text.strip()
    if _GROUPED_RE.match(value):
        return f"it has thousands separators ({_DECLARE.format('thousands', 'them')})"
    wide = next((c for c in value if unicodedata.normalize("NFKC", c) != c and not c.isspace()), None)
    if wide is not None:
        return f"it has the full-width character {wide!r} ({_DECLARE.format('nfkc', 'it')})"
    return None
