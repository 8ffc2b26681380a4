"""The portal's words in Chinese (the default) and English, and Chinese conventions for dates
and numbers.

Every text a page shows is a message key: ``t("nav.directory")``. Each page module registers
its own messages with :func:`register` (``key -> (中文, English)``); a key that is not registered
raises ``KeyError``, so a template with a typo fails its test instead of showing the key.
Messages are ``str.format`` templates: ``t("results.count", n=12)``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from zoneinfo import ZoneInfo

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"
#: the hub's local time: dates a department sees are dates in Beijing time
LOCAL_TZ = ZoneInfo("Asia/Shanghai")

_MESSAGES: dict[str, tuple[str, str]] = {}


def register(messages: Mapping[str, tuple[str, str]]) -> None:
    """Add messages; registering a key twice with other words is a programming error."""
    for key, words in messages.items():
        old = _MESSAGES.get(key)
        if old is not None and old != words:
            raise ValueError(f"portal message {key!r} registered twice with different words")
        _MESSAGES[key] = words


def message(key: str, lang: str, **values: object) -> str:
    """The message ``key`` in ``lang`` with ``values`` filled in."""
    zh, en = _MESSAGES[key]
    text = en if lang == "en" else zh
    return text.format(**values) if values else text


def known(key: str) -> bool:
    """Whether ``key`` is a registered message."""
    return key in _MESSAGES


def local(at: dt.datetime) -> dt.datetime:
    """A timestamp in the hub's local time (naive timestamps are UTC, as the hub DB stores them)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(LOCAL_TZ)


def format_date(value: dt.date | dt.datetime | None, lang: str) -> str:
    """``2025年9月26日`` in Chinese, ``2025-09-26`` in English; a timestamp by its local date."""
    if value is None:
        return "—"
    if isinstance(value, dt.datetime):
        value = local(value).date()
    if lang == "en":
        return value.isoformat()
    return f"{value.year}年{value.month}月{value.day}日"


def format_datetime(value: dt.datetime | None, lang: str) -> str:
    """``2025年9月26日 14:05`` (Beijing time) in Chinese, ``2025-09-26 14:05`` in English."""
    if value is None:
        return "—"
    t = local(value)
    return f"{format_date(t, lang)} {t:%H:%M}"


def format_number(value: float | int | None, lang: str, *, digits: int = 0) -> str:
    """Thousands grouped with commas (both languages); large Chinese counts also say 万/亿."""
    if value is None:
        return "—"
    text = f"{value:,.{digits}f}"
    if lang == "zh" and abs(value) >= 100_000_000:
        return f"{value / 100_000_000:.2f}亿"
    if lang == "zh" and abs(value) >= 100_000:
        return f"{value / 10_000:.1f}万"
    return text


def format_percent(value: float | None, lang: str) -> str:
    """A ratio (0.953) as ``95.3%``."""
    if value is None:
        return "—"
    return f"{value * 100:.1f}%"


register(
    {
        "hub.name": ("政务数据共享交换平台", "Government data sharing hub"),
        "nav.skip": ("跳到正文", "Skip to content"),
        "nav.main": ("主导航", "Main navigation"),
        "nav.directory": ("数据目录", "Directory"),
        "nav.sign_in": ("登录", "Sign in"),
        "nav.sign_out": ("退出", "Sign out"),
        "nav.language": ("English", "中文"),
        "nav.signed_in_as": ("{user}（{dept}）", "{user} ({dept})"),
        "nav.hub_wide": ("全市", "hub-wide"),
        "role.publisher": ("目录发布员", "publisher"),
        "role.approver": ("审批员", "approver"),
        "role.applicant": ("申请员", "applicant"),
        "role.auditor": ("审计员", "auditor"),
        "role.admin": ("管理员", "admin"),
        "login.title": ("工作人员登录", "Staff sign-in"),
        "login.username": ("用户名", "User name"),
        "login.password": ("密码", "Password"),
        "login.submit": ("登录", "Sign in"),
        "login.failed": (
            "用户名或密码错误，或账号已停用。",
            "Wrong user name or password, or the account is disabled.",
        ),
        "login.throttled": ("登录尝试过于频繁，请稍后再试。", "Too many sign-in attempts; try again later."),
        "login.expired": ("会话已结束，请重新登录。", "Your session has ended; please sign in again."),
        "error.title": ("出错了", "Something went wrong"),
        "error.not_found": ("页面不存在。", "This page does not exist."),
        "error.forbidden": ("您没有权限执行此操作。", "You are not allowed to do this."),
        "error.csrf": (
            "表单已过期或来源不明，请刷新页面后重试。",
            "The form has expired or did not come from this site; reload the page and try again.",
        ),
        "error.sign_in": ("请先登录。", "Please sign in first."),
        "error.back": ("返回数据目录", "Back to the directory"),
        "common.none": ("无", "none"),
        "common.yes": ("是", "yes"),
        "common.no": ("否", "no"),
        "common.page": ("第 {page} / {pages} 页", "Page {page} of {pages}"),
        "common.previous": ("上一页", "Previous"),
        "common.next": ("下一页", "Next"),
        "common.submit": ("提交", "Submit"),
        "common.search": ("搜索", "Search"),
        "common.download_csv": ("下载 CSV", "Download CSV"),
        "common.download_xlsx": ("下载 Excel", "Download Excel"),
        "common.pagination": ("分页", "Pagination"),
    }
)
