"""Fixtures of the service desk tests: a frozen clock on a Monday morning in Shanghai."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from cardops.core.clock import freeze

SH = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=SH)


def at(day: str, clock: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=SH)


@pytest.fixture
def monday() -> Iterator[datetime]:
    freeze(MONDAY_10)
    yield MONDAY_10
    freeze(None)
