"""Demo data: two faulty terminals in the workshop (one received, one inspected and waiting
for the factory batch with a loaner out) and a scheduled field visit, so that the after-sales
pages are not empty on ``make run``."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.auth.service import system_user
from cardops.core.clock import utcnow
from cardops.core.demo_loader import DemoContext
from cardops.gateway.lab import LAB_SERIAL_PREFIX
from cardops.merchants.models import Merchant
from cardops.repairs import service
from cardops.terminals.models import Terminal, TerminalState


def _units(session: Session, state: TerminalState, n: int) -> list[Terminal]:
    return list(
        session.execute(
            select(Terminal)
            .where(
                Terminal.state == state.value,
                # the gateway's lab terminals stay activated: var/lab.json lists them
                Terminal.serial.not_like(f"{LAB_SERIAL_PREFIX}%"),
            )
            .order_by(Terminal.serial.desc())
        )
        .scalars()
        .fetchmany(n)
    )


def load(session: Session, ctx: DemoContext) -> None:
    admin = system_user(session)
    after_sales = ctx.users.get("after_sales_specialist") or admin
    technician = ctx.users.get("technician") or admin
    in_field = (
        _units(session, TerminalState.ACTIVATED, 1)
        + _units(session, TerminalState.INSTALLED, 1)
        + _units(session, TerminalState.AT_PROVIDER, 2)
    )
    stock = _units(session, TerminalState.IN_STOCK, 3)
    faulty = (in_field + stock[2:])[:2]
    if len(faulty) < 2 or len(stock) < 2:
        return
    first = service.intake(
        session=session,
        actor=after_sales,
        serial=faulty[0].serial,
        fault_code="printer",
        fault_description="打印机不出纸，签购单打印空白 / the printer feeds blank slips",
        brought_by_name="王师傅",
        brought_by_phone="028-85551234",
        appearance="外壳轻微划痕 / light scratches",
        accessories=["adapter", "battery"],
    )
    service.inspect(
        session=session,
        actor=technician,
        case_id=first.id,
        findings="打印头损坏，需返厂更换 / print head broken, factory replacement",
        fault_code="printer",
        under_warranty=True,
        estimate=0,
    )
    if first.merchant_id or first.provider_id:
        service.lend_loaner(
            session=session, actor=after_sales, case_id=first.id, serial=stock[0].serial
        )
    service.decide(session=session, actor=after_sales, case_id=first.id, route="factory")
    service.intake(
        session=session,
        actor=after_sales,
        serial=faulty[1].serial,
        fault_code="card_reader",
        fault_description="插卡无反应 / no response to chip cards",
        brought_by_name="李女士",
        brought_by_phone="13800138000",
        accessories=["adapter"],
    )
    merchant = session.execute(select(Merchant).order_by(Merchant.id).limit(1)).scalar_one_or_none()
    service.schedule_visit(
        session=session,
        actor=technician,
        mode="scheduled",
        merchant_id=merchant.id if merchant else None,
        customer_name="" if merchant else "演示客户 Demo customer",
        contact_name="赵经理",
        contact_phone="13900139000",
        service_type="inspection",
        warranty="in",
        scheduled_at=utcnow() + timedelta(days=2),
        registration_number="400-DEMO-0001",
        problem="季度巡检 / quarterly inspection",
    )
