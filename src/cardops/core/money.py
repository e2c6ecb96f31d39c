"""Money is an integer number of minor units (fen) plus a currency; never a float."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cardops.core.errors import ValidationFailed

_AMOUNT = re.compile(r"^\s*(-)?(\d{1,13})(?:\.(\d{1,2}))?\s*$")


@dataclass(frozen=True, slots=True)
class Money:
    minor: int
    currency: str = "CNY"

    def __str__(self) -> str:
        return f"{format_minor(self.minor)} {self.currency}"


def format_minor(minor: int) -> str:
    """1234 -> '12.34', -5 -> '-0.05'."""
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), 100)
    return f"{sign}{units:,}.{cents:02d}"


def parse_amount(text: str, *, field: str = "amount") -> int:
    """Parse a yuan amount typed by a user ('12', '12.3', '12.34') into fen."""
    match = _AMOUNT.match(text or "")
    if not match:
        raise ValidationFailed(
            "Enter an amount in yuan with at most two decimals, e.g. 12.50", field=field
        )
    sign, units, cents = match.groups()
    value = int(units) * 100 + int((cents or "0").ljust(2, "0"))
    return -value if sign else value
