"""Masking rules are a registry: a new rule is one function, and the directory and the
disclosure projection take it at once; an unknown rule is refused naming the known ones."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from catalog import masking
from catalog.directory.model import FieldSpec


@pytest.fixture
def plate_rule() -> Iterator[str]:
    @masking.mask_rule("plate")
    def _plate(value: str) -> str:  # 浙A12345 -> 浙A*****
        return value[:2] + "*" * (len(value) - 2)

    yield "plate"
    masking._RULES.pop("plate")


def test_a_registered_rule_is_accepted_by_the_directory_and_applied(plate_rule: str) -> None:
    f = FieldSpec(name="plate_no", label="车牌号", sensitivity="sensitive", mask=plate_rule)
    assert f.mask == "plate"
    assert masking.mask(f.mask, "浙A12345") == "浙A*****"


def test_an_unknown_rule_is_refused_with_the_known_ones() -> None:
    with pytest.raises(
        ValidationError, match=r"unknown mask rule 'plate' \(rules: address, citizen_id, full"
    ):
        FieldSpec(name="plate_no", label="车牌号", sensitivity="sensitive", mask="plate")
    with pytest.raises(ValueError, match="unknown mask kind 'plate'"):
        masking.mask("plate", "浙A12345")


def test_a_rule_name_cannot_be_taken_twice() -> None:
    with pytest.raises(ValueError, match="already registered"):
        masking.mask_rule("name")(lambda v: v)


def test_the_built_in_rules_are_unchanged() -> None:
    assert masking.rule_names() == ["address", "citizen_id", "full", "mobile", "name"]
    assert masking.mask("citizen_id", "110105194912310021") == "1***************21"
    assert masking.mask("mobile", "13812345678") == "138****5678"
    assert masking.mask("name", "张三丰") == "张**"
    assert masking.mask("address", "杭州市西湖区文三路100号") == "杭州市西湖区****"
    assert masking.mask("full", "x") == "****"
    assert masking.mask("name", None) is None and masking.mask(None, "x") == "x"
    # the directory's JSON schema lists them (as the enum did before the registry)
    mask = FieldSpec.model_json_schema()["properties"]["mask"]["anyOf"][0]
    assert mask == {"enum": ["address", "citizen_id", "full", "mobile", "name"], "type": "string"}
