"""Set-up for the channel tests: a providers tree, a model, units in the HQ warehouse."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
from sqlalchemy.orm import Session

from cardops.approvals import service as approvals
from cardops.auth.models import User
from cardops.channel import service
from cardops.channel.models import Provider
from cardops.terminals.models import Location, Supplier, Terminal, TerminalModel
from tests.factories import make_user

ORDER_STEPS = [
    "channel_supervisor",
    "business_manager",
    "finance_manager",
    "operations_director",
    "warehouse_supervisor",
]
_serials = itertools.count(1)


@dataclass
class World:
    admin: User
    hq: Provider
    cd: Provider
    px: Provider
    bj: Provider
    model: TerminalModel
    other_model: TerminalModel
    warehouse: Location
    units: list[Terminal] = field(default_factory=list)
    prefix: str = ""


def add_units(
    db: Session, world: World, n: int, model: TerminalModel | None = None
) -> list[Terminal]:
    model = model or world.model
    units = []
    for _ in range(n):
        k = next(_serials)
        unit = Terminal(
            serial=f"{world.prefix}SN{k:06d}",
            model_id=model.id,
            supplier_id=model.supplier_id,
            imei=None,
            iccid=f"8986{world.prefix[-4:]}{k:08d}"[:20],
            state="in_stock",
            location_id=world.warehouse.id,
        )
        db.add(unit)
        units.append(unit)
    db.flush()
    world.units += units
    return units


def fields(name: str, parent: Provider | None, **kw: object) -> service.ProviderFields:
    return service.ProviderFields(
        name=name,
        parent_id=parent.id if parent else None,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def world(db: Session) -> World:
    admin = make_user(db, "sysadmin")
    prefix = f"T{next(_serials):04d}"
    hq = service.hq_provider(db) or service.create_provider(
        session=db, actor=admin, code="HQ", level="hq", fields=fields("总部 HQ", None)
    )
    cd = service.create_provider(
        session=db,
        actor=admin,
        code=f"{prefix}-CD",
        level="city",
        fields=fields(
            "成都地市服务商",
            hq,
            provinces=["四川"],
            cities=["成都"],
            rate_card={"debit": {"rate_bp": 38, "cap": 2000}, "credit": {"rate_bp": 55}},
        ),
    )
    px = service.create_provider(
        session=db,
        actor=admin,
        code=f"{prefix}-PX",
        level="county",
        fields=fields("郫县县级服务商", cd, cities=["成都"]),
    )
    bj = service.create_provider(
        session=db,
        actor=admin,
        code=f"{prefix}-BJ",
        level="city",
        fields=fields("北京地市服务商", hq, provinces=["北京"]),
    )
    supplier = Supplier(name=f"{prefix}-DEMO", kind="manufacturer")
    db.add(supplier)
    db.flush()
    model = TerminalModel(
        code=f"{prefix}-POS", name="Demo POS", supplier_id=supplier.id, unit_price=30000
    )
    other = TerminalModel(
        code=f"{prefix}-MINI", name="Mini POS", supplier_id=supplier.id, unit_price=15000
    )
    db.add_all([model, other])
    db.flush()
    world = World(admin, hq, cd, px, bj, model, other, service.warehouse(db), prefix=prefix)
    approvals.define_chain(
        session=db,
        actor=admin,
        kind="distributor_order",
        name_en="Distributor order",
        name_zh="经销商订单",
        steps=ORDER_STEPS,
    )
    return world


def staff(db: Session, world: World, provider: Provider, *roles: str) -> User:
    user = make_user(db, *(roles or ("channel_specialist",)))
    service.link_user(session=db, actor=world.admin, user_id=user.id, provider_id=provider.id)
    return user
