"""Demo data: wallets on two active cards of property SUNNY, topped up, one with a payment
(runs after the cards demo; skips if it has no cards)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.access.models import Property
from cardops.cards.models import Card, CardState, HolderKind
from cardops.core.demo_loader import DemoContext
from cardops.wallets import service

PROPERTY = "SUNNY"


def load(session: Session, ctx: DemoContext) -> None:
    prop = session.execute(select(Property).where(Property.code == PROPERTY)).scalar_one_or_none()
    if prop is None:
        return
    cards = list(
        session.execute(
            select(Card)
            .where(
                Card.property_id == prop.id,
                Card.state == CardState.ACTIVE.value,
                Card.holder_kind.in_([HolderKind.OWNER.value, HolderKind.TENANT.value]),
            )
            .order_by(Card.holder_kind, Card.id)
            .limit(2)
        ).scalars()
    )
    clerk = ctx.users.get("front_desk_clerk", ctx.admin)
    cashier = ctx.users.get("cashier", ctx.admin)
    for n, card in enumerate(cards):
        service.enable_wallet(session=session, actor=clerk, card_number=card.number)
        service.top_up(
            session=session,
            actor=cashier,
            card_number=card.number,
            amount=20000 if n == 0 else 5000,
            method="wechat" if n == 0 else "cash",
            idempotency_key=f"demo:wallet:{card.number}",
        )
    if cards:
        service.debit(
            session,
            card_number=cards[0].number,
            amount=1850,
            reference="demo: community shop",
            idempotency_key=f"demo:wallet-debit:{cards[0].number}",
        )
