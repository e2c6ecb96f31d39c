"""Console navigation, collected from every domain's ``views.NAV`` and filtered by permission."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from cardops.auth.models import User
from cardops.auth.service import has_permission
from cardops.core.i18n import N_, gettext


@dataclass(frozen=True, slots=True)
class NavItem:
    label: str  # English source, translated on display
    url: str
    permission: str | None
    section: str = N_("Platform")
    order: int = 100


@dataclass(slots=True)
class NavLink:
    label: str
    url: str


@lru_cache
def _all_items() -> tuple[NavItem, ...]:
    from cardops.core.registry import domain_modules

    items: list[NavItem] = []
    for module in domain_modules("views"):
        items.extend(getattr(module, "NAV", []))
    return tuple(sorted(items, key=lambda i: (i.order, i.label)))


def navigation(user: User) -> list[tuple[str, list[NavLink]]]:
    sections: dict[str, list[NavLink]] = {}
    for item in _all_items():
        if item.permission is None or has_permission(user, item.permission):
            sections.setdefault(gettext(item.section), []).append(
                NavLink(gettext(item.label), item.url)
            )
    return list(sections.items())
