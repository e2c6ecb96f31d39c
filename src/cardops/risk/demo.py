"""Demo risk data: limits per rating, a card-velocity scenario and an amount scenario with a
few rules each (one a draft), ratings for the approved demo merchants, and two alerts in the
queue (one overdue)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.auth.service import system_user
from cardops.core.clock import utcnow
from cardops.core.demo_loader import DemoContext
from cardops.risk import service
from cardops.risk.models import Alert, Scenario

LIMITS = {
    "A": ("50000", "500000", "10000000"),
    "B": ("20000", "200000", "4000000"),
    "C": ("5000", "50000", "1000000"),
    "D": ("1000", "10000", "200000"),
}
SCENARIOS = (
    (
        "velocity",
        "Card and terminal velocity",
        50,
        100,
        "65",
        (
            ("card_burst", "Card used 3+ times in 10 minutes", "card.count_10m >= 3", 40, "65"),
            ("card_day", "Card used 20+ times in 24 hours", "card.count_24h >= 20", 40, ""),
            ("pin_guessing", "Two wrong PINs in an hour", "card.pin_failures_1h >= 2", 60, "59"),
            (
                "stoplisted_at_terminal",
                "Stop-listed cards tried at this terminal in the last hour",
                "terminal.stoplisted_1h >= 1",
                30,
                "",
            ),
        ),
    ),
    (
        "amount",
        "Unusual amounts",
        50,
        120,
        "61",
        (
            (
                "big_vs_usual",
                "Five times the merchant's usual amount",
                "has(txn.amount_ratio) && txn.amount_ratio >= 5.0",
                50,
                "",
            ),
            (
                "night_big",
                "Over 2,000 yuan at night (local time)",
                "(txn.hour < 6 || txn.hour >= 23) && txn.amount >= 200000",
                50,
                "",
            ),
            (
                "new_card_big",
                "First use of a card at the merchant, over 5,000 yuan",
                "txn.first_at_merchant && txn.amount >= 500000",
                40,
                "",
            ),
        ),
    ),
)


def load(session: Session, ctx: DemoContext) -> None:
    from cardops.merchants.models import Merchant

    actor = system_user(session)
    if session.execute(select(Scenario.id)).first():
        return
    for rating, (single, daily, monthly) in LIMITS.items():
        service.set_rating_limit(
            session=session,
            actor=actor,
            rating=rating,
            single_limit=single,
            daily_limit=daily,
            monthly_limit=monthly,
        )
    for code, name, review, decline, decline_code, rules in SCENARIOS:
        scenario = service.create_scenario(
            session=session,
            actor=actor,
            code=code,
            name=name,
            review_threshold=review,
            decline_threshold=decline,
            decline_code=decline_code,
        )
        for i, (rule_code, rule_name, expression, score, rule_decline) in enumerate(rules):
            service.create_rule(
                session=session,
                actor=actor,
                scenario_id=scenario.id,
                code=rule_code,
                name=rule_name,
                expression=expression,
                score=score,
                decline_code=rule_decline,
                active=not (code == "amount" and i == len(rules) - 1),  # one draft
                note="demo",
            )
    merchants = list(
        session.execute(
            select(Merchant).where(Merchant.state == "approved").order_by(Merchant.id)
        ).scalars()
    )
    for merchant, rating in zip(merchants, "ABCD", strict=False):
        service.rate_merchant(
            session=session, actor=actor, merchant_id=merchant.id, rating=rating, note="demo"
        )
    if merchants:
        now = utcnow()
        scenario_id = session.execute(
            select(Scenario.id).where(Scenario.code == "velocity")
        ).scalar_one()
        for minutes_ago, score, codes in (
            (90, 70, ["card_burst", "stoplisted_at_terminal"]),
            (5, 60, ["pin_guessing"]),
        ):
            at = now - timedelta(minutes=minutes_ago)
            session.add(
                Alert(
                    scenario_id=scenario_id,
                    decision="review",
                    score=score,
                    rules=[{"code": c, "score": score // len(codes)} for c in codes],
                    kind="purchase",
                    tid="",
                    mid=merchants[0].mid or "",
                    merchant_id=merchants[0].id,
                    pan_hash=None,
                    pan_masked="621234******0017",
                    amount=12_800,
                    state="open",
                    created_at=at,
                    due_at=at + timedelta(minutes=30),
                )
            )
    session.flush()
