"""SLA arithmetic in business hours: pure functions, no database.

A :class:`Calendar` holds the operator's working hours per ISO weekday (1 = Monday) in its
time zone, the holidays (days off) and the make-up working days (调休: a Saturday or Sunday that
is worked; it uses Monday's hours). :func:`add_business_minutes` walks forward from a start
through working time only, skipping any pause intervals (a ticket waiting for the customer), and
returns the deadline, or ``None`` when an open pause stops the clock before the target is
reached. :func:`business_minutes_between` measures the working time between two instants.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_HOURS: dict[int, tuple[tuple[time, time], ...]] = {
    day: ((time(9, 0), time(18, 0)),) for day in range(1, 6)
}
# The furthest a deadline is searched for (a calendar without any working hour has none).
HORIZON_DAYS = 3 * 366

Pause = tuple[datetime, datetime | None]  # (paused at, resumed at | None while still paused)


@dataclass(frozen=True)
class Calendar:
    timezone: str = DEFAULT_TIMEZONE
    hours: dict[int, tuple[tuple[time, time], ...]] = field(
        default_factory=lambda: dict(DEFAULT_HOURS)
    )
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()  # make-up working days on a weekend

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def day_hours(self, day: date) -> tuple[tuple[time, time], ...]:
        if day in self.holidays:
            return ()
        if day in self.workdays:
            return self.hours.get(day.isoweekday()) or self.hours.get(1) or ()
        return self.hours.get(day.isoweekday(), ())


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def working_intervals(calendar: Calendar, start: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Working intervals (UTC) from ``start`` on, in order; the first may be cut at ``start``."""
    start = _utc(start)
    zone = calendar.zone
    day = start.astimezone(zone).date()
    for _ in range(HORIZON_DAYS):
        for opens, closes in calendar.day_hours(day):
            a = datetime.combine(day, opens, zone).astimezone(UTC)
            if closes == time(0, 0):  # "24:00"
                b = datetime.combine(day + timedelta(days=1), time(0, 0), zone).astimezone(UTC)
            else:
                b = datetime.combine(day, closes, zone).astimezone(UTC)
            if b <= start:
                continue
            yield max(a, start), b
        day += timedelta(days=1)


def _subtract(
    interval: tuple[datetime, datetime], pauses: Sequence[tuple[datetime, datetime | None]]
) -> list[tuple[datetime, datetime]]:
    """``interval`` minus every pause (an open pause runs to the end of time)."""
    pieces = [interval]
    for paused, resumed in pauses:
        p0 = _utc(paused)
        p1 = _utc(resumed) if resumed is not None else datetime.max.replace(tzinfo=UTC)
        cut: list[tuple[datetime, datetime]] = []
        for a, b in pieces:
            if p1 <= a or p0 >= b:
                cut.append((a, b))
                continue
            if a < p0:
                cut.append((a, p0))
            if p1 < b:
                cut.append((p1, b))
        pieces = cut
    return pieces


def add_business_minutes(
    calendar: Calendar, start: datetime, minutes: int, pauses: Sequence[Pause] = ()
) -> datetime | None:
    """The instant ``minutes`` of working time after ``start``, not counting the pauses.

    ``None`` when the clock is stopped by an open pause before the target is reached, or when
    the calendar has no working time within the horizon.
    """
    if minutes < 0:
        raise ValueError("minutes must not be negative")
    remaining = timedelta(minutes=minutes)
    start = _utc(start)
    if remaining == timedelta(0):
        return start
    open_from = min(
        (_utc(p) for p, r in pauses if r is None), default=None
    )  # the clock stops here for good
    for interval in working_intervals(calendar, start):
        if open_from is not None and interval[0] >= open_from:
            return None
        for a, b in _subtract(interval, pauses):
            span = b - a
            if span >= remaining:
                return a + remaining
            remaining -= span
    return None


def business_minutes_between(
    calendar: Calendar, start: datetime, end: datetime, pauses: Sequence[Pause] = ()
) -> int:
    """Whole minutes of working time in [start, end), not counting the pauses."""
    start, end = _utc(start), _utc(end)
    if end <= start:
        return 0
    total = timedelta(0)
    for interval in working_intervals(calendar, start):
        if interval[0] >= end:
            break
        clipped = (interval[0], min(interval[1], end))
        for a, b in _subtract(clipped, pauses):
            total += b - a
    return int(total.total_seconds() // 60)


def parse_hours(value: str) -> tuple[tuple[time, time], ...]:
    """``"09:00-12:00, 13:00-18:00"`` → intervals; ``""`` → a day off. Raises ValueError."""
    result: list[tuple[time, time]] = []
    for part in value.replace("，", ",").split(","):
        part = part.strip()
        if not part:
            continue
        left, sep, right = part.replace("–", "-").partition("-")
        if not sep:
            raise ValueError(part)
        opens = _clock(left)
        closes = time(0, 0) if right.strip() == "24:00" else _clock(right)
        if closes != time(0, 0) and closes <= opens:
            raise ValueError(part)
        if result and (result[-1][1] == time(0, 0) or opens < result[-1][1]):
            raise ValueError(part)
        result.append((opens, closes))
    return tuple(result)


def _clock(text: str) -> time:
    hh, sep, mm = text.strip().partition(":")
    if not sep or not hh.isdigit() or not mm.isdigit() or len(mm) != 2:
        raise ValueError(text)
    return time(int(hh), int(mm))


def format_hours(intervals: Sequence[tuple[time, time]]) -> str:
    return ", ".join(
        f"{a:%H:%M}-{'24:00' if b == time(0, 0) else format(b, '%H:%M')}" for a, b in intervals
    )
