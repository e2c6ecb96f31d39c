"""Demo data: suppliers DEMO / 富友 / 联通, models DEMO-POS and DEMO-MINI, the HQ warehouse,
200 units imported through the importer, quality-checked (two sent back to the factory)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cardops.auth.service import system_user
from cardops.core.demo_loader import DemoContext
from cardops.terminals import importer, service
from cardops.terminals.models import InboundBatch, SupplierKind


def load(session: Session, ctx: DemoContext) -> None:
    actor = ctx.users.get("warehouse_supervisor") or system_user(session)
    admin = system_user(session)
    service.warehouse(session)
    demo = service.create_supplier(
        session=session,
        actor=admin,
        name="DEMO",
        kind=SupplierKind.MANUFACTURER.value,
        contact_name="张工",
        contact_mobile="13800138000",
    )
    service.create_supplier(
        session=session, actor=admin, name="富友", kind=SupplierKind.ACQUIRING_PLATFORM.value
    )
    service.create_supplier(
        session=session, actor=admin, name="联通", kind=SupplierKind.SIM_CARRIER.value
    )
    service.create_model(
        session=session,
        actor=admin,
        supplier_id=demo.id,
        code="DEMO-POS",
        name="Demo POS 智能终端",
        unit_price=39_900,
    )
    service.create_model(
        session=session,
        actor=admin,
        supplier_id=demo.id,
        code="DEMO-MINI",
        name="Demo mini 电签 POS",
        unit_price=19_900,
    )
    outcome = importer.import_file(
        session=session,
        actor=actor,
        supplier=demo,
        filename="demo-serials.csv",
        data=importer.sample_csv(200, model="DEMO-POS", prefix="DEMO"),
    )
    batch: InboundBatch | None = outcome.batch
    assert batch is not None
    service.quality_check(
        session=session,
        actor=actor,
        batch_id=batch.id,
        failed=["DEMO00000199", "DEMO00000200"],
        reason="屏幕坏点 / dead pixels on the screen",
    )
