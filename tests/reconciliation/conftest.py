"""Reconciliation fixtures: a day's journal written straight into ``gateway_journal`` (as the
gateway journals it), merchants with MIDs, and a bank file written by the bank simulator."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from cardops.auth import service as auth
from cardops.auth.models import User
from cardops.gateway.models import Journal
from cardops.merchants.models import Merchant

DAY = date(2026, 11, 20)
_rrn = itertools.count(1)


@dataclass
class Day:
    """A business day's journal with an easy way to add rows."""

    db: Session
    day: date = DAY
    merchants: list[Merchant] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    _stan: Any = field(default_factory=lambda: itertools.count(1))

    def add(self, *, amount: int = 1000, kind: str = "purchase", **values: Any) -> dict[str, Any]:
        merchant = self.merchants[len(self.rows) % len(self.merchants)]
        stan = f"{next(self._stan):06d}"
        tid = values.pop("tid", f"T{merchant.id:07d}"[:8])
        row: dict[str, Any] = {
            "created_at": datetime(DAY.year, DAY.month, DAY.day, 2, 0, tzinfo=UTC)
            + timedelta(minutes=len(self.rows)),
            "kind": kind,
            "mti": "0200",
            "tid": tid,
            "mid": merchant.mid,
            "merchant_id": merchant.id,
            "stan": stan,
            "local_date": self.day.strftime("%Y%m%d"),
            "dup_key": f"{tid}{self.day:%Y%m%d}{stan}{kind[:2]}",
            "amount": amount,
            "currency": "156",
            "pan_masked": "622848******1234",
            "card_type": "debit",
            "rrn": f"{900000000000 + next(_rrn):012d}",
            "auth_code": "A1B2C3",
            "response_code": "00",
            "approved": True,
            "route": "upstream",
            "reversed": False,
            "voided": False,
            "completed": False,
            "request": {},
            "response": {},
        }
        row.update(values)
        self.rows.append(row)
        return row

    def save(self, rows: list[dict[str, Any]] | None = None) -> None:
        todo = self.rows if rows is None else rows
        self.db.connection().execute(insert(cast(Table, Journal.__table__)), todo)
        self.db.flush()


@pytest.fixture
def system(db: Session) -> User:
    return auth.system_user(db)


@pytest.fixture
def journal_day(db: Session) -> Day:
    merchants = []
    for n, name in enumerate(("成都蓉城便利店有限公司", "锦江区好又多超市, 二分店")):
        merchant = Merchant(
            name=name,
            kind="corporate",
            mid=f"8985101541{n:05d}",
            state="approved",
        )
        db.add(merchant)
        merchants.append(merchant)
    db.flush()
    return Day(db=db, merchants=merchants)


def standard_day(day: Day) -> Day:
    """24 rows of every kind the bank clears, plus rows it must not see or that moved no money."""
    for n in range(16):
        day.add(amount=1000 + 137 * n, card_type="credit" if n % 3 == 0 else "debit")
    day.add(kind="completion", amount=8800)
    day.add(kind="refund", amount=500)
    day.add(kind="void", amount=1137)
    day.add(kind="reversal", amount=1274)
    day.add(amount=1274, reversed=True)  # a reversed purchase: FAILED at the bank
    day.add(amount=4242, approved=False, response_code="51")  # declined upstream: FAILED
    day.add(amount=777, route="on-us")  # our own wallet: never at the bank
    day.add(kind="preauth", amount=9999)  # a hold moves no money: not cleared
    day.save()
    return day


def read_lines(path: Path) -> list[str]:
    return path.read_bytes().decode("gbk").splitlines()


def write_lines(path: Path, lines: list[str], *, fix_trailer: bool = True) -> None:
    """Write detail lines back as GBK with a trailer recomputed from them."""
    if fix_trailer:
        body = [line for line in lines if not line.startswith("#")]
        details = body[1:]
        total = 0
        for line in details:
            fields = line.rsplit(",", 3)
            if len(fields) == 4 and fields[3] == "SUCCESS" and "." in fields[1]:
                units, cents = fields[1].split(".", 1)
                if units.isdigit() and cents.isdigit():
                    total += int(units) * 100 + int(cents)
        lines = [*body, f"#TOTAL,{len(details)},{total // 100}.{total % 100:02d}"]
    path.write_bytes(("\n".join(lines) + "\n").encode("gbk"))
