"""Demo settlement: rate cards for the demo merchants, an activation-reward rule and a
volume-target rule, a few card transactions on their terminals over the last two business days
(purchases, a refund, a void), and both days settled. Skipped when there are no merchants with
terminals."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from cardops.core.clock import utcnow
from cardops.core.demo_loader import DemoContext
from cardops.gateway.models import Journal
from cardops.settlement import reports, service
from cardops.terminals.models import Terminal


def load(session: Session, ctx: DemoContext) -> None:
    actor = ctx.users.get("finance_manager") or ctx.admin
    units = list(
        session.execute(
            select(Terminal).where(Terminal.merchant_id.is_not(None)).order_by(Terminal.id).limit(3)
        ).scalars()
    )
    if not units:
        return
    config = service.get_config(session)
    today = service.business_date_of(utcnow(), config.cutoff)
    days = [today - timedelta(days=2), today - timedelta(days=1)]
    merchants = sorted({u.merchant_id for u in units if u.merchant_id})
    for n, merchant_id in enumerate(merchants):
        service.set_merchant_rate(
            session=session,
            actor=actor,
            merchant_id=merchant_id,
            debit_bp=55 + 5 * n,
            debit_cap=2000,
            credit_bp=60,
            effective_from=days[0] - timedelta(days=30),
            note="演示费率",
        )
    reports.create_rule(
        session=session, actor=actor, name="激活返现（按服务商设置）", kind="activation", amount=0
    )
    reports.create_rule(
        session=session,
        actor=actor,
        name="地市级月交易额达标奖励",
        kind="volume",
        amount=100_000,
        level="city",
        threshold=10_000_000,
    )
    stan = 900000
    for day in days:
        start, _end = service.window_bounds(day, config.cutoff)
        ids: list[int] = []
        for k, (amount, card) in enumerate(
            [
                (12_800, "debit"),
                (56_000, "credit"),
                (3_500, "debit"),
                (1_250_000, "debit"),
                (88_800, "credit"),
                (9_900, "debit"),
            ]
        ):
            unit = units[k % len(units)]
            stan += 1
            result = session.execute(
                insert(Journal).values(
                    created_at=start + timedelta(hours=10, minutes=7 * k),
                    node="demo",
                    kind="purchase",
                    tid=unit.tid or "",
                    mid=unit.mid or "",
                    terminal_id=unit.id,
                    merchant_id=unit.merchant_id,
                    stan=f"{stan:06d}",
                    local_date=day.strftime("%Y%m%d"),
                    amount=amount,
                    currency="156",
                    card_type=card,
                    rrn=f"{stan:012d}",
                    response_code="00",
                    approved=True,
                    route="upstream",
                    request={},
                    response={},
                )
            )
            ids.append(int(result.inserted_primary_key[0]))  # type: ignore[attr-defined]
        for kind, original, amount in (("refund", ids[0], 12_800), ("void", ids[2], 3_500)):
            unit = units[0] if kind == "refund" else units[2 % len(units)]  # as the sale
            stan += 1
            session.execute(
                insert(Journal).values(
                    created_at=start + timedelta(hours=15),
                    node="demo",
                    kind=kind,
                    tid=unit.tid or "",
                    terminal_id=unit.id,
                    merchant_id=unit.merchant_id,
                    stan=f"{stan:06d}",
                    amount=amount,
                    card_type="debit",
                    response_code="00",
                    approved=True,
                    original_id=original,
                    request={},
                    response={},
                )
            )
        service.settle_day(session=session, actor=actor, business_date=day)
