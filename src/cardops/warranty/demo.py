"""Demo service cards: range JD00000001… (2,000 numbers) issued to the 成都 and 北京 providers
and on to 郫县; a few registered sales (one sold across regions, one below the floor price)
with installer points; returns: a quality return waiting for acceptance, an exchange with a
compensation waiting for the supervisor, and a completed refund. Uses the channel and terminals
demo data; without them it adds nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.channel import service as channel
from cardops.core.demo_loader import DemoContext
from cardops.parties import service as parties
from cardops.terminals.models import TerminalModel
from cardops.warranty import service

# A 1×1 PNG stands in for the customer's photo of the fault.
PHOTO = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)


def load(session: Session, ctx: DemoContext) -> None:
    admin = ctx.admin
    cd = channel.find_provider(session, "CD")
    px = channel.find_provider(session, "CD-PX")
    bj = channel.find_provider(session, "BJ")
    models = {
        m.code: m
        for m in session.execute(
            select(TerminalModel).where(TerminalModel.code.in_(["DEMO-POS", "DEMO-MINI"]))
        ).scalars()
    }
    if not (cd and px and bj and "DEMO-POS" in models):
        return
    pos, mini = models["DEMO-POS"], models.get("DEMO-MINI", models["DEMO-POS"])
    service.set_model_terms(
        session=session, actor=admin, model_id=pos.id, floor_price=39900, points=15
    )
    if mini.id != pos.id:
        service.set_model_terms(session=session, actor=admin, model_id=mini.id, floor_price=19900)
    card_range = service.generate_range(
        session=session,
        actor=admin,
        prefix="JD",
        width=8,
        start=1,
        count=2000,
        note="2026 年第一批售后服务卡",
    )

    def n(seq: int) -> str:
        return service.format_number(card_range.prefix, card_range.width, seq)

    for first, last, provider in ((1, 500, cd), (501, 800, bj), (1, 200, px)):
        service.issue(
            session=session, actor=admin, first=n(first), last=n(last), provider_id=provider.id
        )
    wang = parties.create_person(session=session, actor=admin, name="王建国", mobile="13908001234")
    liu = parties.create_person(session=session, actor=admin, name="刘师傅", mobile="13908005678")
    today = service.today()
    sales = [
        (1, pos, "陈先生", "13800001111", "四川", "成都", 45000, wang, 20),
        (2, pos, "林女士", "13800002222", "四川", "成都", 42000, wang, 12),
        (3, mini, "黄先生", "13800003333", "四川", "成都", 23000, liu, 8),
        (4, pos, "郑女士", "13800004444", "广东", "广州", 44000, liu, 5),  # 窜货
        (5, pos, "吴先生", "13800005555", "四川", "成都", 32000, wang, 3),  # below the floor
        (501, mini, "赵女士", "13800006666", "北京", "北京", 26000, None, 2),
    ]
    cards = {}
    for seq, model, buyer, phone, province, city, price, installer, days_ago in sales:
        cards[seq] = service.register(
            session=session,
            actor=admin,
            sale=service.Sale(
                number=n(seq),
                model_id=model.id,
                serial=f"DEMO-SN-{seq:04d}",
                buyer_name=buyer,
                buyer_phone=phone,
                province=province,
                city=city,
                price=price,
                installer_id=installer.id if installer else None,
                sale_date=today - timedelta(days=days_ago),
            ),
        )
    service.create_return(
        session=session,
        actor=admin,
        data=service.ReturnInput(
            card_number=cards[2].number,
            kind="return",
            reason="quality",
            description="开机后屏幕闪烁，客户要求退货。",
            shipping_cost=1500,
            photos=[service.Photo("屏幕闪烁.png", PHOTO, "image/png")],
        ),
    )
    exchange = service.create_return(
        session=session,
        actor=admin,
        data=service.ReturnInput(
            card_number=cards[3].number,
            kind="exchange",
            reason="quality",
            description="打印机卡纸，换同型号新机；客户多次往返，申请补偿 30 元。",
            exchange_serial="DEMO-SN-9003",
            compensation=3000,
            request_approval=True,
            photos=[service.Photo("卡纸.png", PHOTO, "image/png")],
        ),
    )
    service.accept(session=session, actor=admin, return_id=exchange.id, note="照片清楚，属质量问题")
    refund = service.create_return(
        session=session,
        actor=admin,
        data=service.ReturnInput(
            card_number=cards[501].number,
            kind="return",
            reason="non_quality",
            description="客户不喜欢，七天无理由退货，运费客户承担。",
        ),
    )
    service.accept(session=session, actor=admin, return_id=refund.id)
    service.receive(session=session, actor=admin, return_id=refund.id, note="包装完好")
    service.complete(session=session, actor=admin, return_id=refund.id, payment_method="alipay")
