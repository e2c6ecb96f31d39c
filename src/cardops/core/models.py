"""Small shared tables: document-number counters and cache versions."""

from __future__ import annotations

from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from cardops.core.clock import local, utcnow
from cardops.core.db import Base


class Counter(Base):
    """One row per numbered document kind (receipts, orders, …)."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


class CacheVersion(Base):
    """A number bumped whenever data that a hot path caches changes."""

    __tablename__ = "cache_versions"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


def next_value(session: Session, name: str) -> int:
    row = session.execute(
        select(Counter).where(Counter.name == name).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        row = Counter(name=name, value=0)
        session.add(row)
    row.value += 1
    session.flush()
    return row.value


def next_number(session: Session, kind: str, prefix: str) -> str:
    """A gap-free number per kind and local business year, e.g. ``RC2026-000123``."""
    year = local(utcnow()).year
    value = next_value(session, f"{kind}:{year}")
    return f"{prefix}{year}-{value:06d}"


def bump_version(session: Session, name: str) -> int:
    row = session.get(CacheVersion, name, with_for_update=True)
    if row is None:
        row = CacheVersion(name=name, value=0)
        session.add(row)
    row.value += 1
    session.flush()
    return row.value


def current_version(session: Session, name: str) -> int:
    row = session.get(CacheVersion, name)
    return row.value if row else 0
