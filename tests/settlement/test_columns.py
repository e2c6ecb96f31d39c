"""The columnar computation (journal columns read in slices, fees in Polars) gives exactly the
figures of the SQL computation (fees inside the database): same groups, same facts, same
shares — over random journals, rate cards with and without caps, provider levels without a
rate of their own, terminals without a provider, rows without a terminal, merchants on the
default rate, declined rows and cancellations."""

from __future__ import annotations

from datetime import date
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from cardops.gateway.models import Journal
from cardops.merchants.models import Merchant
from cardops.settlement import compute, service
from tests.settlement.conftest import DAY, World, at

amounts = st.one_of(st.integers(1, 5_000), st.integers(5_000, 3_000_000))
rows = st.lists(
    st.tuples(
        st.sampled_from(["purchase", "completion", "refund", "void", "reversal", "balance"]),
        amounts,
        st.sampled_from(["debit", "credit", ""]),
        st.integers(0, 4),  # county, city, no provider, no terminal, merchant on the default
        st.booleans(),  # approved
    ),
    min_size=1,
    max_size=40,
)
rates = st.fixed_dictionaries(
    {
        "county_credit": st.one_of(st.none(), st.integers(0, 120)),  # None: no rate (passes)
        "city_cap": st.one_of(st.none(), st.integers(1, 3_000)),
        "merchant_cap": st.one_of(st.none(), st.integers(1, 4_000)),
        "merchant_credit": st.integers(0, 200),
    }
)


def _by_key(groups: list[compute.Group]) -> list[tuple[Any, ...]]:
    return sorted(
        (
            g.merchant_id,
            g.owner_id or 0,
            g.credit,
            g.sign,
            g.cancel,
            g.earlier,
            g.count,
            g.amount,
            g.fee,
            tuple(g.costs),
            g.bank_fee,
        )
        for g in groups
    )


@settings(
    derandomize=True,
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(journal=rows, card=rates)
def test_columns_and_sql_give_identical_settlements(
    world: World, journal: list, card: dict[str, Any]
) -> None:  # type: ignore[type-arg]
    nested = world.db.begin_nested()
    try:
        db = world.db
        county_card: dict[str, Any] = {"debit": {"rate_bp": 45, "cap": 1900}}
        if card["county_credit"] is not None:
            county_card["credit"] = {"rate_bp": card["county_credit"]}
        world.county.rate_card = county_card
        city_debit: dict[str, Any] = {"rate_bp": 40}
        if card["city_cap"] is not None:
            city_debit["cap"] = card["city_cap"]
        world.city.rate_card = {"debit": city_debit, "credit": {"rate_bp": 50}}
        db.flush()
        service.set_merchant_rate(
            session=db,
            actor=world.finance,
            merchant_id=world.merchants[1].id,
            debit_bp=70,
            debit_cap=card["merchant_cap"],
            credit_bp=card["merchant_credit"],
            effective_from=DAY,
        )
        plain = Merchant(
            name="默认费率商户",
            kind="corporate",
            state="approved",
            mid="899999999999999",
            bank_name="中国银行",
            bank_account="6222020200112233446",
            bank_account_name="默认费率商户",
        )
        db.add(plain)
        db.flush()
        terminals = [world.t_county, world.t_city, world.t_none]
        sales: list[int] = []
        for n, (kind, amount, card_type, t, approved) in enumerate(journal):
            original = (
                sales[amount % len(sales)] if sales and kind in ("void", "reversal") else None
            )
            if t < 3:
                jid = world.journal(
                    kind,
                    amount,
                    terminal=terminals[t],
                    card_type=card_type,
                    approved=approved,
                    original_id=original,
                )
            else:
                merchant_id = plain.id if t == 4 else world.merchants[0].id
                jid = int(
                    db.execute(
                        insert(Journal).values(
                            kind=kind,
                            amount=amount,
                            card_type=card_type,
                            approved=approved,
                            terminal_id=None,
                            merchant_id=merchant_id,
                            tid="",
                            stan=f"{n:06d}",
                            rrn=f"{700000000000 + n}",
                            created_at=at(DAY, 12),
                            original_id=original,
                            response_code="00" if approved else "05",
                            request={},
                            response={},
                        )
                    ).inserted_primary_key[0]  # type: ignore[index]
                )
            if kind in ("purchase", "completion", "refund"):
                sales.append(jid)
        window = service.close_window(session=db, actor=world.finance, business_date=DAY)
        columns = service.compute_window(db, window, method="columns")
        sql = service.compute_window(db, window, method="sql")
        assert columns.facts == sql.facts
        assert columns.shares == sql.shares
        assert sum(t.count for t in sql.facts.values()) == sum(
            1
            for kind, _a, _c, _t, approved in journal
            if approved and kind in ("purchase", "completion", "refund")
        )
    finally:
        nested.rollback()


def test_the_groups_themselves_agree(world: World) -> None:
    """Below the figures: the aggregation's groups are the same, field by field."""
    for amount, card_type in ((1, "debit"), (49, "credit"), (250_000, "debit"), (7, "credit")):
        world.journal("purchase", amount, terminal=world.t_county, card_type=card_type)
        world.journal("refund", amount, terminal=world.t_city, card_type=card_type)
        world.journal("purchase", amount * 3, terminal=world.t_none, card_type=card_type)
    window = service.close_window(session=world.db, actor=world.finance, business_date=DAY)
    assert window.first_id is not None and window.last_id is not None
    kwargs: dict[str, Any] = {
        "first_id": window.first_id,
        "last_id": window.last_id,
        "merchant_rates": service.merchant_rates_on(world.db, date(2026, 3, 10))[0],
        "terminal_chains": {
            world.t_county.id: (
                world.county.id,
                [
                    compute.RateSet.from_card(world.county.rate_card) or compute.PASS_RATES,
                    compute.RateSet.from_card(world.city.rate_card) or compute.PASS_RATES,
                ],
            ),
        },
        "bank": compute.RateSet(debit=(30, 1500), credit=(45, compute.NO_CAP)),
    }
    by_columns = compute.aggregate(world.db, method="columns", **kwargs)
    by_sql = compute.aggregate(world.db, method="sql", **kwargs)
    assert _by_key(by_columns) == _by_key(by_sql)
    # merchant 0 and 2: sales, debit and credit; merchant 1: refunds, debit and credit
    assert len(by_sql) == 6
