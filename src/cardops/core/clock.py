"""The one place that tells the time; tests may freeze it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from cardops.core.config import get_settings

_frozen: datetime | None = None

# the time of a record that holds "since always" (e.g. the rate card in force before the
# first change was recorded)
SINCE_ALWAYS = datetime(1970, 1, 1, tzinfo=UTC)


def utcnow() -> datetime:
    """Aware UTC now (or the frozen time in tests)."""
    return _frozen if _frozen is not None else datetime.now(UTC)


def freeze(at: datetime | None) -> None:
    global _frozen
    _frozen = at


def as_utc(value: datetime) -> datetime:
    """Databases without time-zone support hand back naive datetimes: they are UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def local(value: datetime) -> datetime:
    """Convert a stored UTC time to the operator's time zone for display."""
    return as_utc(value).astimezone(ZoneInfo(get_settings().timezone))


def today() -> date:
    """Today's date in the operator's time zone (not the machine's, which is often UTC)."""
    return local(utcnow()).date()
