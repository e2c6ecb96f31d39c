"""Demo data: the standard chart of accounts and a few payments with their receipts."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cardops.core.demo_loader import DemoContext
from cardops.ledger import service
from cardops.ledger.chart import (
    BANK,
    CARD_FEE_INCOME,
    DEPOSITS_HELD,
    EQUITY,
    PARKING_INCOME,
    WALLET_FLOAT,
)


def load(session: Session, ctx: DemoContext) -> None:
    service.ensure_standard_chart(session=session, actor=ctx.admin)
    finance = ctx.users.get("finance_manager", ctx.admin)
    cashier = ctx.users.get("cashier", ctx.admin)
    clerk = ctx.users.get("front_desk_clerk", ctx.admin)
    service.post(
        session=session,
        actor=finance,
        lines=[(BANK, 50_000_000), (EQUITY, -50_000_000)],
        description="Opening capital paid in",
        reference="demo:opening",
        idempotency_key="demo:opening",
    )
    service.record_payment(
        session=session,
        actor=clerk,
        payer_name="张伟",
        items=[
            ("门禁卡工本费 Card fee", 2000, CARD_FEE_INCOME),
            ("门禁卡押金 Deposit", 5000, DEPOSITS_HELD),
        ],
        method="cash",
        reference="demo:card-1",
        idempotency_key="demo:receipt-1",
    )
    service.record_payment(
        session=session,
        actor=cashier,
        payer_name="李娜",
        items=[("储值卡充值 Wallet top-up", 20_000, WALLET_FLOAT)],
        method="wechat",
        reference="demo:topup-1",
        idempotency_key="demo:receipt-2",
    )
    service.record_payment(
        session=session,
        actor=cashier,
        payer_name="上海星海物业管理有限公司",
        items=[("2026年3月停车月卡 Monthly parking", 30_000, PARKING_INCOME)],
        method="transfer",
        idempotency_key="demo:receipt-3",
    )
