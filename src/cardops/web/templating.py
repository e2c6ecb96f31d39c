"""Jinja2 for the console: one loader over every domain's ``templates/`` folder, i18n helpers."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from cardops.core.clock import SINCE_ALWAYS, local
from cardops.core.i18n import LOCALE_NAMES, current_locale, gettext
from cardops.core.money import format_minor

_ROOT = Path(__file__).resolve().parent.parent


def _datetime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    return local(value).strftime(fmt)


def _date(value: date | datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return local(value).strftime("%Y-%m-%d")
    return value.isoformat()


def _money(value: int | None, currency: str = "") -> str:
    if value is None:
        return ""
    return f"{format_minor(value)}{' ' + currency if currency else ''}"


def _nl2br(value: str | None) -> Markup:
    return Markup("<br>".join(escape(line) for line in (value or "").splitlines()))


def build_environment() -> Environment:
    dirs = [
        _ROOT / "web" / "templates",
        *sorted(p for p in _ROOT.glob("*/templates") if p.parent.name != "web"),
    ]
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(str(d)) for d in dirs]),
        autoescape=select_autoescape(["html", "xml"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        _=gettext,
        locale_names=LOCALE_NAMES,
        current_locale=lambda: current_locale.get(),
        SINCE_ALWAYS=SINCE_ALWAYS,  # the time of a version held "since always"
    )
    env.filters.update(dt=_datetime, d=_date, money=_money, nl2br=_nl2br)
    return env


environment = build_environment()


def render(name: str, **context: Any) -> str:
    return environment.get_template(name).render(**context)
