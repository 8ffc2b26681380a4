"""The quality-rule registry: every kind is complete, the directory's rule vocabulary and the
registry agree, a kind registered from outside runs end to end, bad kinds and parameters are
refused with errors naming the field and the kind."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from catalog.directory.loader import load_directory_file
from catalog.directory.model import FieldRules
from quality import ColumnRule, DatasetRules, split, validate
from quality.rules import (
    RuleKind,
    UnknownRuleKind,
    register_rule_kind,
    registered,
    rule_kind,
    rule_kinds,
    unregister_rule_kind,
)
from quality.rules.base import NUMBER, STRING, BadValue, Column, ColumnType, GxExpectation, NoParams, fmt
from quality.validate import validate_chunks
from sharehub.pipeline.adapters import quality_rules

BUILT_IN = [
    "citizen_id",
    "compare",
    "credit_code",
    "enum",
    "max_length",
    "mobile",
    "not_future",
    "not_null",
    "range",
    "regex",
    "unique",
]

#: valid parameters of every built-in kind, and a value each kind refuses
EXAMPLES: dict[str, tuple[dict[str, Any], Any]] = {
    "not_null": ({}, None),
    "unique": ({}, "a@x.cn"),
    "citizen_id": ({}, "110105194912310025"),
    "credit_code": ({}, "91350100M000100Y44"),
    "mobile": ({}, "12800138000"),
    "enum": ({"values": ["A", "B"]}, "Z"),
    "range": ({"min": 0, "max": 150}, 200),
    "regex": ({"pattern": r"^[A-Z]{2}\d{2}$"}, "ab12"),
    "max_length": ({"max": 4}, "王五五五五"),
    "not_future": ({}, "2999-01-01"),
    "compare": ({"op": "<=", "other": "legal_days"}, 30),
}


# --------------------------------------------------------------------------- a toy kind


def _even_mask(values: Any) -> Any:
    return (values % 2 == 0).to_numpy()


def _even(c: Column[NoParams]) -> GxExpectation:
    from quality import _gx

    cls = _gx.column_map_expectation(
        "ExpectColumnValuesToBeEvenForRegistryTest",
        "column_values.registry_test_even",
        _even_mask,
        "Values are even integers.",
    )
    return cls, {"column": c.field}


def _explain_even(bad: BadValue[NoParams]) -> str:
    return f"{fmt(bad.value)} is odd, expected an even number"


EVEN: RuleKind[NoParams] = RuleKind(
    name="even",
    params=NoParams,
    expectation=_even,
    explain=_explain_even,
    meaning="an even integer",
)


@pytest.fixture
def even() -> Iterator[RuleKind[NoParams]]:
    before = rule_kinds()
    with registered(EVEN) as kind:
        assert "even" in rule_kinds()
        yield kind
    assert rule_kinds() == before  # nothing leaks into other tests


# --------------------------------------------------------------------------- every kind is complete


def test_the_built_in_kinds_are_registered() -> None:
    assert rule_kinds() == BUILT_IN


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_kind_has_a_parameter_model_a_builder_and_an_explanation(name: str) -> None:
    kind = rule_kind(name)
    assert isinstance(kind, RuleKind) and kind.name == name
    assert dataclasses.is_dataclass(kind.params)
    assert kind.meaning.strip()
    params, bad_value = EXAMPLES[name]
    parsed = kind.parse("f", params)
    assert isinstance(parsed, kind.params)

    # the builder gives a real GX expectation
    column_type = ColumnType(STRING if kind.string_values or name in ("enum", "unique") else NUMBER)
    if name == "not_future":
        from quality.rules.base import DATE_OBJ

        column_type = ColumnType(DATE_OBJ)
    cls, kwargs = kind.expectation(Column("f", parsed, column_type))
    expectation = cls(meta={"sharehub_check": 0}, **kwargs)
    assert type(expectation).__name__.startswith("Expect")
    assert "f" in (kwargs.get("column"), kwargs.get("column_A"), kwargs.get("column_B"))

    # the explanation says something about the bad value, in the department's terms
    message = kind.explain(BadValue(bad_value, parsed, {"f": bad_value, "legal_days": 20}, ["row 7"]))
    assert isinstance(message, str) and message.strip()
    assert not message.startswith("f:")  # validation adds the field


# --------------------------------------------------------------------------- directory <-> registry


def _vocabulary_disagreement() -> tuple[set[str], set[str]]:
    """(rules the directory lets a department write that quality does not know,
    kinds quality knows that the directory cannot declare)."""
    written = set(FieldRules.model_fields)
    known = set(rule_kinds())
    return written - known, known - written


def test_the_directory_vocabulary_and_the_registry_agree() -> None:
    unknown_to_quality, not_declarable = _vocabulary_disagreement()
    assert not unknown_to_quality, (
        f"FieldRules declares kinds quality has not registered: {unknown_to_quality}"
    )
    assert not not_declarable, f"registered kinds the directory cannot declare: {not_declarable}"


def test_the_agreement_check_notices_a_kind_only_one_side_knows(even: RuleKind[NoParams]) -> None:
    assert _vocabulary_disagreement() == (set(), {"even"})


def test_every_directory_rule_reaches_quality_as_kind_and_params() -> None:
    rules = FieldRules(
        not_null=True,
        unique=True,
        citizen_id=True,
        credit_code=True,
        mobile=True,
        enum=["A", "B"],
        range={"min": 0, "max": 10},
        regex="^A",
        max_length=0,
        not_future=True,
        compare={"op": "<", "other": "g"},
    )
    declared = rules.declared()
    # every entry of the vocabulary, once, flags first (the order of a row's reasons)
    assert [k for k, _ in declared] == [
        "not_null",
        "unique",
        "citizen_id",
        "credit_code",
        "mobile",
        "not_future",
        "enum",
        "range",
        "regex",
        "max_length",
        "compare",
    ]
    assert dict(declared) == {
        "not_null": {},
        "unique": {},
        "citizen_id": {},
        "credit_code": {},
        "mobile": {},
        "not_future": {},
        "enum": {"values": ["A", "B"]},
        "range": {"min": 0.0, "max": 10.0},
        "regex": {"pattern": "^A"},
        "max_length": {"max": 0},
        "compare": {"op": "<", "other": "g"},
    }
    # and quality accepts each as it is (the parameter names agree with the kinds' models)
    for kind, params in declared:
        assert ColumnRule("f", kind, params).kind == kind


def test_unset_and_empty_rules_declare_nothing() -> None:
    assert FieldRules().declared() == []
    assert FieldRules(enum=[], regex="").declared() == []
    assert FieldRules(range={"min": 1}).declared() == [("range", {"min": 1.0})]


def test_the_pipeline_hands_every_declared_rule_to_quality(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            department: {code: TEST, name: 测试局}
            datasets:
              - code: TEST-001
                name: 测试数据
                summary: 用于测试
                share: {type: conditional, condition: 办理业务需要}
                grade: important
                primary_key: [uscc]
                subject: {field: uscc, kind: enterprise}
                fields:
                  - {name: uscc, label: 代码, rules: {not_null: true, credit_code: true, unique: true}}
                  - {name: status, label: 状态, rules: {enum: [A, B], max_length: 1, not_null: true}}
                  - {name: promised, label: 承诺, type: integer, rules: {compare: {op: "<=", other: legal}}}
                  - {name: legal, label: 法定, type: integer, rules: {range: {min: 1, max: 60}}}
                source: {kind: sql, connection: test_db, table: ent}
            """
        ),
        encoding="utf-8",
    )
    (spec,) = load_directory_file(path).datasets
    rules = quality_rules(spec, previous_row_count=None)
    assert [(r.field, r.kind, dict(r.params)) for r in rules.columns] == [
        ("uscc", "not_null", {}),
        ("uscc", "unique", {}),
        ("uscc", "credit_code", {}),
        ("status", "not_null", {}),
        ("status", "enum", {"values": ["A", "B"]}),
        ("status", "max_length", {"max": 1}),
        ("promised", "compare", {"op": "<=", "other": "legal"}),
        ("legal", "range", {"min": 1.0, "max": 60.0}),
    ]


# --------------------------------------------------------------------------- a kind added from outside


def test_a_registered_kind_is_validated_end_to_end(even: RuleKind[NoParams]) -> None:
    table = pa.table({"_row": [1, 2, 3, 4, 5], "n": pa.array([2, 3, None, 8, -7], pa.int64())})
    rules = DatasetRules(columns=[ColumnRule("n", "even"), ColumnRule("n", "range", {"max": 5})])
    out = validate(table, rules, suite_name="even")
    assert not out.success
    assert {rid: [v.to_dict() for v in vs] for rid, vs in out.violations.items()} == {
        2: [{"field": "n", "rule": "even", "message": "n: 3 is odd, expected an even number"}],
        4: [{"field": "n", "rule": "range", "message": "n: 8 is above the maximum 5"}],
        5: [{"field": "n", "rule": "even", "message": "n: -7 is odd, expected an even number"}],
    }
    (exp,) = [e for e in out.expectations if e.rule == "even"]
    assert exp.expectation_type == "expect_column_values_to_be_even_for_registry_test"
    assert (exp.unexpected_count, exp.sample_rows) == (2, (2, 5))

    # the quarantine / correction list carries the kind's explanation
    good, bad = split(table, out)
    assert good.column("_row").to_pylist() == [1, 3]
    reasons = {
        r: json.loads(x) for r, x in zip(bad["_row"].to_pylist(), bad["_reasons"].to_pylist(), strict=True)
    }
    assert reasons[5] == [{"field": "n", "rule": "even", "message": "n: -7 is odd, expected an even number"}]

    # and the pipeline's chunked path finds the same rows
    chunked = validate_chunks([table.slice(0, 2), table.slice(2)], rules, row_id="_row", suite_name="even")
    assert chunked.violations == out.violations


def test_a_kind_cannot_be_registered_twice_or_half_made() -> None:
    with pytest.raises(ValueError, match="'not_null' is already registered"):
        register_rule_kind(rule_kind("not_null"))
    with pytest.raises(TypeError, match="expected a RuleKind"):
        register_rule_kind("even")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="parameter model must be a dataclass"):
        RuleKind(name="odd", params=dict, expectation=_even, explain=_explain_even, meaning="odd")
    with pytest.raises(UnknownRuleKind):
        unregister_rule_kind("never_registered")


def test_an_unregistered_kind_is_gone(even: RuleKind[NoParams]) -> None:
    unregister_rule_kind("even")
    with pytest.raises(UnknownRuleKind):
        ColumnRule("n", "even")
    register_rule_kind(EVEN)  # the fixture unregisters it again


# --------------------------------------------------------------------------- refused kinds and parameters


def test_an_unknown_kind_names_the_field_and_the_kind() -> None:
    with pytest.raises(
        ValueError, match=r"unknown rule kind 'even' on field 'age'; known kinds: citizen_id, "
    ):
        ColumnRule("age", "even")
    with pytest.raises(ValueError, match=r"unknown rule kind 'nope' on field 'x'"):
        DatasetRules.from_dict({"columns": [{"field": "x", "kind": "nope"}]})


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("range", {}, r"^range rule on 'age' needs 'min' and/or 'max'$"),
        (
            "range",
            {"min": 0, "maximum": 9},
            r"^range rule on 'age' has no parameter 'maximum' \(it takes min, max\)$",
        ),
        ("compare", {"op": "<>", "other": "b"}, r"^compare rule on 'age' needs 'op' in \['!=', '<'"),
        ("compare", {"op": "<"}, r"^compare rule on 'age' needs the parameter 'other'$"),
        ("compare", {"op": "<", "other": 3}, r"^compare rule on 'age' needs the 'other' field name$"),
        ("enum", {"values": "AB"}, r"^enum rule on 'age' needs a non-empty list 'values'$"),
        ("enum", {"values": []}, r"^enum rule on 'age' needs a non-empty list 'values'$"),
        ("enum", {}, r"^enum rule on 'age' needs the parameter 'values'$"),
        ("regex", {"pattern": "("}, r"^regex rule on 'age' has an invalid 'pattern': missing \)"),
        ("regex", {"pattern": 5}, r"^regex rule on 'age' needs a string 'pattern'$"),
        ("max_length", {"max": -1}, r"^max_length rule on 'age' needs a non-negative int 'max'$"),
        ("max_length", {"max": True}, r"^max_length rule on 'age' needs a non-negative int 'max'$"),
        (
            "not_null",
            {"strict": True},
            r"^not_null rule on 'age' has no parameter 'strict' \(it takes none\)$",
        ),
        ("not_null", ["x"], r"^not_null rule on 'age' needs its parameters as a mapping, got list$"),
    ],
)
def test_parameters_the_kind_refuses_are_refused_clearly(kind: str, params: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ColumnRule("age", kind, params)


def test_a_registered_kind_refuses_parameters_its_model_does_not_take(even: RuleKind[NoParams]) -> None:
    with pytest.raises(ValueError, match=r"^even rule on 'n' has no parameter 'by' \(it takes none\)$"):
        ColumnRule("n", "even", {"by": 3})
