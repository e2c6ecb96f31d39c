"""Small shared tables: document-number counters and cache versions."""

from __future__ import annotations

from sqlalchemy import String, bindparam, insert, update
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


# built once; a Core statement, so no Counter object is ever held (and gone stale) in a session
_ADVANCE = (
    update(Counter)
    .where(Counter.name == bindparam("counter"))
    .values(value=Counter.value + bindparam("by"))
    .returning(Counter.value)
)


def advance(session: Session, name: str, by: int = 1) -> int:
    """Add ``by`` to the counter ``name`` (a new counter starts at 0) and return its new
    value. The row stays locked until the transaction ends (SQLite: the transaction holds
    the write lock anyway), which serialises everyone who numbers under it; ``by=0`` only
    takes the lock and reads the value."""
    connection = session.connection()
    value = connection.execute(_ADVANCE, {"counter": name, "by": by}).scalar_one_or_none()
    if value is None:
        connection.execute(insert(Counter).values(name=name, value=by))
        return by
    return int(value)


def next_value(session: Session, name: str) -> int:
    return advance(session, name, 1)


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
