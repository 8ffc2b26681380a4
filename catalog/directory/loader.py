"""Load a department's directory YAML file, with errors that name file, line and field."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from catalog.directory import sources
from catalog.directory.grades import DEFAULT_POLICY, GRADE_NAMES, GradePolicy
from catalog.directory.model import DirectoryFile


@dataclass(frozen=True)
class DirectoryProblem:
    """One thing wrong with a directory file."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class DirectoryFileError(ValueError):
    """A directory file failed validation; ``problems`` lists each finding."""

    def __init__(self, problems: list[DirectoryProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _node_at(node: yaml.Node | None, loc: tuple[int | str, ...]) -> tuple[yaml.Node | None, str]:
    """Walk a composed YAML node along a pydantic error location; return the deepest node found."""
    path: list[str] = []
    current = node
    for part in loc:
        if isinstance(current, yaml.MappingNode) and isinstance(part, str):
            found = next((v for k, v in current.value if getattr(k, "value", None) == part), None)
            if found is None:
                break
            current = found
            path.append(part)
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(current.value):
                break
            current = current.value[part]
            path.append(f"[{part}]")
        else:
            break
    return current, ".".join(path).replace(".[", "[")


def _without_tags(data: Any, loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """The error location without the source kind pydantic puts in it (``source.sql.table`` is
    ``source.table`` in the file): a part equal to the ``kind`` of the mapping reached."""
    out: list[int | str] = []
    current = data
    tagged = None  # the mapping whose tag was dropped: a key named like its kind is a key
    for part in loc:
        if (
            isinstance(current, dict)
            and current is not tagged
            and isinstance(part, str)
            and current.get(sources.DISCRIMINATOR) == part
            and part in sources.source_kinds()
        ):
            tagged = current
            continue
        out.append(part)
        try:
            current = current[part]
        except (KeyError, IndexError, TypeError):
            current = None
    return tuple(out)


def _loc_path(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def _dataset_label(data: Any, loc: tuple[int | str, ...]) -> str:
    """'datasets[2] (SCJ-001)' style prefix so the department knows which dataset is meant."""
    if len(loc) >= 2 and loc[0] == "datasets" and isinstance(loc[1], int):
        try:
            code = data["datasets"][loc[1]]["code"]
        except (KeyError, IndexError, TypeError):
            return ""
        return f" (dataset {code})"
    return ""


def _syntax_problem(exc: yaml.YAMLError, text: str, name: str) -> DirectoryProblem:
    """A YAML syntax error on a line the text has (an unclosed quote is found at the end of the
    stream, past the last line), naming where the unfinished construct started."""
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    if line is not None:
        line = max(1, min(line, len(text.splitlines()) or 1))
    message = f"YAML syntax: {getattr(exc, 'problem', None) or exc}"
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark is not None and context_mark.line + 1 != line:
        message += f" ({context} started on line {context_mark.line + 1})"
    return DirectoryProblem(name, line, "", message)


def _duplicate_keys(root: yaml.Node | None, name: str) -> list[DirectoryProblem]:
    """Keys given twice in one mapping. YAML keeps the last silently, so an edit that pasted a
    second ``share:`` would drop the first unseen; the directory refuses it instead."""
    problems: list[DirectoryProblem] = []
    seen: set[int] = set()  # an alias repeats a node: visit it once
    stack: list[tuple[yaml.Node, str]] = [(root, "")] if root is not None else []
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                k = key.value if isinstance(key, yaml.ScalarNode) else None
                if isinstance(k, str) and k != "<<":
                    line = key.start_mark.line + 1
                    if k in first:
                        problems.append(
                            DirectoryProblem(
                                name,
                                line,
                                f"{path}.{k}".lstrip("."),
                                f"given twice in one mapping (first on line {first[k]}); keep one",
                            )
                        )
                    else:
                        first[k] = line
                stack.append((value, f"{path}.{k}" if k is not None else path))
        elif isinstance(node, yaml.SequenceNode):
            stack += [(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
    return sorted(problems, key=lambda p: p.line or 0)


def load_directory_file(path: Path, *, policy: GradePolicy | None = None) -> DirectoryFile:
    """Parse and validate one directory file; raise DirectoryFileError naming file, line and field."""
    return load_directory_text(read_directory_text(path), str(path), policy=policy)


def read_directory_text(path: Path) -> str:
    """A directory file's text; raise DirectoryFileError when it cannot be read or is not UTF-8."""
    name = str(path)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DirectoryFileError(
            [DirectoryProblem(name, None, "", f"not UTF-8 text (byte {exc.start}); save the file as UTF-8")]
        ) from None
    except OSError as exc:
        raise DirectoryFileError([DirectoryProblem(name, None, "", f"cannot read: {exc.strerror}")]) from None


def load_directory_text(text: str, name: str, *, policy: GradePolicy | None = None) -> DirectoryFile:
    """Parse and validate a directory file's text (a portal upload or edit); raise
    DirectoryFileError naming ``name``, line and field."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DirectoryFileError([_syntax_problem(exc, text, name)]) from None
    duplicates = _duplicate_keys(root, name)
    if duplicates:
        raise DirectoryFileError(duplicates)
    if not isinstance(data, dict):
        raise DirectoryFileError(
            [DirectoryProblem(name, 1, "", "expected a mapping with department and datasets")]
        )
    try:
        directory = DirectoryFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        known_kinds = ", ".join(sources.source_kinds())
        for err in exc.errors():
            loc = _without_tags(data, tuple(err["loc"]))
            kind_error = err["type"] if loc[-1:] == ("source",) else ""
            if kind_error in ("union_tag_invalid", "union_tag_not_found"):
                loc = (*loc, sources.DISCRIMINATOR)
            node, field = _node_at(root, loc)
            line = node.start_mark.line + 1 if node is not None else None
            msg = err["msg"].removeprefix("Value error, ")
            if kind_error == "union_tag_invalid":
                msg = f"unknown kind {err.get('ctx', {}).get('tag')!r}; known kinds: {known_kinds}"
            elif kind_error == "union_tag_not_found":
                field = _loc_path(loc)
                msg = f"required field is missing (known kinds: {known_kinds})"
            elif err["type"] == "missing":
                field = _loc_path(loc)
                msg = "required field is missing"
            elif err["type"] == "extra_forbidden":
                field = _loc_path(loc)
                msg = "unknown field (check its spelling)"
            problems.append(DirectoryProblem(name, line, field + _dataset_label(data, loc), msg))
        raise DirectoryFileError(problems) from None
    problems = policy_problems(directory, root, name, policy or DEFAULT_POLICY)
    if problems:
        raise DirectoryFileError(problems)
    return directory


def policy_problems(
    directory: DirectoryFile, root: yaml.Node | None, name: str, policy: GradePolicy
) -> list[DirectoryProblem]:
    """What the file declares that its datasets' grades do not allow (the grade policy)."""
    problems = []
    for i, ds in enumerate(directory.datasets):
        rules = policy[ds.grade]
        if ds.open.open and not rules.may_be_open:
            loc: tuple[int | str, ...] = ("datasets", i, "open", "open")
            node, field = _node_at(root, loc)
            problems.append(
                DirectoryProblem(
                    name,
                    node.start_mark.line + 1 if node is not None else None,
                    field + f" (dataset {ds.code})",
                    f"a {ds.grade.value} ({GRADE_NAMES[ds.grade]}) dataset may not be open data "
                    "(grade policy: may_be_open is false)",
                )
            )
    return problems


def directory_files(path: Path) -> list[Path]:
    """A directory file, or every ``*.yaml``/``*.yml`` file in a folder (sorted)."""
    if path.is_dir():
        return sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
    return [path]
