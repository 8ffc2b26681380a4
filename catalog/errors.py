"""Stable API error codes with English and Chinese messages."""

from __future__ import annotations

from typing import Any

#: code -> (English, Chinese). Codes are stable: clients branch on them, not on the text.
MESSAGES: dict[str, tuple[str, str]] = {
    "dataset_not_found": ("dataset {code} is not in the directory", "目录中没有信息资源 {code}"),
    "not_shared": ("dataset {code} is not shared (share type none)", "信息资源 {code} 不予共享"),
    "filter_not_allowed": (
        "filter on {field} is not allowed: only key fields and subject",
        "不允许按 {field} 查询：只能按主键或主体查询",
    ),
    "incomplete_key": ("give every primary key field: {fields}", "请提供全部主键字段：{fields}"),
    "filter_required": ("give the primary key ({fields}) or a subject", "请提供主键（{fields}）或主体"),
    "no_subject": ("dataset {code} has no subject field", "信息资源 {code} 没有主体字段"),
    "bad_filter": ("value of {field} has the wrong type", "{field} 的取值类型不正确"),
    "bad_cursor": ("cursor is not valid", "分页游标无效"),
    "certificate_not_found": ("certificate {identifier} not found", "未找到电子证照 {identifier}"),
}


class ApiError(Exception):
    """An error the API reports with a stable code."""

    def __init__(self, error_code: str, status: int, /, **params: Any) -> None:
        self.code = error_code
        self.status = status
        self.params = params
        super().__init__(error_code)


def error_body(exc: ApiError) -> dict[str, Any]:
    """The JSON body: ``{"error": {"code", "message", "message_zh"}}``."""
    en, zh = MESSAGES.get(exc.code, (exc.code, exc.code))
    return {
        "error": {"code": exc.code, "message": en.format(**exc.params), "message_zh": zh.format(**exc.params)}
    }
