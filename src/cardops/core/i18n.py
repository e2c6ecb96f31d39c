"""Simplified Chinese and English for every string a user sees.

Source strings are English. Each domain keeps its Chinese translations in
``src/cardops/<domain>/locale/zh_CN.po`` (so domains never edit one shared file); all of
them are merged into one catalog at first use. ``tests/core/test_i18n.py`` fails when a
user-visible string has no translation.
"""

from __future__ import annotations

from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
LOCALE_NAMES = {"zh_CN": "简体中文", "en": "English"}

current_locale: ContextVar[str] = ContextVar("current_locale", default=DEFAULT_LOCALE)

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@lru_cache
def catalog(locale: str) -> dict[str, str]:
    if locale == "en":
        return {}
    merged: dict[str, str] = {}
    for path in sorted(_PACKAGE_ROOT.glob(f"*/locale/{locale}.po")):
        with path.open("rb") as handle:
            for message in read_po(handle, locale=locale):
                if message.id and message.string and isinstance(message.id, str):
                    merged[message.id] = str(message.string)
    return merged


class Choices:
    """A message parameter that is itself a list of translatable labels: groups of
    alternatives, e.g. ``Choices([("ID copy (front)",), ("Business licence", "Other")])``
    renders "ID copy (front), Business licence / Other" in English and
    "身份证复印件（正面）、营业执照或其他" in Chinese."""

    def __init__(self, groups: Any) -> None:
        self.groups = [tuple(group) for group in groups]

    def render(self, locale: str | None = None) -> str:
        code = locale or current_locale.get()
        chinese = code.startswith("zh")
        items = (
            ("或" if chinese else " / ").join(translate(label, code) for label in group)
            for group in self.groups
        )
        return ("、" if chinese else ", ").join(items)

    def __str__(self) -> str:
        return self.render("en")

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __bool__(self) -> bool:
        return bool(self.groups)


def translate(message: str, locale: str | None = None, /, **params: Any) -> str:
    """Translate an English source string to ``locale`` (default: the request's)."""
    text = catalog(locale or current_locale.get()).get(message, message)
    if params:
        params = {
            key: value.render(locale) if isinstance(value, Choices) else value
            for key, value in params.items()
        }
        try:
            text = text.format(**params)
        except (KeyError, IndexError, ValueError):
            text = message.format(**params)
    return text


def gettext(message: str, /, **params: Any) -> str:
    return translate(message, None, **params)


_ = gettext


def N_(message: str) -> str:
    """Mark a string for translation where it is defined; translate it where it is shown."""
    return message


def negotiate(accept_language: str | None) -> str:
    """Pick zh_CN or en from a browser's Accept-Language header."""
    if not accept_language:
        return DEFAULT_LOCALE
    wanted = []
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().replace("-", "_")
        if tag and tag != "*":
            wanted.append(tag)
    for tag in wanted:
        picked = normalize(tag)
        if picked:
            return picked
    return DEFAULT_LOCALE


def normalize(locale: str | None) -> str | None:
    if not locale:
        return None
    locale = locale.replace("-", "_")
    if locale in LOCALES:
        return locale
    if locale.lower().startswith("zh"):
        return "zh_CN"
    if locale.lower().startswith("en"):
        return "en"
    return None
