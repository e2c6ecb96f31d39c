"""The domains that make up cardops, in dependency order.

The web app, the CLI, permissions, demo data and translations are collected from these
packages, so a new domain plugs in by adding its name here and the modules it needs:
``permissions.py``, ``api.py`` (``router``), ``views.py`` (``router``, ``NAV``),
``cli.py`` (``app``, ``NAME``), ``demo.py`` (``load``).
"""

from __future__ import annotations

import importlib
from types import ModuleType

DOMAINS: tuple[str, ...] = (
    "core",
    "auth",
    "audit",
    "approvals",
    "parties",
    "ledger",
    "notify",
    "backup",
    "access",
    "cards",
    "parking",
    "wallets",
    "terminals",
    "channel",
    "merchants",
    "gateway",
    "servicedesk",
    "repairs",
    "warranty",
    "settlement",
    "reconciliation",
    "risk",
)


def domain_modules(module: str) -> list[ModuleType]:
    """Import ``cardops.<domain>.<module>`` for every domain that has it."""
    found = []
    for domain in DOMAINS:
        name = f"cardops.{domain}.{module}"
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return found


def load_models() -> None:
    """Import every domain's models so ``Base.metadata`` knows all tables."""
    import cardops.core.models  # noqa: F401

    domain_modules("models")
