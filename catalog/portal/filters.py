"""Jinja filters for dates, numbers and ratios in the page's language (Chinese conventions)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import jinja2

from catalog.portal import i18n


def _lang(ctx: Any) -> str:
    lang = ctx.get("lang")
    return lang if isinstance(lang, str) and lang in i18n.LANGS else i18n.DEFAULT_LANG


@jinja2.pass_context
def date(ctx: Any, value: dt.date | dt.datetime | None) -> str:
    return i18n.format_date(value, _lang(ctx))


@jinja2.pass_context
def datetime(ctx: Any, value: dt.datetime | None) -> str:
    return i18n.format_datetime(value, _lang(ctx))


@jinja2.pass_context
def number(ctx: Any, value: float | int | None, digits: int = 0) -> str:
    return i18n.format_number(value, _lang(ctx), digits=digits)


@jinja2.pass_context
def percent(ctx: Any, value: float | None) -> str:
    return i18n.format_percent(value, _lang(ctx))


def as_json(value: Any) -> str:
    """Compact JSON text (for values shown as code)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def install(env: jinja2.Environment) -> None:
    """Register the filters on the portal's template environment."""
    env.filters.update(date=date, datetime=datetime, number=number, percent=percent, json=as_json)
