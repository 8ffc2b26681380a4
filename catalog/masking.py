"""Masking rules for sensitive fields (脱敏规则): a registry of name -> function.

| kind       | keeps                                   | example                                   |
|------------|-----------------------------------------|-------------------------------------------|
| citizen_id | first 1 and last 2 characters           | 110105194912310021 -> 1***************21  |
| mobile     | first 3 and last 4 digits               | 13812345678 -> 138****5678                |
| name       | the first character                     | 张三丰 -> 张**                             |
| address    | the divisions down to the district      | 杭州市西湖区文三路100号 -> 杭州市西湖区****   |
|            | (区/县) or street (街道/镇/乡) level      | 上城区清波街道河坊街39号 -> 上城区清波街道**** |
| full       | nothing                                 | anything -> ****                          |

The address rule keeps what a case officer needs to route a case (which district or street
office) and drops road, number, compound, building and room. The mask is always four ``*``,
so it does not tell the length of what it hides. An address that does not start with a
recognisable division (a road name alone, a foreign address) is masked fully. Division names
are recognised by their suffixes, in the order they nest (省/自治区/特别行政区, then 市/自治州/州/
盟/地区, then 区/县/市/旗, then 街道/镇/乡); each name is two to nine Chinese characters with no
digits, so a road called 人民路 or a building number never counts as a division.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

#: the division levels in nesting order; each level is optional, none may repeat. A name may
#: not hold a suffix of a lower level: 西湖区市场路 is the district 西湖区, not a city 西湖区市.
_LEVELS = (
    r"[\u4e00-\u9fff]{1,7}?(?:省|自治区|特别行政区)",
    r"[^\W\d\sA-Za-z区县镇乡旗]{1,8}?(?:自治州|地区|市|州|盟)",
    r"[^\W\d\sA-Za-z镇乡街]{1,8}?(?:区|县|市|旗)",
    r"[^\W\d\sA-Za-z]{1,8}?(?:街道|镇|乡)",
)
_ADDRESS_PREFIX = re.compile("".join(f"(?:{level})?" for level in _LEVELS))
_HIDDEN = "****"
#: the rule that hides everything (the only one for fields that are not text)
FULL = "full"


def address_prefix(value: str) -> str:
    """The administrative divisions at the start of a Chinese address ('' when there are none)."""
    m = _ADDRESS_PREFIX.match(value)
    return m.group(0) if m else ""


#: rule name -> function of a non-empty text; see :func:`mask_rule`
_RULES: dict[str, Callable[[str], str]] = {}


def mask_rule(name: str) -> Callable[[Callable[[str], str]], Callable[[str], str]]:
    """Register a masking rule: ``@mask_rule("plate")`` over ``def f(value: str) -> str``.

    A new rule is this one function; the directory accepts its name in a field's ``mask`` at
    once (``catalog.directory.model.FieldSpec``), and every value that leaves goes through it in the
    disclosure projection. The function gets a non-empty string and returns what may be shown.
    """

    def register(fn: Callable[[str], str]) -> Callable[[str], str]:
        if name in _RULES:
            raise ValueError(f"masking rule {name!r} is already registered")
        _RULES[name] = fn
        return fn

    return register


def rule_names() -> list[str]:
    """The registered masking rules, sorted."""
    return sorted(_RULES)


@mask_rule("citizen_id")
def _citizen_id(value: str) -> str:
    n = len(value)
    return value[:1] + "*" * max(n - 3, 0) + value[-2:] if n > 3 else "*" * n


@mask_rule("mobile")
def _mobile(value: str) -> str:
    n = len(value)
    return value[:3] + "*" * max(n - 7, 0) + value[-4:] if n > 7 else "*" * n


@mask_rule("name")
def _name(value: str) -> str:
    return value[:1] + "*" * (len(value) - 1)


@mask_rule("address")
def _address(value: str) -> str:
    return address_prefix(value) + _HIDDEN


@mask_rule(FULL)
def _full(value: str) -> str:
    return _HIDDEN


def mask(kind: str | None, value: Any) -> Any:
    """Mask ``value`` by rule ``kind``; non-strings and None pass through."""
    if kind is None or not isinstance(value, str) or not value:
        return value
    try:
        rule = _RULES[kind]
    except KeyError:
        raise ValueError(f"unknown mask kind {kind!r} (rules: {', '.join(rule_names())})") from None
    return rule(value)
