"""Demo channel: providers HQ → CD (成都) → CD-PX (郫县), BJ (北京); the six regions; a provider
user ``cd_staff``; orders: one received by CD, one waiting at the channel supervisor, and a
county order CD → CD-PX dispatched and filed with HQ. Uses units the terminals demo put in
stock; without them the orders are skipped."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.approvals import service as approvals
from cardops.auth import service as auth
from cardops.auth.models import User
from cardops.channel import service
from cardops.channel.models import Provider
from cardops.core.demo_loader import DemoContext
from cardops.terminals.models import Terminal, TerminalModel

CARD = {"debit": {"rate_bp": 38, "cap": 2000}, "credit": {"rate_bp": 55}}


def _provider(
    session: Session, actor: User, code: str, level: str, fields: service.ProviderFields
) -> Provider:
    found = service.find_provider(session, code)
    if found is not None:
        return found
    return service.create_provider(
        session=session, actor=actor, code=code, level=level, fields=fields
    )


def load(session: Session, ctx: DemoContext) -> None:
    admin = ctx.admin
    service.install_default_regions(session=session, actor=admin)
    reviewer = ctx.users.get("user_mgmt_reviewer")
    if reviewer is not None:
        for region in service.list_regions(session):
            service.set_region(
                session=session,
                actor=admin,
                code=region.code,
                provinces=region.provinces or [],
                reviewer_id=reviewer.id,
            )
    hq = _provider(session, admin, "HQ", "hq", service.ProviderFields(name="总部 HQ"))
    cd = _provider(
        session,
        admin,
        "CD",
        "city",
        service.ProviderFields(
            name="成都地市服务商",
            parent_id=hq.id,
            provinces=["四川"],
            cities=["成都"],
            contract_no="QD-2026-CD-001",
            rate_card=CARD,
            activation_reward=5000,
        ),
    )
    px = _provider(
        session,
        admin,
        "CD-PX",
        "county",
        service.ProviderFields(
            name="郫县县级服务商",
            parent_id=cd.id,
            cities=["成都"],
            contract_no="QD-2026-PX-001",
            rate_card={"debit": {"rate_bp": 40, "cap": 2000}, "credit": {"rate_bp": 58}},
            activation_reward=3000,
        ),
    )
    _provider(
        session,
        admin,
        "BJ",
        "city",
        service.ProviderFields(
            name="北京地市服务商",
            parent_id=hq.id,
            provinces=["北京"],
            contract_no="QD-2026-BJ-001",
            rate_card=CARD,
            activation_reward=5000,
        ),
    )
    cd_staff = auth.create_user(
        session=session,
        actor=auth.system_user(session),
        username="cd_staff",
        display_name="成都服务商渠道专员",
        password=ctx.password,
        roles=["channel_specialist"],
        must_change_password=False,
    )
    service.link_user(session=session, actor=admin, user_id=cd_staff.id, provider_id=cd.id)
    _orders(session, ctx, cd_staff, px)


def _stock(session: Session, model: TerminalModel, n: int) -> list[str]:
    wh = service.warehouse(session)
    return list(
        session.execute(
            select(Terminal.serial)
            .where(
                Terminal.model_id == model.id,
                Terminal.state == "in_stock",
                Terminal.location_id == wh.id,
            )
            .order_by(Terminal.id)
            .limit(n)
        ).scalars()
    )


def _orders(session: Session, ctx: DemoContext, cd_staff: User, px: Provider) -> None:
    model = session.execute(
        select(TerminalModel).where(TerminalModel.code == "DEMO-POS")
    ).scalar_one_or_none()
    specialist = ctx.users.get("channel_specialist")
    if (
        model is None
        or specialist is None
        or approvals.find_chain(session, "distributor_order") is None
    ):
        return
    serials = _stock(session, model, 20)
    if len(serials) < 20:
        return

    def paid(actor: User, quantity: int, note: str) -> int:
        order = service.create_order(
            session=session, actor=actor, lines=[(model.id, quantity)], note=note
        )
        service.upload_payment_slip(
            session=session,
            actor=actor,
            order_id=order.id,
            filename="payment-slip.png",
            data=b"\x89PNG\r\n\x1a\n demo payment slip",
            paid_amount=max(order.total, 1),
            reference=f"ABC{order.id:08d}",
        )
        service.submit_order(session=session, actor=actor, order_id=order.id)
        return order.id

    # 1. received by CD: 12 units, through the whole chain
    first = paid(cd_staff, 12, "首批订货")
    service.select_serials(session=session, actor=specialist, order_id=first, serials=serials[:12])
    order = service.get_order(session=session, actor=ctx.admin, order_id=first)
    for role in (
        "channel_supervisor",
        "business_manager",
        "finance_manager",
        "operations_director",
        "warehouse_supervisor",
    ):
        approvals.approve(
            session=session, actor=ctx.users[role], request_id=order.approval_request_id or 0
        )
    service.pick(session=session, actor=ctx.users["picker"], order_id=first, serials=serials[:12])
    service.check(session=session, actor=ctx.users["checker"], order_id=first, serials=serials[:12])
    service.dispatch(
        session=session,
        actor=ctx.users["warehouse_supervisor"],
        order_id=first,
        carrier="顺丰速运",
        tracking_no="SF1234567890",
    )
    service.receive(session=session, actor=cd_staff, order_id=first)

    # 2. waiting at the channel supervisor, serials picked by the specialist
    second = paid(cd_staff, 5, "补货")
    service.select_serials(
        session=session, actor=specialist, order_id=second, serials=serials[12:17]
    )

    # 3. county order CD → CD-PX, dispatched and filed with HQ
    px_staff = auth.create_user(
        session=session,
        actor=auth.system_user(session),
        username="px_staff",
        display_name="郫县服务商渠道专员",
        password=ctx.password,
        roles=["channel_specialist"],
        must_change_password=False,
    )
    service.link_user(session=session, actor=ctx.admin, user_id=px_staff.id, provider_id=px.id)
    county = paid(px_staff, 3, "县级订货")
    picked = serials[:3]
    service.select_serials(session=session, actor=cd_staff, order_id=county, serials=picked)
    service.approve_county_order(session=session, actor=cd_staff, order_id=county)
    service.check(session=session, actor=cd_staff, order_id=county, serials=picked)
    service.dispatch(
        session=session, actor=cd_staff, order_id=county, carrier="自送", tracking_no="CD-001"
    )
    service.file_with_hq(session=session, actor=cd_staff, order_id=county)
