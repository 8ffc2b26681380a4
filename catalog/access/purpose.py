"""The purpose of a call (X-Road style): who it is made for and which case it serves.

Calls on personal data carry ``X-End-User-Id`` (the officer or citizen the call is made for,
使用人) and ``X-Case-Number`` (the case it serves, 办件编号). Both land in the audit record, so
they must say something: a placeholder (``-``, ``n/a``, ``无``, ``test``, one character
repeated…) is refused with 400 ``purpose_invalid``, and each deployment sets the format of
both headers as a regular expression (``purpose_end_user_pattern``,
``purpose_case_number_pattern``), e.g. its case-number scheme ``^QYKB-\\d{4}-\\d{6}$``.

HTTP header values arrive as bytes; Starlette decodes them as Latin-1. Clients send Chinese
names as UTF-8, so :func:`header_text` re-reads the bytes as UTF-8; a value that is not valid
UTF-8 keeps U+FFFD replacement characters, which no purpose accepts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from catalog.errors import HubError

#: at least two characters, no surrounding spaces, no control characters
DEFAULT_END_USER_PATTERN = r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]{0,98})[^\s\x00-\x1f\x7f]$"
#: four to a hundred letters, digits, Chinese characters and the usual separators
DEFAULT_CASE_NUMBER_PATTERN = r"^[0-9A-Za-z\u4e00-\u9fff][0-9A-Za-z\u4e00-\u9fff_./:()（）\[\]【】#-]{3,99}$"

#: values that say nothing, refused whatever the patterns allow (compared case-insensitively)
PLACEHOLDERS = frozenset(
    {
        "-", "--", "---", "_", ".", "?", "n/a", "na", "n.a.", "none", "null", "nil", "undefined",
        "unknown", "test", "testing", "demo", "example", "sample", "tbd", "todo", "placeholder",
        "dummy", "anonymous", "anon", "nobody", "user", "system", "admin", "root", "default",
        "无", "空", "暂无", "没有", "测试", "未知", "不详", "匿名", "系统", "默认",
    }
)  # fmt: skip


def header_text(raw: str | None) -> str | None:
    """A header value as the client wrote it (UTF-8), from Starlette's Latin-1 decoding."""
    if raw is None or raw == "":
        return None
    try:
        data = raw.encode("latin-1")
    except UnicodeEncodeError:
        return raw  # already text (a test client or an ASGI server that decoded it)
    return data.decode("utf-8", "replace")


def is_placeholder(value: str) -> bool:
    """True for values that identify nothing: known placeholders and one repeated character."""
    text = value.strip().casefold()
    return text in PLACEHOLDERS or len(set(text)) <= 1


@dataclass(frozen=True)
class PurposeRules:
    """The deployment's formats for the two purpose headers."""

    end_user: re.Pattern[str]
    case_number: re.Pattern[str]

    @classmethod
    def from_patterns(cls, end_user: str, case_number: str) -> PurposeRules:
        return cls(re.compile(end_user), re.compile(case_number))

    def check(self, end_user: str | None, case_number: str | None) -> None:
        """400 ``purpose_required`` when a header is missing, ``purpose_invalid`` when it says nothing."""
        if not end_user or not case_number:
            raise HubError("purpose_required")
        for header, value, pattern in (
            ("X-End-User-Id", end_user, self.end_user),
            ("X-Case-Number", case_number, self.case_number),
        ):
            if "\ufffd" in value or is_placeholder(value) or not pattern.fullmatch(value):
                raise HubError("purpose_invalid", header=header)


DEFAULT_RULES = PurposeRules.from_patterns(DEFAULT_END_USER_PATTERN, DEFAULT_CASE_NUMBER_PATTERN)
