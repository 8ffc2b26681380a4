"""Masking rules for sensitive fields (脱敏规则).

| kind        | keeps                          | example                                  |
|-------------|--------------------------------|------------------------------------------|
| citizen_id  | first 1 and last 2 characters  | 110105194912310021 -> 1***************21 |
| mobile      | first 3 and last 4 digits      | 13812345678 -> 138****5678               |
| name        | the first character            | 张三丰 -> 张**                            |
| address     | all but the last 8 characters  | 西湖区文三路100号3幢 -> 西湖区文******** |
| full        | nothing                        | anything -> ****                         |
"""

from __future__ import annotations

from typing import Any


def mask(kind: str | None, value: Any) -> Any:
    """Mask ``value`` by rule ``kind``; non-strings and None pass through."""
    if kind is None or not isinstance(value, str) or not value:
        return value
    n = len(value)
    if kind == "citizen_id":
        return value[:1] + "*" * max(n - 3, 0) + value[-2:] if n > 3 else "*" * n
    if kind == "mobile":
        return value[:3] + "*" * max(n - 7, 0) + value[-4:] if n > 7 else "*" * n
    if kind == "name":
        return value[:1] + "*" * (n - 1)
    if kind == "address":
        return value[:-8] + "*" * 8 if n > 8 else "*" * n
    if kind == "full":
        return "****"
    raise ValueError(f"unknown mask kind {kind!r}")
