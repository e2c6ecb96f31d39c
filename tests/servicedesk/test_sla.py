"""The SLA arithmetic, checked against deadlines worked out by hand.

Calendar: Mon–Fri 09:00–18:00 Asia/Shanghai (UTC+8). 2026-11-23 is a Monday.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardops.servicedesk.sla import (
    Calendar,
    add_business_minutes,
    business_minutes_between,
    format_hours,
    parse_hours,
)

SH = ZoneInfo("Asia/Shanghai")
CAL = Calendar()


def at(day: str, clock: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=SH)


def test_within_one_working_day() -> None:
    assert add_business_minutes(CAL, at("2026-11-23", "10:00"), 90) == at("2026-11-23", "11:30")
    # the answer is in UTC
    due = add_business_minutes(CAL, at("2026-11-23", "10:00"), 90)
    assert due is not None and due.tzinfo == UTC and due.hour == 3


def test_overnight_carries_to_the_next_morning() -> None:
    # Mon 17:00 + 2 h: one hour on Monday, one on Tuesday from 09:00.
    assert add_business_minutes(CAL, at("2026-11-23", "17:00"), 120) == at("2026-11-24", "10:00")


def test_weekend_is_skipped() -> None:
    # Fri 17:30 + 1 h: 30 min on Friday, 30 min on Monday.
    assert add_business_minutes(CAL, at("2026-11-27", "17:30"), 60) == at("2026-11-30", "09:30")
    # Saturday at noon: nothing counts until Monday 09:00.
    assert add_business_minutes(CAL, at("2026-11-28", "12:00"), 30) == at("2026-11-30", "09:30")


def test_before_opening_starts_at_opening() -> None:
    assert add_business_minutes(CAL, at("2026-11-24", "07:15"), 30) == at("2026-11-24", "09:30")


def test_holiday_is_skipped() -> None:
    # New Year's Day 2027 is a Friday: Thu 31 Dec 17:00 + 2 h → Mon 4 Jan 10:00.
    cal = Calendar(holidays=frozenset({date(2027, 1, 1)}))
    assert add_business_minutes(cal, at("2026-12-31", "17:00"), 120) == at("2027-01-04", "10:00")
    # without the holiday it would be Friday 10:00
    assert add_business_minutes(CAL, at("2026-12-31", "17:00"), 120) == at("2027-01-01", "10:00")


def test_make_up_working_day_on_a_saturday() -> None:
    cal = Calendar(workdays=frozenset({date(2026, 11, 28)}))
    assert add_business_minutes(cal, at("2026-11-27", "17:30"), 60) == at("2026-11-28", "09:30")


def test_a_closed_pause_pushes_the_deadline() -> None:
    # Mon 10:00 + 4 h = 14:00; paused 11:00–13:00 → 16:00.
    pauses = [(at("2026-11-23", "11:00"), at("2026-11-23", "13:00"))]
    assert add_business_minutes(CAL, at("2026-11-23", "10:00"), 240) == at("2026-11-23", "14:00")
    assert add_business_minutes(CAL, at("2026-11-23", "10:00"), 240, pauses) == at(
        "2026-11-23", "16:00"
    )


def test_a_pause_overnight_only_costs_its_working_hours() -> None:
    # Mon 16:00 + 4 h, paused Mon 17:00 → Tue 10:00: 1 h Monday, then Tue 10:00–13:00.
    pauses = [(at("2026-11-23", "17:00"), at("2026-11-24", "10:00"))]
    assert add_business_minutes(CAL, at("2026-11-23", "16:00"), 240, pauses) == at(
        "2026-11-24", "13:00"
    )


def test_an_open_pause_stops_the_clock() -> None:
    pauses = [(at("2026-11-23", "11:00"), None)]
    assert add_business_minutes(CAL, at("2026-11-23", "10:00"), 240, pauses) is None
    # ... unless the target is reached before the pause starts
    assert add_business_minutes(CAL, at("2026-11-23", "10:00"), 30, pauses) == at(
        "2026-11-23", "10:30"
    )


def test_split_day_hours() -> None:
    cal = Calendar(hours={d: parse_hours("09:00-12:00, 13:30-18:00") for d in range(1, 6)})
    # Mon 11:00 + 2 h: 11–12, then 13:30–14:30
    assert add_business_minutes(cal, at("2026-11-23", "11:00"), 120) == at("2026-11-23", "14:30")


def test_no_working_hours_means_no_deadline() -> None:
    assert add_business_minutes(Calendar(hours={}), at("2026-11-23", "10:00"), 60) is None


def test_business_minutes_between() -> None:
    assert (
        business_minutes_between(CAL, at("2026-11-27", "17:00"), at("2026-11-30", "10:00")) == 120
    )
    pauses = [(at("2026-11-30", "09:00"), at("2026-11-30", "09:30"))]
    assert (
        business_minutes_between(CAL, at("2026-11-27", "17:00"), at("2026-11-30", "10:00"), pauses)
        == 90
    )
    assert business_minutes_between(CAL, at("2026-11-30", "10:00"), at("2026-11-27", "17:00")) == 0


def test_parse_and_format_hours() -> None:
    assert parse_hours("09:00-18:00") == ((time(9), time(18)),)
    assert parse_hours("") == ()
    assert format_hours(parse_hours("08:30-12:00，13:00-24:00")) == "08:30-12:00, 13:00-24:00"
    for bad in ("9-18", "18:00-09:00", "09:00-12:00, 11:00-13:00", "noon"):
        with pytest.raises(ValueError):
            parse_hours(bad)


@settings(derandomize=True, max_examples=50, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
    minutes=st.integers(min_value=0, max_value=5000),
)
def test_adding_then_measuring_gives_the_same_minutes(start: datetime, minutes: int) -> None:
    start = start.replace(second=0, microsecond=0, tzinfo=UTC)
    cal = Calendar(holidays=frozenset({date(2026, 10, 1), date(2027, 1, 1)}))
    due = add_business_minutes(cal, start, minutes)
    assert due is not None and due >= start
    assert business_minutes_between(cal, start, due) == minutes
    # a deadline always falls inside working hours (or on the start itself for 0)
    if minutes:
        local = due.astimezone(SH)
        assert local.isoweekday() <= 5 and time(9) < local.time() <= time(18)
        assert local.date() not in cal.holidays
