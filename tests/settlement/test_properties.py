"""Property tests over random journals (derandomised, small): the ledger balances; merchant
net + fees = gross; shares + HQ margin + bank fees = merchant fees; a refund claws back what
its purchase paid."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from cardops.ledger.models import PostingLine
from cardops.settlement import service
from tests.settlement.conftest import DAY, World

amounts = st.one_of(st.integers(1, 5_000), st.integers(5_000, 3_000_000))
rows = st.lists(
    st.tuples(
        st.sampled_from(["purchase", "completion", "refund", "void", "reversal"]),
        amounts,
        st.sampled_from(["debit", "credit"]),
        st.integers(0, 2),  # which terminal
        st.booleans(),  # approved
    ),
    min_size=1,
    max_size=25,
)


@settings(
    derandomize=True,
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(journal=rows)
def test_settlement_invariants(world: World, journal: list) -> None:  # type: ignore[type-arg]
    nested = world.db.begin_nested()
    try:
        terminals = [world.t_county, world.t_city, world.t_none]
        sales: list[tuple[int, int, str, int]] = []
        for kind, amount, card, t, approved in journal:
            terminal = terminals[t]
            if kind in ("refund", "void", "reversal") and sales:
                original, o_amount, o_card, o_t = sales[amount % len(sales)]
                world.journal(
                    kind,
                    o_amount,
                    terminal=terminals[o_t],
                    card_type=o_card,
                    original_id=original,
                    approved=approved,
                )
            elif kind in ("purchase", "completion"):
                jid = world.journal(
                    kind, amount, terminal=terminal, card_type=card, approved=approved
                )
                sales.append((jid, amount, card, t))
        result = service.settle_day(session=world.db, actor=world.finance, business_date=DAY)
        w = result.window
        assert w.net + w.fee == w.gross
        assert w.shares + w.hq_margin + w.bank_fee == w.fee
        for fact in result.computed.facts.values():
            assert fact.net + fact.fee == fact.gross
        assert (
            world.db.execute(select(func.coalesce(func.sum(PostingLine.amount), 0))).scalar_one()
            == 0
        )
    finally:
        nested.rollback()


@settings(
    derandomize=True,
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(amount=amounts, card=st.sampled_from(["debit", "credit"]), t=st.integers(0, 2))
def test_refund_claws_back_what_the_purchase_paid(
    world: World, amount: int, card: str, t: int
) -> None:
    nested = world.db.begin_nested()
    try:
        terminal = [world.t_county, world.t_city, world.t_none][t]
        sale = world.journal("purchase", amount, terminal=terminal, card_type=card)
        world.journal("refund", amount, terminal=terminal, card_type=card, original_id=sale)
        result = service.settle_day(session=world.db, actor=world.finance, business_date=DAY)
        for fact in result.computed.facts.values():
            assert (fact.gross, fact.fee, fact.bank_fee, fact.hq_margin) == (0, 0, 0, 0)
        for share in result.computed.shares.values():
            assert share.share == 0 and share.volume == 0
        assert result.window.gross == 0
    finally:
        nested.rollback()
