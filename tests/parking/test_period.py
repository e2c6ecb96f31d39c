"""The monthly period rule: issue/top-up day to the day before the same day next month."""

from __future__ import annotations

from datetime import date

import pytest

from cardops.core.errors import ValidationFailed
from cardops.parking.service import monthly_period


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (date(2026, 6, 9), 1, date(2026, 7, 8)),  # the seed's example
        (date(2026, 1, 1), 1, date(2026, 1, 31)),
        (date(2026, 1, 15), 1, date(2026, 2, 14)),
        (date(2026, 1, 28), 1, date(2026, 2, 27)),
        (date(2026, 1, 29), 1, date(2026, 2, 27)),  # 29 Feb does not exist in 2026
        (date(2026, 1, 30), 1, date(2026, 2, 27)),
        (date(2026, 1, 31), 1, date(2026, 2, 27)),
        (date(2028, 1, 29), 1, date(2028, 2, 28)),  # leap year: 29 Feb exists
        (date(2028, 1, 31), 1, date(2028, 2, 28)),
        (date(2028, 2, 29), 1, date(2028, 3, 28)),
        (date(2026, 3, 31), 1, date(2026, 4, 29)),  # 30-day April
        (date(2026, 4, 30), 1, date(2026, 5, 29)),
        (date(2026, 5, 31), 1, date(2026, 6, 29)),
        (date(2026, 8, 31), 1, date(2026, 9, 29)),
        (date(2026, 12, 15), 1, date(2027, 1, 14)),  # December → January
        (date(2026, 12, 31), 1, date(2027, 1, 30)),
        (date(2026, 12, 1), 1, date(2026, 12, 31)),
        (date(2026, 11, 30), 3, date(2027, 2, 27)),
        (date(2027, 11, 30), 3, date(2028, 2, 28)),  # into a leap February
        (date(2026, 1, 31), 2, date(2026, 3, 30)),  # counted from the start, not chained
        (date(2026, 6, 9), 12, date(2027, 6, 8)),
        (date(2028, 2, 29), 12, date(2029, 2, 27)),
        (date(2026, 3, 1), 24, date(2028, 2, 29)),
    ],
)
def test_monthly_period(start: date, months: int, end: date) -> None:
    assert monthly_period(start, months) == (start, end)


@pytest.mark.parametrize("months", [0, -1, 25, True])
def test_months_out_of_range_are_refused(months: int) -> None:
    with pytest.raises(ValidationFailed) as info:
        monthly_period(date(2026, 6, 9), months)
    assert info.value.field == "months"
