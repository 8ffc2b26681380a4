"""Header rows of department files: which row is the header, and which column is which field.

Names are compared after Unicode NFKC (full-width ``（）`` and digits become ASCII), with every
space removed (trailing blanks, U+3000, zero-width spaces) and case folded, so ``名称（全称） ``
names the declared ``名称(全称)``. The header row is searched in the first
:data:`MAX_HEADER_ROWS` rows: title rows above it (``户籍人口信息表``, an export date) and the
group row of a two-row header (merged ``基本信息`` over ``编号 | 名称``) are skipped, and a
column whose name is split over two rows (a vertically merged cell) is found too.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from connectors.base import FileRefused, Reject

__all__ = ["FileRefused", "HeaderPlan", "header_key", "match_columns", "plan_header"]

MAX_HEADER_ROWS = 20
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff")
MISSING_COLUMN = "missing_column"
FILE = "file"


def header_key(name: str) -> str:
    """How header names are compared: NFKC, no spaces of any kind, case-folded."""
    text = unicodedata.normalize("NFKC", name)
    return "".join(c for c in text if not c.isspace() and c not in _INVISIBLE).casefold()


@dataclass
class HeaderPlan:
    """The header found in a file.

    ``line``: the (last) header row's number, 0 when the format names its columns (Parquet).
    ``names``: the output name of every source column: the declared field's name where the
    column is declared, the header text otherwise (``column_<n>`` for an empty one).
    ``missing``: declared ``(field, source name)`` pairs the header lacks.
    ``unmatched``: header texts that name no declared field.
    """

    line: int
    names: list[str]
    source: list[str]
    missing: list[tuple[str, str]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)

    def findings(self, file: str, *, unit: str = "line") -> list[Reject]:
        """One ``missing_column`` reject per declared column the file lacks."""
        where = f"{file}: {unit} {self.line}: " if self.line else f"{file}: "
        others = ", ".join(self.unmatched) or "none"
        return [
            Reject(
                file,
                self.line,
                target,
                None,
                f"{where}declared column {source} (field {target}) is not in the header; "
                f"columns not declared: {others}",
                rule=MISSING_COLUMN,
            )
            for target, source in self.missing
        ]


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def _candidates(rows: Sequence[Sequence[object]], i: int, combined: bool) -> list[list[str]]:
    """Per column, the names row ``i`` (and with ``combined`` the row below it) may give."""
    if not combined:
        return [[_text(v)] for v in rows[i]]
    top, below = list(rows[i]), list(rows[i + 1])
    width = max(len(top), len(below))
    parent = ""
    out = []
    for j in range(width):
        own = _text(top[j]) if j < len(top) else ""
        parent = own or parent  # a merged group cell spans the empty cells to its right
        child = _text(below[j]) if j < len(below) else ""
        out.append([c for c in (child, parent + child, own) if c] if child else [own])
    return out


def _score(cands: list[list[str]], wanted: Mapping[str, str]) -> int:
    found = {wanted[header_key(c)] for names in cands for c in names if header_key(c) in wanted}
    return len(found)


def plan_header(
    rows: Sequence[Sequence[object]],
    declared: Mapping[str, str] | None,
    *,
    file: str,
    unit: str = "line",
    first: int = 1,
    search: bool = True,
) -> HeaderPlan:
    """Find the header among the first ``rows`` (numbered from ``first``) and map its columns.

    ``declared`` maps each declared field to its source column name (None: the first row is
    the header, as it is). Raises :class:`FileRefused` when no row names a declared column,
    when the header is empty, or when it names a declared column twice.
    """
    if not rows:
        raise FileRefused(f"{file}: {unit} {first}: the header row is empty", first)
    if not declared:
        cands, index, span = _candidates(rows, 0, False), 0, 1
        if not any(c[0] for c in cands):
            raise FileRefused(f"{file}: {unit} {first}: the header row is empty", first)
    else:
        wanted = {header_key(src): target for target, src in declared.items()}
        best: tuple[int, int, int] | None = None  # (score, index, span)
        limit = min(len(rows), MAX_HEADER_ROWS if search else 1)
        for i in range(limit):
            for span in (1, 2) if i + 1 < len(rows) and search else (1,):
                score = _score(_candidates(rows, i, span == 2), wanted)
                if score and (best is None or score > best[0]):
                    best = (score, i, span)
        if best is None:
            shown = ", ".join(declared.values())
            raise FileRefused(
                f"{file}: no header: none of the first {limit} {unit}s names a declared column ({shown})"
            )
        _, index, span = best
        cands = _candidates(rows, index, span == 2)
    line = first + index + span - 1
    return _assign(cands, declared, file=file, where=f"{unit} {line}", line=line)


def _assign(
    cands: list[list[str]], declared: Mapping[str, str] | None, *, file: str, where: str, line: int
) -> HeaderPlan:
    cands = list(cands)
    while cands and not any(cands[-1]):
        cands.pop()  # empty cells after the last name are not columns (a trailing comma, Excel's width)
    names: list[str] = []
    source: list[str] = []
    taken: dict[str, int] = {}
    unmatched: list[str] = []
    wanted = {header_key(src): target for target, src in (declared or {}).items()}
    for j, options in enumerate(cands):
        match = next((o for o in options if header_key(o) in wanted), None)
        text = match or options[0]
        if match is not None:
            target = wanted[header_key(match)]
            if target in taken:
                raise FileRefused(
                    f"{file}: {where + ': ' if where else ''}the header names {match} twice "
                    f"(columns {taken[target] + 1} and {j + 1})",
                    line,
                )
            taken[target] = j
            names.append(target)
        else:
            if text:
                unmatched.append(text)
            names.append(text or f"column_{j + 1}")
        source.append(text)
    _dedupe(names, set(taken))
    missing = [(t, s) for t, s in (declared or {}).items() if t not in taken]
    return HeaderPlan(line, names, source, missing, unmatched)


def _dedupe(names: list[str], fixed: set[str]) -> None:
    """Make undeclared names unique (``name_2``) without touching declared fields' names."""
    seen = set(fixed)
    for j, name in enumerate(names):
        if name in fixed and names.index(name) == j:
            continue
        candidate, n = name, 2
        while candidate in seen:
            candidate, n = f"{name}_{n}", n + 1
        names[j] = candidate
        seen.add(candidate)


def match_columns(columns: Sequence[str], declared: Mapping[str, str] | None, *, file: str) -> HeaderPlan:
    """Map a format's own column names (Parquet, JSON keys) to declared fields (``line`` 0)."""
    return _assign([[c] for c in columns], declared, file=file, where="", line=0)
