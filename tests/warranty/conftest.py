"""Set-up for the warranty tests: HQ → branch 成都 (四川) → dealer 郫县, a branch 北京, a
product model with a floor price, an installer, and the compensation approval chain."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from cardops.approvals import service as approvals
from cardops.auth.models import User
from cardops.channel import service as channel
from cardops.channel.models import Provider
from cardops.parties import service as parties
from cardops.parties.models import Person
from cardops.terminals.models import Supplier, TerminalModel
from cardops.warranty import service
from cardops.warranty.models import CardAllocation, CardRange, ServiceCard
from tests.factories import make_user

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)


@dataclass
class World:
    admin: User
    hq: Provider
    branch: Provider  # 成都, 四川
    dealer: Provider  # 郫县, under 成都
    other_branch: Provider  # 北京
    other_dealer: Provider  # under 北京
    model: TerminalModel
    cheap_model: TerminalModel
    installer: Person


def _fields(name: str, parent: Provider | None, **kw: object) -> channel.ProviderFields:
    return channel.ProviderFields(name=name, parent_id=parent.id if parent else None, **kw)  # type: ignore[arg-type]


@pytest.fixture
def world(db: Session) -> World:
    admin = make_user(db, "sysadmin")
    hq = channel.hq_provider(db) or channel.create_provider(
        session=db, actor=admin, code="HQ", level="hq", fields=_fields("总部", None)
    )
    branch = channel.create_provider(
        session=db,
        actor=admin,
        code="W-CD",
        level="city",
        fields=_fields("成都分公司", hq, provinces=["四川"]),
    )
    dealer = channel.create_provider(
        session=db, actor=admin, code="W-PX", level="county", fields=_fields("郫县经销商", branch)
    )
    other_branch = channel.create_provider(
        session=db,
        actor=admin,
        code="W-BJ",
        level="city",
        fields=_fields("北京分公司", hq, provinces=["北京"]),
    )
    other_dealer = channel.create_provider(
        session=db,
        actor=admin,
        code="W-HD",
        level="county",
        fields=_fields("海淀经销商", other_branch),
    )
    supplier = Supplier(name="W-SUP", kind="manufacturer")
    db.add(supplier)
    db.flush()
    model = TerminalModel(code="W-POS", name="智能 POS", supplier_id=supplier.id, unit_price=30000)
    cheap = TerminalModel(code="W-MINI", name="Mini POS", supplier_id=supplier.id, unit_price=9000)
    db.add_all([model, cheap])
    db.flush()
    service.set_model_terms(
        session=db, actor=admin, model_id=model.id, floor_price=39900, points=15
    )
    installer = parties.create_person(session=db, actor=admin, name="王师傅", mobile="13900139000")
    approvals.define_chain(
        session=db,
        actor=admin,
        kind="compensation",
        name_en="Compensation",
        name_zh="补偿申请",
        steps=["call_supervisor"],
    )
    return World(admin, hq, branch, dealer, other_branch, other_dealer, model, cheap, installer)


def make_range(db: Session, world: World, *, start: int = 1, count: int = 100) -> CardRange:
    return service.generate_range(
        session=db, actor=world.admin, prefix="JD", width=8, start=start, count=count
    )


def number(seq: int) -> str:
    return service.format_number("JD", 8, seq)


def issue(db: Session, world: World, first: int, last: int, provider: Provider) -> CardAllocation:
    return service.issue(
        session=db,
        actor=world.admin,
        first=number(first),
        last=number(last),
        provider_id=provider.id,
    )


def stocked(db: Session, world: World) -> None:
    """JD 1–100 generated; 1–50 at the 成都 branch, 1–20 of them at the 郫县 dealer."""
    make_range(db, world)
    issue(db, world, 1, 50, world.branch)
    issue(db, world, 1, 20, world.dealer)


def sale(seq: int, world: World, **kw: object) -> service.Sale:
    values: dict[str, object] = {
        "number": number(seq),
        "model_id": world.model.id,
        "buyer_name": "李女士",
        "buyer_phone": "13800138000",
        "province": "四川",
        "city": "成都",
        "price": 45000,
        "installer_id": world.installer.id,
    }
    values.update(kw)
    return service.Sale(**values)  # type: ignore[arg-type]


def register(db: Session, world: World, seq: int, **kw: object) -> ServiceCard:
    return service.register(session=db, actor=world.admin, sale=sale(seq, world, **kw))
