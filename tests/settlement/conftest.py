"""A small world for settlement: HQ → city provider → county provider, merchants with rate
cards, terminals under the county and the city provider, and a journal writer."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from cardops.auth.models import User
from cardops.channel.models import Provider
from cardops.core.clock import freeze
from cardops.gateway.models import Journal
from cardops.merchants.models import Merchant
from cardops.settlement import service
from cardops.terminals.models import Supplier, Terminal, TerminalModel
from cardops.terminals.service import location_for
from tests.factories import make_user

_seq = itertools.count(1)
DAY = date(2026, 3, 10)  # business day used by the tests (cut-off 23:00 Asia/Shanghai)


def at(day: date, hh: int, mm: int = 0) -> datetime:
    """A local (Asia/Shanghai) wall-clock time as UTC."""
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=UTC) - timedelta(hours=8)


@dataclass
class World:
    db: Session
    finance: User
    hq: Provider
    city: Provider
    county: Provider
    merchants: list[Merchant]
    t_county: Terminal  # terminal of merchants[0] under the county provider
    t_city: Terminal  # terminal of merchants[1] directly under the city provider
    t_none: Terminal  # terminal of merchants[2] with no provider

    def journal(
        self,
        kind: str,
        amount: int,
        *,
        terminal: Terminal | None = None,
        card_type: str = "debit",
        when: datetime | None = None,
        approved: bool = True,
        original_id: int | None = None,
    ) -> int:
        terminal = terminal or self.t_county
        n = next(_seq)
        values: dict[str, Any] = {
            "kind": kind,
            "amount": amount,
            "card_type": card_type,
            "approved": approved,
            "terminal_id": terminal.id,
            "merchant_id": terminal.merchant_id,
            "tid": terminal.tid or "",
            "stan": f"{n % 1000000:06d}",
            "rrn": f"{n:012d}",
            "created_at": when or at(DAY, 12),
            "original_id": original_id,
            "response_code": "00" if approved else "05",
            "request": {},
            "response": {},
        }
        result = self.db.execute(insert(Journal).values(**values))
        return int(result.inserted_primary_key[0])  # type: ignore[index]


def _provider(db: Session, code: str, **kw: Any) -> Provider:
    found = db.execute(select(Provider).where(Provider.code == code)).scalar_one_or_none()
    if found is not None:
        for key, value in kw.items():
            setattr(found, key, value)
        db.flush()
        return found
    provider = Provider(code=code, **kw)
    db.add(provider)
    db.flush()
    return provider


@pytest.fixture
def world(db: Session) -> Iterator[World]:
    freeze(at(DAY + timedelta(days=1), 9))  # the morning after
    hq = db.execute(select(Provider).where(Provider.level == "hq")).scalars().first()
    if hq is None:
        hq = _provider(db, "ST-HQ", name="总部", level="hq")
    city = _provider(
        db,
        "ST-CITY",
        name="成都市服务商",
        level="city",
        parent_id=hq.id,
        rate_card={"debit": {"rate_bp": 40, "cap": 1800}, "credit": {"rate_bp": 50}},
        activation_reward=5000,
    )
    county = _provider(
        db,
        "ST-COUNTY",
        name="郫都区服务商",
        level="county",
        parent_id=city.id,
        rate_card={"debit": {"rate_bp": 45, "cap": 1900}, "credit": {"rate_bp": 55}},
    )
    supplier = Supplier(name=f"ST supplier {next(_seq)}", kind="manufacturer")
    db.add(supplier)
    db.flush()
    model = TerminalModel(code=f"ST-POS-{next(_seq)}", name="POS", supplier_id=supplier.id)
    db.add(model)
    db.flush()
    merchants = []
    for name in ("蓉城便利店", "天府餐饮", "小李水果店"):
        m = Merchant(
            name=name,
            kind="corporate",
            state="approved",
            mid=f"8{next(_seq):014d}",
            bank_name="中国银行",
            bank_account="6222020200112233445",
            bank_account_name=name,
        )
        db.add(m)
        merchants.append(m)
    db.flush()
    finance = make_user(db, "finance_manager")
    for m in merchants:
        service.set_merchant_rate(
            session=db,
            actor=finance,
            merchant_id=m.id,
            debit_bp=60,
            debit_cap=2000,
            credit_bp=60,
            effective_from=date(2026, 1, 1),
        )

    def unit(provider: Provider | None, merchant: Merchant) -> Terminal:
        n = next(_seq)
        loc = location_for(db, "provider", (provider or hq).id, (provider or hq).name)
        t = Terminal(
            serial=f"ST{n:08d}",
            model_id=model.id,
            supplier_id=supplier.id,
            state="at_provider",
            location_id=loc.id,
            provider_id=provider.id if provider else None,
            merchant_id=merchant.id,
            tid=f"{90000000 + n}"[:8],
        )
        db.add(t)
        db.flush()
        return t

    w = World(
        db=db,
        finance=finance,
        hq=hq,
        city=city,
        county=county,
        merchants=merchants,
        t_county=unit(county, merchants[0]),
        t_city=unit(city, merchants[1]),
        t_none=unit(None, merchants[2]),
    )
    yield w
    freeze(None)
